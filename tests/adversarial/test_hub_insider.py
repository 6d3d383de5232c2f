"""The hub insider's bound (issue 20): with the hub's whole database and its keys, person ids and routes — and
nothing else.

Threat: an insider at the hub — an administrator, a DBA, whoever takes a copy of its database — who also holds
the hub's keys (its X25519 sealing key, its signing key, the person-id secret from its key store). The
histories run through the hub's loop: registrations (one parked, a conflicting second code), flags, queries
with consultations, answers with data, provision records, and a last round left in the outbox. Then the
insider reads every table (through the recorded read path) and tries every stored byte string with the hub's
sealing key. The bound, checked:

* **gets**: person ids, who holds a flag on which person id, which agency asked which about which person id;
* **does not get**: an individual number, procedure or information-kind text, an outcome, an answer's data,
  a consultation — nothing stored opens with the hub's key, and no such text is in any row;
* **the edge**: the person-id secret tests a guessed number (a person id is an HMAC of the number): that is
  why it sits in the key store and is fetched per registration (``ledger.hub.person_ids``); a copy of the
  database alone, without it, tests nothing;
* **recorded**: every table read is in the access records.

The bound holds for every record: ``AgencyEnd.record`` seals its contents to the portal, the hub's loop refuses a
record sent in the clear (``clear_record``, parked with no bytes — one is sent here, with procedure text), and the
portal feed passes on the sealed contents (``ledger.linkage.sealed_pages``): the portal's pages, fed in this history,
are in the hub's outbox as the portal's, not the hub's, to open.

Not in the bound (docs/accountable-hub.md): the running hub process sees what it routes while it routes it;
the broker's hub topic holds registrations sealed to the hub's key for its retention.
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import replace
from pathlib import Path

from ledger.errors import FlagLedgerError
from ledger.hub.digests import DigestSchedule
from ledger.hub.inspect import accesses, inspect_table
from ledger.hub.log import open_hub_store
from ledger.hub.person_ids import KeyStorePersonIds, ensure_person_key
from ledger.hub.portal_feed import PortalFeed
from ledger.hub.tables import metadata
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.codes import Registration, hub_person, portal_code
from ledger.linkage.digests import expand
from ledger.linkage.messages import AnswerMessage, RecordMessage, RoutedQuery
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.portal_messages import PortalPageMessage
from ledger.linkage.sealed_pages import SealedPortalPage, open_sealed_page
from ledger.linkage.sealing import unseal
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from tests.support.hub_world import START, A, B, C, Cast, D, World
from tests.support.memory_keystore import MemoryKeyStore
from tests.support.people import individual_number

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
DATA, DATA2 = "課税所得 1,234,000", "給与収入 3,000,000"
CLEAR = "sent_in_the_clear"


def test_with_the_hubs_database_and_keys_an_insider_gets_person_ids_and_routes_only(tmp_path: Path) -> None:
    rng = random.Random(2020)
    x, y = individual_number(rng), individual_number(rng)
    keystore = MemoryKeyStore()
    ensure_person_key(keystore)
    cast = Cast.of(A, B, C, D, PORTAL)
    cast = replace(cast, hub=replace(cast.hub, secret=b""))  # the loop holds no person-id secret of its own
    broker = MemoryBroker()
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub")
    try:
        w = World.open(cast, store, lambda p: MemoryTransport(broker, p))
        w.hub.person_ids = KeyStorePersonIds(keystore)
        w.hub.digests = DigestSchedule()
        history(w, broker, x, y)
        insider(w, keystore, x, y)
    finally:
        store.close()


def history(w: World, broker: MemoryBroker, x: str, y: str) -> None:
    def tick() -> None:
        w.settle()
        w.hub.tick()

    for name, number in ((B, x), (A, x), (A, y), (D, y)):
        w.agencies[name].file_person(number)
    for flag in ("NON_DISCLOSURE", "NO_AUTO_RESPONSE"):
        w.agencies[B].flag(x, flag, "set")
    # B again, its code secret replaced: a registration that opens, holds X's number, and is parked
    again = AgencyEnd(
        replace(w.cast.agencies[B], secret=os.urandom(32)), MemoryTransport(broker, B), w.cast.directory()
    )
    again.file_person(x)
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.agencies[C].query(y, A, PROCEDURE, ITEM, INFO)
    tick()
    routed = [i.message for i in w.inbox(A, timeout_ms=0) if isinstance(i.message, RoutedQuery)]
    assert sorted(r.answer for r in routed) == ["auto", "staff"]
    for r in routed:
        w.agencies[A].answer(r.request_id, "in_progress" if r.answer == "staff" else "answered", DATA)
    w.agencies[A].record(x, C, PROCEDURE, ITEM, INFO, "held", "2026-01-01T09:00:00+09:00")
    w.agencies[A].record(y, C, PROCEDURE, ITEM, INFO, "provided", "2026-01-01T09:00:00+09:00")
    # a provider that still sends a record in the clear: refused and parked, its text kept nowhere
    clear = RecordMessage(uuid.uuid4().hex, w.agencies[D].code(y), C, PROCEDURE, ITEM, INFO, CLEAR, "2026-01-01")
    w.agencies[D].send(clear)
    tick()
    assert {i.message.status for i in w.inbox(C, timeout_ms=0) if isinstance(i.message, AnswerMessage)} == {
        "in_progress",
        "answered",
    }
    # the last round stays in the outbox (no tick): a consultation for B, a routed query and an answer with data
    w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.agencies[C].query(y, A, PROCEDURE, ITEM, INFO)
    w.settle()
    for i in w.inbox(A, timeout_ms=0):  # nothing: owed, not yet sent
        raise AssertionError(f"sent off the schedule: {i}")
    w.hub.tick()
    for r in [i.message for i in w.inbox(A, timeout_ms=0) if isinstance(i.message, RoutedQuery)]:
        w.agencies[A].answer(r.request_id, "in_progress" if r.answer == "staff" else "answered", DATA2)
    for number in (x, y):  # the portal's card sign-ins; their pages stay in the outbox too
        card = Registration(PORTAL, portal_code(w.cast.portal.secret, number), number)
        w.agencies[PORTAL]._send("registration", card.encode())
    w.settle()
    assert PortalFeed(w.hub.store, w.cast.hub, w.hub.directory).step() == 2


def insider(w: World, keystore: MemoryKeyStore, x: str, y: str) -> None:
    engine = w.hub.store.engine
    rows = {t: inspect_table(engine, "dba-1", "the bound's test", t) for t in sorted(metadata.tables)}
    assert all(rows[t] for t in ("hub_codes", "hub_flag_changes", "hub_requests", "hub_sealed_records", "hub_outbox"))
    assert any(r["code"] == "conflict" for r in rows["hub_parked"])  # the second registration, parked
    assert any(r["code"] == "clear_record" for r in rows["hub_parked"])  # D's record in the clear, parked
    assert rows["hub_records"] == []  # no record's contents in the clear, whoever sent it

    texts: list[str] = []
    opened = 0
    keys = w.cast.directory().sender_keys(START)
    for table in rows.values():
        for row in table:
            for value in row.values():
                if isinstance(value, bytes):
                    texts.append(value.decode("latin-1"))
                    texts.append(value.decode("utf-8", "replace"))
                    for me in (HUB, PORTAL, A, B, C, D):  # the hub's key, whatever name it claims
                        try:
                            unseal(w.cast.hub.sealing, me, value, keys)
                            opened += 1
                        except FlagLedgerError:
                            pass
                else:
                    texts.append(str(value))
    everything = "\n".join(texts)
    assert opened == 0  # nothing the hub keeps opens with its key
    pages = portal_pages(w, [bytes(r["message"]) for r in rows["hub_outbox"] if r["recipient"] == PORTAL])
    # the control: the portal opens what the hub cannot — Y's record; X's hidden by B's non-disclosure
    assert sorted((len(p.records), p.hidden) for p in pages) == [(0, True), (1, False)]
    assert [(r.procedure, r.outcome) for p in pages for r in p.records] == [(PROCEDURE, "provided")]
    for secret in (x, y, PROCEDURE, INFO, "held", "provided", CLEAR, DATA, DATA2):  # numbers, record and answer text
        assert secret not in everything, secret

    # what the insider does get: person ids, holders, routes
    person_x, person_y = w.hub.person_ids(x), w.hub.person_ids(y)  # type: ignore[misc]
    assert {(r["holder"], r["person"], r["flag"]) for r in rows["hub_flag_changes"]} == {
        (B, person_x, "NON_DISCLOSURE"),
        (B, person_x, "NO_AUTO_RESPONSE"),
    }
    assert {(r["querier"], r["provider"], r["person"], r["staff"]) for r in rows["hub_requests"]} == {
        (C, A, person_x, True),
        (C, A, person_y, False),
    }
    # the edge: with the key store's secret a guessed number is testable; with a database copy alone, not
    persons = {r["person"] for r in rows["hub_codes"]}
    assert KeyStorePersonIds(keystore)(x) in persons
    assert hub_person(os.urandom(32), x) not in persons

    # every read was recorded, before it happened, and the list of records records itself
    log = accesses(engine, "dba-1", "the bound's test")
    assert [a.what for a in log] == [*sorted(metadata.tables), "hub_access"]
    assert {(a.who, a.reason) for a in log} == {("dba-1", "the bound's test")}


def portal_pages(w: World, owed: list[bytes]) -> list[PortalPageMessage]:
    """What the portal makes of the pages the hub owes it: each opened with the portal's key alone."""
    keys = w.cast.directory().sender_keys(START)
    out = []
    for message in owed:
        for one in expand(w.cast.portal, message, keys):
            opened = unseal(w.cast.portal.sealing, PORTAL, one, keys)
            assert opened.kind == SealedPortalPage.kind
            out.append(open_sealed_page(w.cast.portal, SealedPortalPage.decode(opened.payload), keys))
    return out
