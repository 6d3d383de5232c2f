"""The linkage transport on a real Kafka-protocol broker (Tansu): the same story as in memory, byte for byte,
and what the broker operator sees.

Threats: the broker operator and the network (every record is a sealed message of a bucket size: nothing
decodes, no key but the recipient's opens it); a peer agency (its consumer is assigned its own inbox topic
only, and a message to another agency never reaches it). Tansu enforces no ACLs, so "an agency may read only
its own inbox and write only the hub's" is enforced here by the client (assignment, check_route) and in
production by the broker's ACLs (docs/linkage.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.errors import ConfigurationError, IntegrityError
from ledger.linkage.names import HUB
from ledger.linkage.sealing import read_header, unseal
from ledger.linkage.transport import Topics
from tests.support.linkage import Party, sender_keys, story
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka

A, B = "131016", "131024"


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with broker() as address:
        yield address


def settings(address: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=20000)


def raw_records(address: str, topics: list[str]) -> dict[str, list[bytes]]:
    """The broker operator's view: every record of the topics, read with a plain client and no key."""
    from kafka import KafkaConsumer, TopicPartition

    reader = KafkaConsumer(bootstrap_servers=address, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(reader.partitions_for_topic(t) or {0})]
        reader.assign(partitions)
        reader.seek_to_beginning()
        # up to each partition's end as it is now: an idle timeout instead read too little on a loaded machine
        ends = reader.end_offsets(partitions)
        seen: dict[str, list[bytes]] = {t: [] for t in topics}
        deadline = time.monotonic() + 60
        while any(reader.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, "the broker did not hand over its records within 60 s"
            for records in reader.poll(timeout_ms=500).values():
                for record in records:
                    seen[record.topic].append(bytes(record.value))
        return seen
    finally:
        reader.close()


def test_kafka_carries_the_same_bytes_each_inbox_to_its_own_party(bootstrap: str) -> None:
    cfg = settings(bootstrap)
    topics = Topics(f"t{uuid.uuid4().hex[:8]}")
    a, b, hub = Party(A), Party(B), Party(HUB)
    ensure_inboxes(cfg, topics, [HUB, A, B])
    opened: list[KafkaTransport] = []

    def open_transport(party: str) -> KafkaTransport:
        transport = KafkaTransport(cfg, party, topics)
        assert transport.assignment() == {topics.inbox(party)}  # its own inbox topic, nothing else
        opened.append(transport)
        return transport

    sent = story(open_transport, a, b, hub)

    # the broker operator: the records are exactly the sealed messages, one bucket size per direction
    inboxes = [topics.inbox(p) for p in (HUB, A, B)]
    seen = raw_records(bootstrap, inboxes)
    assert sorted(seen[topics.inbox(HUB)]) == sorted(sent[:2])
    assert seen[topics.inbox(A)] == [sent[2]] and seen[topics.inbox(B)] == [sent[3]]
    assert len({len(m) for m in sent[:2]}) == 1 and len({len(m) for m in sent[2:]}) == 1
    keys = sender_keys(a, b, hub)
    for topic, records in seen.items():
        for value in records:
            header = read_header(value)
            assert topic == topics.inbox(header.recipient)
            for plain in (f"q{A}".encode(), f"q{B}".encode(), b"no data", b"query", b"answer"):
                assert plain not in value
            for other in (a, b, hub):
                if other.name != header.recipient:
                    with pytest.raises(IntegrityError):  # misaddressed, or does not open
                        unseal(other.sealing, header.recipient, value, keys)


def test_a_party_without_an_inbox_topic_is_told_to_create_it(bootstrap: str) -> None:
    with pytest.raises(ConfigurationError) as missing:
        KafkaTransport(settings(bootstrap), A, Topics(f"none{uuid.uuid4().hex[:8]}"))
    assert "ensure_inboxes" in str(missing.value)
