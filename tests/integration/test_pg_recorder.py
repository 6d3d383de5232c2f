"""The PostgreSQL recorder sending rows as binary arrays stores exactly what the library's would, in order."""

from __future__ import annotations

import copy
import hashlib
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError as LibIntegrityError
from eventsourcing.persistence import StoredEvent

from ledger.domain.identity import AccessRecord
from ledger.errors import StateConflict
from ledger.log.pg_recorder import TOPIC, BinaryInsertRecorder
from tests.conftest import B, NodeFactory
from tests.support.postgres import temp_database
from tests.support.store import rows

pytestmark = pytest.mark.postgres

# every byte value, the text format's escape characters, and a NUL in the middle
AWKWARD = [bytes(range(256)), b"\\x00\\\\'\"{},()", b"", b"a\x00b", b"\xff" * 3000]


def _events(states: list[bytes]) -> list[StoredEvent]:
    return [StoredEvent(uuid4(), 1, f"tests:T{i}", s) for i, s in enumerate(states)]


def _leaves(events: list[StoredEvent]) -> list[bytes]:
    """Log leaves for rows that are no envelopes (every row inserted enters the log head: ledger.log.head)."""
    return [hashlib.sha256(e.state).digest() for e in events]


def test_the_node_uses_the_binary_recorder_and_rows_round_trip(make_node: NodeFactory) -> None:
    with temp_database() as url:
        node = make_node(database_url=url, staff=False)
        assert node.config.ledger_env(cipher_key=node.keys.cipher_key())["APPLICATION_RECORDER_TOPIC"] == TOPIC
        recorder = node.app.recorder
        assert isinstance(recorder, BinaryInsertRecorder)
        before = recorder.max_notification_id() or 0
        head = recorder.read_head()
        events = _events(AWKWARD)
        ids = recorder.insert_events(events, leaves=_leaves(events))
        after = recorder.read_head()
        assert head is not None and after is not None and after.size == head.size + len(events)
        assert ids is not None and list(ids) == list(range(before + 1, before + 1 + len(events)))
        stored = rows(node)[-len(events) :]
        assert [(p, s, v, t, st) for p, s, v, t, st in stored] == [
            (i, str(e.originator_id), e.originator_version, e.topic, e.state) for i, e in zip(ids, events, strict=True)
        ]
        # and the library's own read path sees the same rows
        notes = recorder.select_notifications(start=ids[0], limit=len(events))
        assert [(n.id, n.originator_id, n.topic, n.state) for n in notes] == [
            (i, e.originator_id, e.topic, e.state) for i, e in zip(ids, events, strict=True)
        ]


def test_a_taken_version_refuses_the_whole_batch(make_node: NodeFactory) -> None:
    with temp_database() as url:
        node = make_node(database_url=url, staff=False)
        recorder = node.app.recorder
        first = _events([b"one"])
        recorder.insert_events(first, leaves=_leaves(first))
        count, head = len(rows(node)), recorder.read_head()
        clash = [*_events([b"new"]), StoredEvent(first[0].originator_id, 1, "tests:T", b"again")]
        with pytest.raises(LibIntegrityError):
            recorder.insert_events(clash, leaves=_leaves(clash))
        assert len(rows(node)) == count  # nothing of the refused batch was kept
        assert recorder.read_head() == head  # nor counted in the log head


def test_a_concurrent_save_through_the_ledger_is_a_state_conflict(make_node: NodeFactory) -> None:
    with temp_database() as url:
        node = make_node(database_url=url)
        record = AccessRecord(agency=B, staff="aud", subject=f"p{uuid4().hex}", what="holders", purpose="監査")
        twin = copy.deepcopy(record)  # the same stream at the same version: what a concurrent writer produces
        node.app.save_as(B, record)
        with pytest.raises(StateConflict):
            node.app.save_as(B, twin)
        node.app.signed_store.forget()
        assert node.app.load(AccessRecord, record.id, "record").agency == B


def test_processes_opening_one_new_database_together_all_get_the_tables() -> None:
    """Eight openers race on a new database's CREATE … IF NOT EXISTS; none fails, all see one table."""
    import threading
    from urllib.parse import urlparse

    from eventsourcing.postgres import PostgresDatastore

    with temp_database() as url:
        u = urlparse(url)
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def open_store() -> None:
            datastore = PostgresDatastore(
                dbname=u.path.lstrip("/"),
                host=u.hostname or "127.0.0.1",
                port=str(u.port or 5432),
                user=u.username or "postgres",
                password="",
            )
            try:
                recorder = BinaryInsertRecorder(datastore)
                barrier.wait()
                recorder.create_table()
                hello = _events([b"hello"])
                recorder.insert_events(hello, leaves=_leaves(hello))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                datastore.close()

        threads = [threading.Thread(target=open_store) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
