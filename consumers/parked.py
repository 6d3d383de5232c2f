"""Parked messages: refused messages kept in ``parked_messages`` (with the incidents they call for), listed,
and replayed once their cause is fixed."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select

from consumers.ingest import Outcome, PendingStore, ingest
from ledger import clock
from ledger.app import FlagLedger
from ledger.app.incidents import ParkedMessage, raise_incidents
from ledger.domain.incidents import Incident
from ledger.domain.parked import RevokedKeyAcceptance
from ledger.errors import SelfApprovalError
from ledger.runtime.bootstrap import Node
from ledger.runtime.tables import parked_messages

__all__ = ["approved_acceptance", "message_digest", "park", "parked", "replay_parked"]


def message_digest(raw: bytes) -> str:
    """The id of a parked message's exact bytes (what a revoked-key acceptance names)."""
    return hashlib.sha256(raw).hexdigest()


def approved_acceptance(app: FlagLedger, raw: bytes) -> RevokedKeyAcceptance | None:
    """An approved acceptance of exactly these message bytes by any agency hosted here, or None."""
    digest = message_digest(raw)
    for agency in sorted(app.hosted):
        found = app.find(RevokedKeyAcceptance, RevokedKeyAcceptance.create_id(agency, digest))
        if found is not None and found.approved_by is not None:
            return found
    return None


def park(node: Node, outcome: Outcome, raw: bytes, source: str) -> list[Incident]:
    """Keep a refused message in ``parked_messages`` (once: a redelivery finds its row) and raise the
    incidents it calls for (ledger/app/incidents.py; none for a fault, none twice). Returns the incidents raised now.

    The row is committed before any incident is raised: if raising fails, the caller's retry finds the row
    and raises them then.
    """
    with node.engine.begin() as conn:
        # redelivered after a crash before the offset commit: it is parked already, once is enough
        seen = conn.execute(
            select(parked_messages.c.id).where(
                (parked_messages.c.source == source) & (parked_messages.c.envelope == raw)
            )
        ).scalar()
        if seen is None:
            key = conn.execute(
                parked_messages.insert().values(
                    at=clock.now().isoformat(),
                    code=outcome.code,
                    reason=outcome.reason,
                    source=source,
                    envelope=raw,
                    status="parked",
                )
            ).inserted_primary_key
            assert key is not None
            seen = key[0]
    return raise_incidents(node, ParkedMessage(int(seen), outcome.code, outcome.reason, source, raw))


def parked(node: Node) -> list[dict[str, Any]]:
    with node.engine.connect() as conn:
        rows = conn.execute(select(parked_messages).order_by(parked_messages.c.id)).mappings().all()
    return [{k: v for k, v in r.items() if k != "envelope"} for r in rows]


def replay_parked(node: Node, parked_id: int, *, accept_revoked_key: bool = False) -> Outcome:
    """Re-run one parked message after its cause was fixed (e.g. the agency's key is now trusted).

    ``accept_revoked_key``: two administrators approved applying exactly these bytes, signed by a key revoked
    since (:mod:`consumers.revoked_acceptance`); the message is then marked ``accepted_revoked`` rather than
    ``replayed``. Without a recorded approval it is refused and nothing is applied."""
    with node.engine.connect() as conn:
        row = conn.execute(select(parked_messages).where(parked_messages.c.id == parked_id)).mappings().first()
    if row is None:
        from ledger.errors import NotFoundError

        raise NotFoundError(f"no parked message {parked_id}")
    if accept_revoked_key and approved_acceptance(node.app, bytes(row["envelope"])) is None:
        raise SelfApprovalError(
            f"applying parked message {parked_id} under a revoked key needs two administrators: "
            f"`flagledger consumers replay {parked_id} --accept-revoked-key --as AGENCY/STAFF --note …`, then the "
            "same by a second administrator"
        )
    pending = PendingStore(node.app, node.engine)

    def park_released(refused: Outcome, released: bytes) -> None:
        park(node, refused, released, "released from ingest_pending")

    pending.on_parked = park_released
    raw = bytes(row["envelope"])
    # an operator's replay decides now: a flag change whose staff keys are still not certified is parked again,
    # and so is a number change whose linker the recorded moves still rule out
    outcome = ingest(
        node.app, raw, pending, accept_revoked_key=accept_revoked_key, roster_wait=False, residence_wait=False
    )
    if outcome.kind == "parked":  # still refused, perhaps for a new reason (an agency held since, a fork)
        raise_incidents(node, ParkedMessage(parked_id, outcome.code, outcome.reason, str(row["source"]), raw))
    if outcome.kind in ("applied", "duplicate", "held_gap"):
        status = "accepted_revoked" if accept_revoked_key and row["code"] == "revoked_key_late" else "replayed"
        with node.engine.begin() as conn:
            conn.execute(parked_messages.update().where(parked_messages.c.id == parked_id).values(status=status))
        node.projector.catch_up()
    elif (outcome.code, outcome.reason) != (row["code"], row["reason"]):
        # parked again for another cause (e.g. its key is trusted now, but its signer does not own the stream)
        with node.engine.begin() as conn:
            conn.execute(
                parked_messages.update()
                .where(parked_messages.c.id == parked_id)
                .values(code=outcome.code, reason=outcome.reason[:2000])
            )
    return outcome
