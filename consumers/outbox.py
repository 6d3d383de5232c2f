"""The outbox: what a node publishes (its own agencies' events of shared aggregates, in log order) and the relay
that publishes it to the events topic, recording how far it got only after the broker acknowledged."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from consumers.broker import BrokerUnavailable, ensure_topics, new_producer
from consumers.settings import KafkaSettings
from ledger.app import FlagLedger, is_local_only
from ledger.faultpoint import faultpoint
from ledger.runtime.bootstrap import Node
from ledger.runtime.linkage import refuse_in_hub_mode
from ledger.runtime.tables import relay_marks, relay_position
from projections.base import upsert

__all__ = ["Relay", "publishable"]

log = logging.getLogger("flagledger.consumers")


def publishable(app: FlagLedger, after: int = 0, page: int = 1000) -> Iterator[tuple[int, str, bytes]]:
    """(position, origin agency, decrypted envelope bytes) for every event this node originated and may share.

    Intake notes, approvals, staff and reads of protected details are local-only and never yielded.
    """
    local_topics: dict[str, bool] = {}
    for position, _, env in app.envelopes(start=after + 1, page=page):
        h = env.header
        if h.origin not in app.hosted:
            continue  # replicated from another agency: its origin publishes it
        local = local_topics.get(h.topic)
        if local is None:
            local = local_topics[h.topic] = is_local_only(h.topic)
        if not local:
            yield position, h.origin, env.to_bytes()


class Relay:
    """Publishes the outbox in log order and records how far it got only after the broker acknowledged.

    Before publishing (and every ``loss_check_seconds`` after) it checks that the broker still holds the
    last record it acknowledged; if not, the broker lost data and the relay republishes from the start —
    peers skip what they already hold as duplicates, so this is always safe.
    """

    def __init__(self, node: Node, settings: KafkaSettings) -> None:
        refuse_in_hub_mode(node.config, "the relay to the shared events topic")
        self.node = node
        self.settings = settings
        self._producer: Any = None
        self._next_check = 0.0
        self.republished_after_loss = 0

    def position(self) -> int:
        with self.node.engine.connect() as conn:
            pos = conn.execute(
                select(relay_position.c.position).where(relay_position.c.topic == self.settings.topic)
            ).scalar()
        return int(pos or 0)

    def reset(self, position: int = 0) -> None:
        """Republish from ``position`` (e.g. after the broker lost its data); ingest de-duplicates."""
        with self.node.engine.begin() as conn:
            upsert(conn, relay_position, [{"topic": self.settings.topic, "position": position}], ["topic"])
            if position == 0:
                conn.execute(relay_marks.delete().where(relay_marks.c.topic == self.settings.topic))

    def _save(self, position: int, marks: dict[int, tuple[int, str]]) -> None:
        with self.node.engine.begin() as conn:
            upsert(conn, relay_position, [{"topic": self.settings.topic, "position": position}], ["topic"])
            rows = [
                {"topic": self.settings.topic, "partition": p, "offset": o, "digest": d} for p, (o, d) in marks.items()
            ]
            upsert(conn, relay_marks, rows, ["topic", "partition"])

    def marks(self) -> dict[int, tuple[int, str]]:
        with self.node.engine.connect() as conn:
            rows = conn.execute(
                select(relay_marks.c.partition, relay_marks.c.offset, relay_marks.c.digest).where(
                    relay_marks.c.topic == self.settings.topic
                )
            ).all()
        return {int(p): (int(o), str(d)) for p, o, d in rows}

    def broker_lost_data(self) -> bool:
        """Whether the record at each of our marks is gone or different (creates missing topics first)."""
        created = ensure_topics(self.settings)
        marks = self.marks()
        if not marks:
            return False
        if self.settings.topic in created:
            return True
        from kafka import KafkaConsumer, TopicPartition

        reader = KafkaConsumer(
            enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            **self.settings.client_options(),
        )
        try:
            for partition, (offset, digest) in marks.items():
                # read the record back (Tansu's ListOffsets is not reliable, and a position past the end
                # of a recreated log answers nothing): absent or different means the broker lost data
                tp = TopicPartition(self.settings.topic, partition)
                reader.assign([tp])
                reader.seek(tp, offset)
                found = None
                deadline = time.monotonic() + 3
                while found is None and time.monotonic() < deadline:
                    found = next((r for r in reader.poll(timeout_ms=200).get(tp, []) if r.offset == offset), None)
                if found is None or hashlib.sha256(bytes(found.value)).hexdigest() != digest:
                    return True
            return False
        finally:
            reader.close()

    def run_once(self, batch: int = 1000) -> int:
        from kafka.errors import KafkaError

        try:
            return self._publish(batch)
        except KafkaError as exc:  # a fresh producer next time: a restarted broker forgot this one's id
            self._drop_producer()
            raise BrokerUnavailable(
                f"publishing to {self.settings.bootstrap_servers} failed: {exc!r}; nothing is lost — the relay "
                "resumes from its saved position"
            ) from exc

    def _publish(self, batch: int) -> int:
        if self._producer is None or time.monotonic() >= self._next_check:
            if self.broker_lost_data():
                log.warning(
                    "relay: the broker no longer holds what it acknowledged (restarted memory broker or "
                    "deleted topic): republishing %s from the start",
                    self.settings.topic,
                )
                self.reset(0)
                self.republished_after_loss += 1
                self._drop_producer()  # the new broker does not know its producer id: sends would be refused
            self._next_check = time.monotonic() + self.settings.loss_check_seconds
        if self._producer is None:
            self._producer = new_producer(self.settings)
        sent, start = 0, self.position()
        last = start
        # everything up to here is scanned below: the position may pass events that are not ours to publish
        # (other agencies' events, local-only ones), so the next round does not read them again
        scanned = self.node.app.max_position()
        pending: dict[str, tuple[Any, str]] = {}  # per key: the future of its latest record and its digest
        for position, origin, raw in publishable(self.node.app, last):
            future = self._producer.send(self.settings.topic, key=origin.encode(), value=raw)
            pending[origin] = (future, hashlib.sha256(raw).hexdigest())
            sent, last = sent + 1, position
            if sent % batch == 0:
                self._flush_and_save(last, pending)
        if pending:
            # one transaction per round (figure "nationwide propagation"): the acknowledged records' position
            # and everything scanned after them, which held nothing of ours to publish
            self._flush_and_save(max(last, scanned), pending)
            log.info("relay: published %d events up to position %d", sent, last)
        elif max(last, scanned) > start:
            self.reset(max(last, scanned))
        return sent

    def _flush_and_save(self, last: int, pending: dict[str, tuple[Any, str]]) -> None:
        self._producer.flush()
        marks: dict[int, tuple[int, str]] = {}
        for future, digest in pending.values():
            meta = future.get(timeout=30)  # raises the broker's error if this record was refused
            if meta.offset > marks.get(meta.partition, (-1, ""))[0]:
                marks[meta.partition] = (meta.offset, digest)
        faultpoint("relay.after_produce")
        self._save(last, marks)
        pending.clear()

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:  # closing a producer whose broker vanished may raise anything
                log.debug("relay: closing the old producer failed", exc_info=True)
        self._producer = None
        self._next_check = 0.0

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
