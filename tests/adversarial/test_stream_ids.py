"""Stream ids reveal nothing: no id of a stream about a person can be computed from public inputs.

The attack (issue 16, attack 5): ids were ``uuid5("protection/<agency>/<pseudonym>")`` under a public namespace.
With a copy of the encrypted ledger (a backup, a database dump, the DBA's view) and a pseudonym shown at any
counter, trying every 6-digit agency code named the agency protecting the person in seconds, without any key.
Now those ids are HMACs under the owning agency's own secret: the same brute force over a copy of the ledger
and of the views finds nothing.

Threats: **an insider** with a copy of the database but not the agency's secrets, **the broker operator**
(stream ids travel in the clear in envelope headers) and **a peer agency** (it never holds another agency's
id key, and never needs it).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import stat
from collections.abc import Iterable
from pathlib import Path
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.errors import NotFoundError
from ledger.runtime.bootstrap import Node
from projections.views import counter_view
from tests.conftest import SC, A, B, C
from tests.support.links import link
from tests.support.trust import agency_pair

PUBLIC_NAMESPACE = uuid5(NAMESPACE_URL, "https://flagledger.example/ns")  # the one the old ids were made under
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def _protect(node: Node, agency: str, subject: str, flags: list[str]) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), subject, flags)
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def _ids_in_copy(ledger: Path, views: Path) -> set[bytes]:
    """Every UUID held anywhere in a copy of the two databases: the log's stream column and every cell of
    every view table (as the attacker would collect them)."""
    found: set[bytes] = set()
    with sqlite3.connect(ledger) as db:
        for (oid,) in db.execute("SELECT originator_id FROM stored_events"):
            found.add(UUID(str(oid)).bytes)
    with sqlite3.connect(views) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    for text in _UUID_TEXT.findall(str(cell)):
                        found.add(UUID(text).bytes)
    return found


def _brute_force(found: set[bytes], pseudonyms: list[str], codes: Iterable[str]) -> list[str]:
    """The attack: every name the old derivation used, for every agency code; what the copy holds."""
    prefixes = {b[:6] for b in found}  # uuid5's version and variant bits are in bytes 6 and 8
    hits: list[str] = []

    def test(name: str) -> None:
        digest = hashlib.sha1(PUBLIC_NAMESPACE.bytes + name.encode()).digest()
        if digest[:6] in prefixes and uuid5(PUBLIC_NAMESPACE, name).bytes in found:
            hits.append(name)

    codes = list(codes)
    for p in pseudonyms:
        base = hashlib.sha1(PUBLIC_NAMESPACE.bytes + b"protection/")
        tail = ("/" + p).encode()
        for code in codes:
            h = base.copy()
            h.update(code.encode() + tail)
            if h.digest()[:6] in prefixes:
                test(f"protection/{code}/{p}")
        test(f"link/{p}")
        for q in pseudonyms:
            test(f"proxy/{p}/{q}")
    for code in codes[-8:]:
        for staff in ("admin", "req", "apr", "op", "counter"):
            test(f"staff/{code}/{staff}")
    return hits


def test_trying_every_agency_code_over_a_copy_of_the_ledger_names_no_protecting_agency(
    sqlite_node: Node, person, tmp_path: Path
) -> None:
    """An insider with a copy of the database (no secrets) and the broker operator: the attack of issue 16."""
    node = sqlite_node
    x, y, z, x_new = person(), person(), person(), person()
    _protect(node, B, x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
    _protect(node, SC, x, ["NON_DISCLOSURE"])
    _protect(node, C, y, ["NO_AUTO_RESPONSE"])
    node.app.register_proxy(Actor(A, "req"), x, z)
    node.app.request_provision(
        Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    link(node.app, B, x, x_new)
    # what counter staff at A are shown: the pseudonyms the attacker starts from
    shown = [counter_view(node, Actor(A, "counter"), s).subject for s in (x, y, z, x_new)]
    assert all(s.startswith("p") for s in shown)
    node.projector.catch_up()

    copy = tmp_path / "copy"
    copy.mkdir()
    for path in node.config.data_dir.glob("*.sqlite*"):  # with their write-ahead logs, as a file copy would
        shutil.copy(path, copy / path.name)
    found = _ids_in_copy(copy / "ledger.sqlite", copy / "views.sqlite")

    # the machinery finds what *is* public by design: the agencies' registries, derived from their codes only
    codes = [f"{n:06d}" for n in range(1_000_000)] + sorted(c for c in node.app.hosted if not c.isdigit())
    assert uuid5(PUBLIC_NAMESPACE, f"agency/{B}").bytes in found
    # and the owner, with its own key, does find its stream (the streams are there to be found)
    assert node.app.ids.protection(B, shown[0]).bytes in found

    assert _brute_force(found, shown, codes) == []


@pytest.mark.usefixtures("file_keys")  # reads the files (the token's keys: tests/integration/test_pkcs11_inside.py)
def test_each_agency_has_its_own_id_key_and_ids_differ_per_agency(sqlite_node: Node, person) -> None:
    """Never a key shared between agencies: hosted together, they still derive unrelated ids."""
    node = sqlite_node
    p = node.app.subject(person())
    keys = {code: (node.config.secrets_dir / f"{code}-id.key") for code in node.app.hosted}
    assert len({path.read_text() for path in keys.values()}) == len(keys)
    for path in keys.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ids = {node.app.ids.protection(code, p) for code in node.app.hosted}
    assert len(ids) == len(node.app.hosted)
    assert node.app.ids.protection(B, p) != node.app.ids.link(B, p) != node.app.ids.staff(B, p)
    config = (node.config.data_dir / "config.json").read_text()
    assert all(path.read_text().strip() not in config for path in keys.values())


def test_a_peer_never_needs_another_agencys_ids(make_node, tmp_path: Path, person) -> None:
    """B's protection, number change and proxy registration reach A's node and protect there; A holds no key
    of B's, cannot look B's protection up by person, and still cancels B's proxy registration (Point 1)."""
    a, b = agency_pair(make_node, tmp_path)
    x, y, x_new = person(), person(), person()
    _protect(b, B, x, ["NO_AUTO_RESPONSE"])
    b.app.register_proxy(Actor(B, "req"), x, y)
    link(b.app, B, x, x_new)
    pending = PendingStore(a.app, a.engine)
    outcomes = [ingest(a.app, raw, pending).kind for _, _, raw in publishable(b.app)]
    assert set(outcomes) <= {"applied", "duplicate"} and "applied" in outcomes

    assert sorted(n for n in a.keys.store.names() if n.endswith("-id.key")) == [f"{A}-id.key"]
    assert a.app.flag_state is not None and a.app.flag_state.flags_for(a.app.subject(x_new)) == {
        "NO_AUTO_RESPONSE": [B]
    }
    with pytest.raises(NotFoundError):
        a.app.protection(B, x)
    assert b.app.protection(B, x) is not None

    found = a.app.find_proxy_registration(x, y)
    assert found is not None and found.agency == B and found.active
    a.app.cancel_proxy(Actor(A, "req"), x, y, "intake advice")
    cancelled = a.app.find_proxy_registration(x, y)
    assert cancelled is not None and not cancelled.active
