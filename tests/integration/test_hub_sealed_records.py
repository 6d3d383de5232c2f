"""Provision records whose contents the provider sealed to the portal, through the hub's loop on SQLite and
PostgreSQL: filed and hidden by the hub, read by the portal alone.

Threats, per test: a hub insider (with the hub's keys, reading what it stores), a malicious hub (swapping one
record's contents for another's, or another provider's), the broker operator re-delivering a record.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.errors import Code, IntegrityError
from ledger.hub.inbox import parked
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.sealed_records import SealedPage, open_page, sealed_page
from ledger.hub.tables import hub_records, hub_sealed_records
from ledger.linkage.hiding import HIDDEN_NOTE
from ledger.linkage.messages import RecordMessage
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import seal, unseal
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics
from tests.support.hub_world import START, A, B, C, Cast, World
from tests.support.people import individual_number

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
AT = "2026-01-01T09:00:00+09:00"


@pytest.fixture
def hub_url(backend: str | None, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend is None else backend


@pytest.fixture
def w(hub_url: str) -> Iterator[World]:
    broker = MemoryBroker()
    store: HubStore = open_hub_store(hub_url, "hub-1")
    world = World.open(Cast.of(A, B, C, PORTAL), store, lambda p: MemoryTransport(broker, p))
    world.broker = broker  # type: ignore[attr-defined]
    yield world
    store.close()


def count(w: World, table: object) -> int:
    with w.hub.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_the_portal_reads_what_the_hub_filed_and_hid_and_the_hub_reads_nothing(w: World) -> None:
    """Hub insider: the contents it keeps do not open with the hub's key, and hold no procedure text; the
    portal opens them, and the hub's sequence still hides a record made while NON_DISCLOSURE applies."""
    x = individual_number()
    portal_code = w.agencies[PORTAL].file_person(x)
    w.agencies[A].record(x, C, PROCEDURE, ITEM, INFO, "provided", AT)  # hidden: made before the flag
    w.agencies[B].flag(x, "NON_DISCLOSURE", "set")
    w.agencies[A].record(x, C, PROCEDURE, ITEM, INFO, "held", AT)  # hidden: made while it applies
    w.agencies[B].flag(x, "NON_DISCLOSURE", "release")
    after = w.agencies[A].record(x, C, PROCEDURE, ITEM, INFO, "provided", AT)
    w.settle()
    assert count(w, hub_sealed_records) == 3 and count(w, hub_records) == 0

    page = sealed_page(w.hub.store.engine, w.hub.store.codes, portal_code)
    assert [e.record_id for e in page.records] == [after] and page.note == HIDDEN_NOTE
    shown = open_page(w.cast.portal, page, w.cast.directory().sender_keys(START))
    [record] = shown.records
    assert (record.provider, record.querier, record.procedure, record.legal_item, record.info_kind) == (
        A,
        C,
        PROCEDURE,
        ITEM,
        INFO,
    )
    assert (record.outcome, record.made_at, shown.note) == ("provided", AT, HIDDEN_NOTE)

    with w.hub.store.engine.connect() as conn:
        blobs = [bytes(b) for b in conn.execute(select(hub_sealed_records.c.contents)).scalars()]
    keys = w.cast.directory().sender_keys(START)
    for blob in blobs:
        assert PROCEDURE.encode() not in blob and INFO.encode() not in blob
        for recipient in (HUB, PORTAL):  # the hub's key opens nothing, whichever name it claims
            with pytest.raises(IntegrityError):
                unseal(w.cast.hub.sealing, recipient, blob, keys)


def test_a_hub_that_swaps_contents_is_caught_by_the_portal(w: World) -> None:
    """Malicious hub: one record's contents shown under another record id, or under another provider."""
    x = individual_number()
    portal_code = w.agencies[PORTAL].file_person(x)
    w.agencies[A].record(x, C, PROCEDURE, ITEM, INFO, "provided", AT)
    w.agencies[B].record(x, C, "生活保護", 12, INFO, "provided", AT)
    w.settle()
    page = sealed_page(w.hub.store.engine, w.hub.store.codes, portal_code)
    first, second = page.records
    keys = w.cast.directory().sender_keys(START)
    assert len(open_page(w.cast.portal, page, keys).records) == 2  # the control: the honest page opens
    for forged in (
        replace(first, record_id=second.record_id),  # A's contents under B's record
        replace(first, provider=B),  # A's contents claimed as B's
        replace(first, contents=second.contents),
    ):
        with pytest.raises(IntegrityError) as refused:
            open_page(w.cast.portal, SealedPage((forged,), None), keys)
        assert refused.value.code == Code.SEALED_MESSAGE


def test_a_parked_message_that_opened_keeps_no_bytes_and_a_redelivered_record_is_filed_once(w: World) -> None:
    """Hub insider: a message that opened and then failed (here a provision record sent in the clear, holding
    procedure text: refused, ``clear_record``) is parked with its header fields and reason and no bytes the hub's
    key opens, and nothing of it is filed. Broker operator: a sealed record re-delivered is filed once."""
    x = individual_number()
    w.agencies[A].file_person(x)
    unknown = RecordMessage(uuid.uuid4().hex, w.agencies[A].code(x), C, PROCEDURE, ITEM, INFO, "provided", AT)
    hub_key = w.cast.directory().sealing_key(HUB)
    w.agencies[A].transport.send(
        HUB, seal(w.cast.agencies[A].signer, hub_key, HUB, uuid.uuid4().hex, unknown.kind, unknown.encode())
    )
    w.agencies[A].record(x, C, PROCEDURE, ITEM, INFO, "provided", AT)
    w.settle()
    [kept] = parked(w.hub.store.engine)
    assert (kept.code, kept.message, kept.claimed_sender) == (Code.CLEAR_RECORD, b"", A)
    assert "sealed_record" in kept.reason and PROCEDURE not in kept.reason
    broker: MemoryBroker = w.broker  # type: ignore[attr-defined]
    broker.append(Topics().inbox(HUB), broker.topics[Topics().inbox(HUB)][-1])
    w.settle()
    assert count(w, hub_sealed_records) == 1 and count(w, hub_records) == 0
