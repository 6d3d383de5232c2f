"""A populated pair of data directories made by the code of an older commit, for ``test_upgrade.py``.

Run as ``PYTHONPATH=<that commit's tree> python tests/integration/upgrade_source.py ROOT [DATABASE_URL]``: every
import below resolves to the old code. It leaves what an upgrade must carry over — a log with flags, a held
request and a number change, events held in ``ingest_pending`` behind a gap (the late event saved to
``ROOT/late.bin``), a parked forgery, a relay position — and prints the views as that code projected them.
The dump functions are plain SQLAlchemy so the current code can compare with the same ones.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any

VIEWS_JSON = "views-before.json"


def view_tables() -> list[str]:
    from projections.registry import all_projections

    return sorted(t.name for p in all_projections() for t in p.tables)


def dump(engine: Any, tables: list[str], cipher: Any = None) -> dict[str, list[list[str]]]:
    """Every row of ``tables``, as text, in a stable order (a view's row order means nothing). ``cipher`` (the
    node's ViewCipher): sealed personal cells as their values, so views sealed since compare with older ones."""
    from sqlalchemy import MetaData, select

    def cell(table: str, column: str, v: Any) -> str:
        if cipher is not None and isinstance(v, str) and v.startswith("vk1."):
            return repr(cipher.open(f"{table}.{column}", v))
        return repr(v)

    meta = MetaData()
    meta.reflect(engine, only=tables)
    with engine.connect() as conn:
        out = {}
        for name in tables:
            t = meta.tables[name]
            out[name] = sorted(
                [cell(name, c.name, v) for c, v in zip(t.columns, row, strict=True)] for row in conn.execute(select(t))
            )
        return out


def main(root: Path, url: str | None) -> None:
    # (consumers.kafka_io exists only in the old trees: ruff takes it for a third-party module)
    import consumers  # noqa: I001
    import consumers.kafka_io as kafka_io
    from consumers.ingest import PendingStore, ingest
    from consumers.outbox import publishable
    from ledger.app import Actor
    from ledger.bootstrap import AgencySpec, init_node
    from ledger.envelope import Envelope
    from projections.base import upsert
    from tests.conftest import A, B, C, enrol_standard_staff
    from tests.support.people import individual_number
    from tests.support.trust import trust

    key = root / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = init_node(
        root / "a",
        (AgencySpec(A, "A市", "municipality"), AgencySpec(C, "C市", "municipality")),
        database_url=url,
        pseudonym_key_file=key,
    )
    b = init_node(root / "b", (AgencySpec(B, "B市", "municipality"),), pseudonym_key_file=key)
    for n in (a, b):
        enrol_standard_staff(n)
    trust(a, b)
    trust(b, a)

    def protect(node: Any, agency: str, subject: str, flags: list[str]) -> None:
        rid = node.app.request_flags(Actor(agency, "req"), subject, flags)
        node.app.approve_request(Actor(agency, "apr"), rid)
        node.app.execute_request(Actor(agency, "op"), rid)

    x, y, z = individual_number(), individual_number(), individual_number()
    protect(a, A, x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
    protect(a, C, x, ["NON_DISCLOSURE"])
    protect(b, B, y, ["NO_AUTO_RESPONSE"])
    b.app.receive_query(A, B, y, legal_item=74, procedure="児童手当", info_kind="地方税関係情報")
    b.app.link_numbers(Actor(B, "req"), y, individual_number())
    protect(b, B, z, ["NON_DISCLOSURE"])

    # z's opening is withheld: what follows it on its stream waits in ingest_pending
    raws = [raw for _, _, raw in publishable(b.app)]
    late = next(r for r in reversed(raws) if Envelope.from_bytes(r).header.topic.endswith("Protection.Opened"))
    pending = PendingStore(a.app, a.engine)
    kinds = [ingest(a.app, raw, pending).kind for raw in raws if raw != late]
    assert "held_gap" in kinds, kinds
    (root / "late.bin").write_bytes(late)
    forged = raws[-1].replace(b"NON_DISCLOSURE", b"NON_DISCLOSURF")
    outcome = ingest(a.app, forged, pending)
    assert outcome.kind == "parked", outcome
    with a.engine.begin() as conn:
        if not hasattr(kafka_io, "park"):  # before incidents (b0b9a9a) the consumer parked with this insert
            conn.execute(
                kafka_io.parked_messages.insert().values(
                    at="2026-12-06T12:00:00+00:00",
                    code=outcome.code,
                    reason=outcome.reason,
                    source="flagledger.events/0@42",
                    envelope=forged,
                    status="parked",
                )
            )
        upsert(
            conn, kafka_io.relay_position, [{"topic": "flagledger.events", "position": a.app.max_position()}], ["topic"]
        )
    if hasattr(kafka_io, "park"):
        kafka_io.park(a, outcome, forged, "flagledger.events/0@42")
    for n in (a, b):
        n.projector.catch_up()
    (root / VIEWS_JSON).write_text(json.dumps({"a": dump(a.engine, view_tables()), "b": dump(b.engine, view_tables())}))
    a.close()
    b.close()
    print(json.dumps({"code": consumers.__file__}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None)
