"""An agency's approved erasure at the hub and the portal (issue 22), both on SQLite and both on PostgreSQL:
the hub shreds what that agency sent it about the person, the portal's page drops it, nothing hidden is ever
shown, and a peer cannot wipe another agency's evidence.

Threats, per test: an insider at the hub or the portal after the erasure (with every key those roles hold, and
the portal's key too: the records were sealed to it), the perpetrator at the portal, a peer agency forging an
erasure, the broker operator re-delivering one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, select

from ledger.errors import Code, IntegrityError, NotFoundError
from ledger.hub.erasure import erasures
from ledger.hub.inbox import parked
from ledger.hub.log import HubStore
from ledger.hub.tables import hub_flag_changes, hub_sealed_records
from ledger.linkage.codes import portal_code
from ledger.linkage.erasure_messages import ErasureMessage, PageErasure
from ledger.linkage.hiding import HIDDEN_NOTE
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.record_contents import open_contents
from ledger.linkage.sealing import seal
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics
from ledger.log.signing import Signer
from tests.support.hub_world import START, A, B, C, Cast, D
from tests.support.people import individual_number
from tests.support.portal_world import PortalWorld
from tests.support.postgres import temp_database

ITEM, INFO = 74, "地方税関係情報"
MADE = "2026-12-07T12:00:00+09:00"


@pytest.fixture
def pw(hub: HubStore, backend: str | None, tmp_path: Path) -> Iterator[PortalWorld]:
    """The hub and the portal, each on the backend (the portal's own database on PostgreSQL)."""
    broker = MemoryBroker()
    with ExitStack() as stack:
        url = None if backend is None else stack.enter_context(temp_database())
        w = PortalWorld.open(
            Cast.of(A, B, C, D), hub, tmp_path / "portal.sqlite", lambda p: MemoryTransport(broker, p), url
        )
        w.broker = broker  # type: ignore[attr-defined]
        yield w
        w.close()


def procedure(tag: str) -> str:
    """A procedure text that is one person's and one provider's alone, so a scan can tell whose it is."""
    return f"児童手当{tag}{uuid.uuid4().hex[:8]}"


def erase(pw: PortalWorld, agency: str, number: str) -> str:
    return pw.erase(agency, number)


def every_value(engine: Engine) -> list[bytes]:
    """Every value of every row of every table of a database, as bytes."""
    meta = MetaData()
    meta.reflect(engine)
    out: list[bytes] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                out += [bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode() for v in row]
    return out


def opened_at_the_hub(pw: PortalWorld) -> list[str]:
    """Every record's contents the hub keeps, opened with the portal's key (the hub's own opens none): what an
    insider holding both would read."""
    keys = pw.world.cast.directory().sender_keys(START)
    s = hub_sealed_records.c
    with pw.world.hub.store.engine.connect() as conn:
        rows = conn.execute(select(s.record_id, s.provider, s.contents)).all()
    texts = []
    for rid, provider, contents in rows:
        if contents:
            try:
                texts.append(open_contents(pw.keys, bytes(contents), keys, str(rid), str(provider), pw.wires).procedure)
            except IntegrityError as exc:
                assert exc.code == Code.ERASED, exc
    return texts


def files_of(path: Path) -> bytes:
    """The bytes of an SQLite database and its WAL and journal, as an insider copies them."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


def test_erasing_one_person_leaves_no_value_of_theirs_at_the_hub_or_the_portal(
    pw: PortalWorld, backend: str | None, tmp_path: Path
) -> None:
    """Insider at the hub or the portal after the erasure, with every key they hold (and the portal's key at
    the hub): A erases X; no row of the hub's or the portal's database — nor, on SQLite, any byte of their files
    and WALs — holds A's records about X; B's record about X and A's about Y stay, on the page too; the hub
    records the erasure (its audit lists it) without the records' contents."""
    x, y = individual_number(), individual_number()
    a_x, b_x, a_y = procedure("ax"), procedure("bx"), procedure("ay")
    a_x_id = pw.world.agencies[A].record(x, C, a_x, ITEM, INFO, "provided", MADE)
    pw.world.agencies[B].record(x, C, b_x, ITEM, INFO, "provided", MADE)
    pw.world.agencies[A].record(y, C, a_y, ITEM, INFO, "provided", MADE)
    for number in (x, y):
        with pytest.raises(NotFoundError):
            pw.page(number)  # the first sign-in: registered, not fed yet
    pw.settle()
    assert {r.procedure for r in pw.page(x).records} == {a_x, b_x}  # the control: the scans below can fail
    assert sorted(opened_at_the_hub(pw)) == sorted([a_x, b_x, a_y])
    portal_rows = every_value(pw.store.engine)
    assert any(a_x.encode() in v for v in portal_rows)
    with pw.world.hub.store.engine.connect() as conn:
        a_x_blob = bytes(
            conn.execute(
                select(hub_sealed_records.c.contents).where(hub_sealed_records.c.record_id == a_x_id)
            ).scalar_one()
        )

    erasure_id = erase(pw, A, x)

    assert [r.procedure for r in pw.page(x).records] == [b_x] and pw.page(x).note is None
    assert [r.procedure for r in pw.page(y).records] == [a_y]
    assert sorted(opened_at_the_hub(pw)) == sorted([b_x, a_y])
    hub_rows = every_value(pw.world.hub.store.engine)
    assert not any(a_x.encode() in v for v in hub_rows)
    assert not any(a_x_blob in v for v in hub_rows)
    portal_rows = every_value(pw.store.engine)
    assert not any(a_x.encode() in v for v in portal_rows)
    assert any(b_x.encode() in v for v in portal_rows) and any(a_y.encode() in v for v in portal_rows)
    [done] = erasures(pw.world.hub.store.engine)
    assert (done["agency"], done["erasure_id"], done["records"]) == (A, erasure_id, 1)
    assert pw.store.erasures() == [{"code": _portal_code(pw, x), "version": done["seq"]}]  # the portal's record
    if backend is None:  # on PostgreSQL the files are the server's (docs/erasure.md, what is left)
        portal_file = tmp_path / "portal.sqlite"
        assert a_x.encode() not in files_of(portal_file) and b_x.encode() in files_of(portal_file)
        hub_file = tmp_path / "hub.sqlite"
        assert a_x_blob[-64:] not in files_of(hub_file)


def test_erasing_a_hidden_record_never_unhides_anything(pw: PortalWorld) -> None:
    """Perpetrator at the portal: X's records made before and while B protects X are hidden; A erases X; the
    page still shows none of them and still says something was hidden, B's flag changes stay at the hub, and
    after B's release nothing of them shows — the erasure changed nothing the portal shows; a record made after
    the release shows as before."""
    x = individual_number()
    before, during = procedure("before"), procedure("during")
    pw.world.agencies[A].record(x, C, before, ITEM, INFO, "provided", MADE)
    pw.world.agencies[B].flag(x, "NON_DISCLOSURE", "set")
    pw.world.agencies[A].record(x, D, during, ITEM, INFO, "held", MADE)  # D: where X moved
    signed_in(pw, x)
    hidden = pw.page(x)
    assert hidden.records == () and hidden.note == HIDDEN_NOTE
    version = pw.store.page(_portal_code(pw, x))
    assert version is not None

    erase(pw, A, x)

    after_erasure = pw.page(x)
    assert after_erasure.records == () and after_erasure.note == HIDDEN_NOTE
    again = pw.store.page(_portal_code(pw, x))
    assert again == version  # nothing new was fed: the page the perpetrator could see is the same
    assert [e["code"] for e in pw.store.erasures()] == [_portal_code(pw, x)]  # the erasure is recorded there
    with pw.world.hub.store.engine.connect() as conn:
        assert len(conn.execute(select(hub_flag_changes)).all()) == 1  # the hiding interval is kept
    pw.world.agencies[B].flag(x, "NON_DISCLOSURE", "release")
    later = procedure("later")
    pw.world.agencies[C].record(x, B, later, ITEM, INFO, "provided", MADE)
    pw.settle()
    page = pw.page(x)
    assert [r.procedure for r in page.records] == [later] and page.note == HIDDEN_NOTE
    assert not any(p.encode() in v for v in every_value(pw.store.engine) for p in (before, during))


def test_a_peer_cannot_erase_another_agencys_records(pw: PortalWorld) -> None:
    """Peer agency forging an erasure to wipe another's evidence: C names X by A's code (C never registered
    it) — parked, ``not_found``; C signs an erasure claiming to be A — parked (the signature is not A's); C's
    erasure of X under its own code shreds C's records only; the portal sends none at all; C's page erasure
    sent to the portal itself is refused (the hub's only). A's record stays, at the hub and on the page.
    Broker operator: A's erasure re-delivered is applied once."""
    x = individual_number()
    a_x, c_x = procedure("ax"), procedure("cx")
    pw.world.agencies[A].record(x, B, a_x, ITEM, INFO, "provided", MADE)
    pw.world.agencies[C].record(x, B, c_x, ITEM, INFO, "provided", MADE)
    signed_in(pw, x)
    assert {r.procedure for r in pw.page(x).records} == {a_x, c_x}
    hub_key = pw.world.cast.directory().sealing_key(HUB)
    a_code = pw.world.agencies[A].code(x)
    forged = ErasureMessage(uuid.uuid4().hex, a_code)
    c_end = pw.world.agencies[C]
    c_end.send(forged)  # under A's code, signed as C
    as_a = seal(Signer.generate(A), hub_key, HUB, uuid.uuid4().hex, forged.kind, forged.encode())
    c_end.transport.send(HUB, as_a)  # claims to be A, signed by a key that is not A's
    pw.world.agencies[C].transport.flush()
    portal_erasure = seal(pw.keys.signer, hub_key, HUB, uuid.uuid4().hex, forged.kind, forged.encode())
    c_end.transport.send(HUB, portal_erasure)
    c_end.transport.flush()
    pw.settle()
    portal_key = pw.world.hub.directory.sealing_key(PORTAL)  # and C tells the portal itself: refused
    notice = PageErasure(_portal_code(pw, x), 1)
    broker: MemoryBroker = pw.broker  # type: ignore[attr-defined]
    forged_notice = seal(c_end.keys.signer, portal_key, PORTAL, uuid.uuid4().hex, notice.kind, notice.encode())
    broker.append(Topics().inbox(PORTAL), forged_notice)  # its transport refuses: written into the topic itself
    pw.settle()
    assert Code.WRONG_ROUTE in pw.portal.refused and pw.store.erasures() == []
    codes = sorted(p.code for p in parked(pw.world.hub.store.engine))
    assert len(codes) == 3 and Code.NOT_FOUND in codes and Code.WRONG_AGENCY in codes
    assert erasures(pw.world.hub.store.engine) == []
    assert {r.procedure for r in pw.page(x).records} == {a_x, c_x}

    erase(pw, C, x)  # C's own: entitled, for C's own records
    assert [r.procedure for r in pw.page(x).records] == [a_x]
    assert sorted(opened_at_the_hub(pw)) == [a_x]

    erasure_id = erase(pw, A, x)
    topic = Topics().inbox(HUB)
    broker.append(topic, broker.topics[topic][-1])  # A's erasure again
    pw.settle()
    assert [e["erasure_id"] for e in erasures(pw.world.hub.store.engine)][-1] == erasure_id
    assert len(erasures(pw.world.hub.store.engine)) == 2
    assert opened_at_the_hub(pw) == [] and pw.page(x).records == ()


def signed_in(pw: PortalWorld, number: str) -> None:
    """The person signs in at the portal once (their page is not fed yet) and the hub feeds it."""
    pw.settle()
    with pytest.raises(NotFoundError):
        pw.page(number)
    pw.settle()


def _portal_code(pw: PortalWorld, number: str) -> str:
    return portal_code(pw.keys.secret, number)
