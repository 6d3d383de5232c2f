"""Our two application recorders pass eventsourcing's own recorder test cases, and keep the log head exact.

The cases are the library's (``eventsourcing.tests.persistence``, shipped in the 9.5.6 wheel we pin):
insert and select, notification paging and filters, atomic batches, the unique key, concurrent writers
with readers tailing the log, throughput, and (PostgreSQL) non-interleaved ids and subscriptions. Each is
run against :class:`LogHeadSQLiteRecorder` and :class:`BinaryInsertRecorder` as the nodes configure them,
on uuid and text originator ids. The library's rows are not envelopes, so the recorder is given a leaf
function for them (a node gives the mapper's); after every case the log head row must equal the RFC 6962
root of exactly the rows stored, in notification order — the property every signed batch relies on.

Threat: an insider or a library upgrade changing how rows are written (a batch half stored, ids that
interleave or skip, a head that no longer matches the rows) would leave the signed log disagreeing with
the store; these cases fail first.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Literal
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import ApplicationRecorderTestCase, NonInterleavingNotificationIDsBaseCase

from ledger.log.pg_recorder import BinaryInsertRecorder
from ledger.log.sqlite_recorder import LogHeadSQLiteRecorder
from ledger.merkle import root_hash
from tests.support.postgres import temp_database

OriginatorIdType = Literal["uuid", "text"]


def row_leaf(state: bytes) -> bytes:
    """The leaf of a library test row (no envelope): RFC 6962's leaf hash of the state itself."""
    return hashlib.sha256(b"\x00" + state).digest()


class HeadChecked:
    """After each case, the head row of every recorder made is the root of the rows stored."""

    made: list[LogHeadSQLiteRecorder | BinaryInsertRecorder]

    def assert_head_matches_rows(self) -> None:
        for recorder in self.made:
            notes = recorder.select_notifications(start=None, limit=1_000_000)
            head = recorder.read_head()
            if not notes:
                assert head is None or head.size == 0
                continue
            assert head is not None, "rows stored but no log head row"
            assert [n.id for n in notes] == sorted(n.id for n in notes)
            assert head.size == len(notes)
            assert head.root == root_hash([row_leaf(n.state) for n in notes])


# -- SQLite ------------------------------------------------------------------------------------------


class SQLiteContract(HeadChecked):
    originator_id_type: OriginatorIdType = "uuid"
    tmp: TemporaryDirectory[str]
    db_uri: str

    def setUp(self) -> None:
        self.made = []
        self.tmp = TemporaryDirectory()
        # a file, as a node has (WAL mode, several connections): the in-memory database has only one
        self.db_uri = str(Path(self.tmp.name) / "events.db")

    def tearDown(self) -> None:
        try:
            self.assert_head_matches_rows()
        finally:
            self.tmp.cleanup()

    def new_originator_id(self) -> UUID | str:
        return uuid4() if self.originator_id_type == "uuid" else f"test-{uuid4()}"

    def create_recorder(self) -> LogHeadSQLiteRecorder:
        datastore = SQLiteDatastore(self.db_uri, pool_size=100, originator_id_type=self.originator_id_type)
        recorder = LogHeadSQLiteRecorder(datastore)
        recorder.leaf_of = row_leaf
        recorder.create_table()
        self.made.append(recorder)
        return recorder


class TestSQLiteApplicationRecorder(SQLiteContract, ApplicationRecorderTestCase[LogHeadSQLiteRecorder]):
    pass


class TestSQLiteApplicationRecorderTextIds(TestSQLiteApplicationRecorder):
    originator_id_type = "text"


class TestSQLiteNonInterleaving(SQLiteContract, NonInterleavingNotificationIDsBaseCase):
    pass


# -- PostgreSQL --------------------------------------------------------------------------------------


@pytest.mark.postgres
class PostgresContract(HeadChecked):
    originator_id_type: OriginatorIdType = "uuid"
    schema = "public"
    pool_size = 1
    datastore: PostgresDatastore
    dbname: str
    _db: Iterator[str]

    def setUp(self) -> None:
        self.made = []
        self._db = iter_database()
        self.dbname = next(self._db).rsplit("/", 1)[1]
        if self.schema != "public":
            with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={self.dbname}") as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self.datastore = PostgresDatastore(
            self.dbname,
            "127.0.0.1",
            "5432",
            "postgres",
            "",
            pool_size=self.pool_size,
            max_overflow=0,
            max_waiting=0,
            originator_id_type=self.originator_id_type,
            schema=self.schema,
        )

    def tearDown(self) -> None:
        try:
            self.assert_head_matches_rows()
        finally:
            self.datastore.close()
            next(self._db, None)  # drops the database

    def new_originator_id(self) -> UUID | str:
        return uuid4() if self.originator_id_type == "uuid" else f"test-{uuid4()}"

    def create_recorder(self) -> BinaryInsertRecorder:
        recorder = BinaryInsertRecorder(self.datastore)
        recorder.leaf_of = row_leaf
        recorder.create_table()
        self.made.append(recorder)
        return recorder

    def resize(self, size: int) -> None:
        self.datastore.pool.open()
        self.datastore.pool.resize(size, size)


