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

Not in the bound (docs/accountable-hub.md): the running hub process sees what it routes while it routes it;
the broker's hub topic holds registrations sealed to the hub's key for its retention; records a provider sends in
the clear (``provision_record``, still what the portal feed's pages are made of) — the providers here seal theirs.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path

from ledger.errors import FlagLedgerError
from ledger.hub.digests import DigestSchedule
from ledger.hub.inspect import accesses, inspect_table
from ledger.hub.log import open_hub_store
from ledger.hub.person_ids import KeyStorePersonIds, ensure_person_key
from ledger.hub.tables import metadata
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.codes import hub_person
from ledger.linkage.messages import AnswerMessage, RoutedQuery
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import unseal
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from tests.support.hub_world import START, A, B, C, Cast, D, World
from tests.support.memory_keystore import MemoryKeyStore
from tests.support.people import individual_number

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
DATA, DATA2 = "課税所得 1,234,000", "給与収入 3,000,000"


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
    w.agencies[A].record_sealed(x, C, PROCEDURE, ITEM, INFO, "held", "2026-01-01T09:00:00+09:00")
    w.agencies[A].record_sealed(y, C, PROCEDURE, ITEM, INFO, "provided", "2026-01-01T09:00:00+09:00")
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
    w.settle()


def insider(w: World, keystore: MemoryKeyStore, x: str, y: str) -> None:
    engine = w.hub.store.engine
    rows = {t: inspect_table(engine, "dba-1", "the bound's test", t) for t in sorted(metadata.tables)}
    assert all(rows[t] for t in ("hub_codes", "hub_flag_changes", "hub_requests", "hub_sealed_records", "hub_outbox"))
    assert any(r["code"] == "conflict" for r in rows["hub_parked"])  # the second registration, parked

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
    for secret in (x, y, PROCEDURE, INFO, "held", "provided", DATA, DATA2):  # numbers, record and answer text
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
