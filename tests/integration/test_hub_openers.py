"""The hub's poll opened and verified in worker processes (issue #19, ``ledger.hub.openers``): the same items,
in the same order, with the same refusals as in the hub's own process — and a key revoked in the directory is
not trusted by a worker started before the revocation.

Threats: the broker operator (junk, a message changed on the way, one sealed to another party, all on the
hub's topic among good messages) and a peer agency whose signing key was revoked (stolen) and that keeps
sending under it. Spawned processes: a few seconds each on a busy machine, so one test holds them all.
"""

from __future__ import annotations

import random
from datetime import timedelta

from ledger.hub.openers import Item, Openers, open_all
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import seal
from ledger.linkage.transport import MemoryBroker, MemoryTransport, Topics
from tests.support.hub_world import START, A, B, C, Cast
from tests.support.people import individual_number

INBOX = Topics().inbox(HUB)


def shape(items: list[Item]) -> list[tuple[int, str | None, str | None, str | None, str | None]]:
    """What the loop goes on: place, sender, event id, kind (opened) or refusal code, per item."""
    return [
        (
            i.delivery.offset,
            i.sender,
            i.event_id,
            None if i.opened is None else i.opened.kind,
            None if i.refused is None else i.refused[0],
        )
        for i in items
    ]


def test_workers_open_a_poll_as_the_hub_would_and_trust_no_key_revoked_since_they_started() -> None:
    """Broker operator and a peer agency with a revoked key: a poll of good records, registrations, a digest,
    junk, a tampered message and one sealed to another party opens in two workers to exactly the items the
    hub's own process makes — same order, same refusals (each parked in its place) — and once B's key is
    revoked in the directory, the workers refuse B's messages as the hub's process does."""
    broker = MemoryBroker()
    cast = Cast.of(A, B, C, PORTAL)
    directory = cast.directory()
    ends = {n: AgencyEnd(k, MemoryTransport(broker, n), directory, lambda: START) for n, k in cast.agencies.items()}
    rng = random.Random(7)
    for _ in range(6):
        x = individual_number(rng)
        ends[A].record(x, C, "児童手当", 74, "地方税関係情報", "provided", "2026-01-01T09:00:00+09:00")
        ends[B].flag(x, "NON_DISCLOSURE", "set")
    broker.append(INBOX, b"junk")
    tampered = bytearray(broker.topics[INBOX][3])
    tampered[-1] ^= 1
    broker.append(INBOX, bytes(tampered))  # changed on the way: does not open
    other = seal(cast.agencies[B].signer, cast.agencies[C].sealing.public_key(), C, "e" * 32, "registration", b"{}")
    broker.append(INBOX, other)  # sealed to C, put on the hub's topic: misaddressed
    ends[C].schedule()
    ends[C].file_person(individual_number(rng))
    ends[C].tick()  # a digest carrying C's registration
    deliveries = MemoryTransport(broker, HUB).poll(0, 500)
    assert len(deliveries) > 20

    here = Openers(cast.hub.sealing, 0)
    workers = Openers(cast.hub.sealing, 2, min_messages=1)
    try:
        expected = open_all(cast.hub.sealing, directory.sender_keys(START), deliveries)
        assert shape(here.open(directory, START, deliveries)) == shape(expected)
        assert shape(workers.open(directory, START, deliveries)) == shape(expected)  # here while they start
        workers.start(directory)
        pool = workers._pool
        got = workers.open(directory, START, deliveries)
        assert pool is not None and workers._pool is pool  # opened in the ready workers, not here
        assert got == expected  # payloads included
        refused = [i.refused[0] for i in got if i.refused is not None]
        assert refused == ["malformed", "sealed_message", "misaddressed"]
        assert [i.opened.kind for i in got if i.opened is not None][-1] == "registration"  # the digest's

        key = cast.agencies[B].signer.key_id
        directory.ring.revoke(key, START - timedelta(days=1), "stolen")
        workers.start(directory)  # the old workers closed, new ones given the revocation
        assert workers._pool is not None and workers._pool is not pool
        after = workers.open(directory, START, deliveries)
        assert shape(after) == shape(open_all(cast.hub.sealing, directory.sender_keys(START), deliveries))
        opened_from_b = {i.delivery.offset for i in got if i.sender == B and i.opened is not None}
        assert len(opened_from_b) == 12  # B's registrations and flag changes
        now_refused = {i.delivery.offset for i in after if i.refused is not None and i.refused[0] == "revoked_key"}
        assert now_refused == opened_from_b
    finally:
        workers.close()
