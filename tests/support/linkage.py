"""Parties with node keys and one story both linkage transports must tell the same way (memory and Kafka)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import Code, PermissionDenied
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.names import HUB
from ledger.linkage.sealing import SenderKeys, read_header, ring_keys, seal, unseal
from ledger.linkage.transport import Delivery, Transport
from ledger.log.signing import KeyRecord, KeyRing, Signer

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Party:
    """One party's node keys: Ed25519 to sign (registered with everyone), X25519 to be sealed to."""

    name: str
    signer: Signer = field(init=False)
    sealing: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)

    def __post_init__(self) -> None:
        self.signer = Signer.generate(self.name)


def sender_keys(*parties: Party) -> SenderKeys:
    ring = KeyRing()
    for p in parties:
        ring.add(KeyRecord(p.name, p.signer.key_id, p.signer.public_raw.hex(), START))
    return ring_keys(ring, START)


def drain(transport: Transport, want: int, polls: int = 40) -> list[Delivery]:
    got: list[Delivery] = []
    for _ in range(polls):
        got += transport.poll(timeout_ms=250)
        if len(got) >= want:
            break
    return got


def story(open_transport: Callable[[str], Transport], a: Party, b: Party, hub: Party) -> list[bytes]:
    """Two agencies query the hub; the hub answers each; each reads its own answer only, byte for byte; what
    was polled but not committed comes again; an agency cannot write to another's inbox. Returns every message
    sent, for the broker operator's view: A's and B's queries, then A's and B's answers."""
    keys = sender_keys(a, b, hub)
    ta, tb, th = open_transport(a.name), open_transport(b.name), open_transport(HUB)
    sent: list[bytes] = []
    try:
        queries = {
            p.name: seal(p.signer, hub.sealing.public_key(), HUB, uuid.uuid4().hex, "query", f"q{p.name}".encode())
            for p in (a, b)
        }
        ta.send(HUB, queries[a.name])
        tb.send(HUB, queries[b.name])
        ta.flush()
        tb.flush()
        at_hub = drain(th, 2)
        assert sorted(d.value for d in at_hub) == sorted(queries.values())  # the same bytes, nothing else
        assert {d.topic for d in at_hub} == {th.inbox}
        th.commit()
        answers = {}
        for d in at_hub:
            opened = unseal(hub.sealing, HUB, d.value, keys)
            to = a if opened.sender == a.name else b
            answers[to.name] = seal(
                hub.signer, to.sealing.public_key(), to.name, uuid.uuid4().hex, "answer", b"no data", ANSWER_SIZE
            )
            th.send(to.name, answers[to.name])
        th.flush()
        for party, transport in ((a, ta), (b, tb)):
            [mine] = drain(transport, 1)
            assert mine.value == answers[party.name]
            assert read_header(mine.value).recipient == party.name
            assert unseal(party.sealing, party.name, mine.value, keys).payload == b"no data"
            assert transport.poll(timeout_ms=300) == []  # the other agency's answer never reaches it
        # A polled but did not commit: the next transport opened for A is handed the answer again
        ta.close()
        ta = open_transport(a.name)
        [again] = drain(ta, 1)
        assert again.value == answers[a.name]
        ta.commit()
        ta.close()
        ta = open_transport(a.name)
        assert ta.poll(timeout_ms=500) == []
        with pytest.raises(PermissionDenied) as refused:
            ta.send(b.name, queries[a.name])
        assert refused.value.code == Code.WRONG_ROUTE
        # A's answer, then B's — not the order the hub happened to drain the queries in
        sent = [*queries.values(), answers[a.name], answers[b.name]]
    finally:
        for t in (ta, tb, th):
            t.close()
    return sent