def iter_database() -> Iterator[str]:
    with temp_database("fl_contract") as url:
        yield url


@pytest.mark.postgres
class TestPostgresApplicationRecorder(PostgresContract, ApplicationRecorderTestCase[BinaryInsertRecorder]):
    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:
        self.resize(12)
        super().test_concurrent_no_conflicts(initial_position)

    def test_concurrent_throughput(self) -> None:
        self.resize(10)
        super().test_concurrent_throughput()

    def test_insert_subscribe(self) -> None:
        self.resize(2)
        self.optional_test_insert_subscribe()

    def test_lock_timeout_is_honoured(self) -> None:
        """The library's case holds the table lock through its private ``_insert_stored_events``, which our
        recorder refuses on purpose (rows inserted that way would not enter the log head). The same property
        through the public door: while another transaction holds the events table, an insert waits at most
        the datastore's ``lock_timeout`` per attempt and then fails, storing nothing and leaving the head."""
        self.datastore.lock_timeout = 1
        recorder = self.create_recorder()
        recorder.insert_events([StoredEvent(uuid4(), 1, "topic1", b"before")])
        head = recorder.read_head()
        locked, release = threading.Event(), threading.Event()

        def hold_lock() -> None:
            with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={self.dbname}") as conn:
                conn.execute(f'LOCK TABLE "{self.schema}".stored_events IN EXCLUSIVE MODE')
                locked.set()
                release.wait(timeout=60)

        holder = threading.Thread(target=hold_lock, daemon=True)
        holder.start()
        try:
            assert locked.wait(timeout=10)
            with pytest.raises(OperationalError, match="lock timeout"):
                # the retry decorator tries 10 times; one attempt is enough to show the timeout bites
                BinaryInsertRecorder.insert_events.__wrapped__(recorder, [StoredEvent(uuid4(), 1, "topic1", b"during")])
        finally:
            release.set()
            holder.join(timeout=10)
        assert recorder.read_head() == head
        assert [n.state for n in recorder.select_notifications(None, 10)] == [b"before"]

    def test_the_library_insert_path_is_refused(self) -> None:
        """Rows written by the library's own insert helper would not advance the log head: refused."""
        recorder = self.create_recorder()
        with self.datastore.transaction(commit=True) as curs, pytest.raises(NotImplementedError):
            recorder._insert_stored_events(curs, [StoredEvent(uuid4(), 1, "topic1", b"x")])
        assert recorder.select_notifications(None, 10) == []


@pytest.mark.postgres
class TestPostgresApplicationRecorderTextIds(TestPostgresApplicationRecorder):
    originator_id_type = "text"


@pytest.mark.postgres
class TestPostgresApplicationRecorderWithSchema(TestPostgresApplicationRecorder):
    """The datastore's schema (POSTGRES_SCHEMA) names the events table, its head row and the lock taken."""

    schema = "ledger_events"

    def test_the_tables_are_in_the_schema(self) -> None:
        recorder = self.create_recorder()
        recorder.insert_events([StoredEvent(uuid4(), 1, "topic1", b"x")])
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={self.dbname}") as conn:
            tables = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema <> "
                "'information_schema' AND table_schema NOT LIKE 'pg_%' ORDER BY 2"
            ).fetchall()
        assert tables == [(self.schema, "stored_events"), (self.schema, "stored_events_head")]


@pytest.mark.postgres
class TestPostgresNonInterleaving(PostgresContract, NonInterleavingNotificationIDsBaseCase):
    pool_size = 2


# -- what the library's cases do not cover, in the same setting -------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def recorder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApplicationRecorder]:
    if request.param == "sqlite":
        rec: LogHeadSQLiteRecorder | BinaryInsertRecorder = LogHeadSQLiteRecorder(
            SQLiteDatastore(str(tmp_path / "events.db"))
        )
        rec.leaf_of = row_leaf
        rec.create_table()
        yield rec
        return
    with temp_database("fl_contract") as url:
        datastore = PostgresDatastore(url.rsplit("/", 1)[1], "127.0.0.1", "5432", "postgres", "")
        try:
            rec = BinaryInsertRecorder(datastore)
            rec.leaf_of = row_leaf
            rec.create_table()
            yield rec
        finally:
            datastore.close()


def test_a_refused_batch_leaves_the_head_where_it_was(recorder: LogHeadSQLiteRecorder) -> None:
    """Threat: a peer (or a race) sends an event at a taken version. The whole batch is refused and the
    log head does not count the rows that were not stored (a head ahead of the rows would make every later
    signed batch commit to a log that never existed)."""
    oid = uuid4()
    recorder.insert_events([StoredEvent(oid, 1, "t", b"one")])
    head = recorder.read_head()
    with pytest.raises(IntegrityError):
        recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"fresh"), StoredEvent(oid, 1, "t", b"again")])
    assert recorder.read_head() == head
    assert [n.state for n in recorder.select_notifications(None, 10)] == [b"one"]
