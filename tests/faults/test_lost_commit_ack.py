"""The database commits a received event but the connection dies before it says so: the redelivery is a duplicate.

Found by ``test_postgres_loss`` (terminated backends): B's key event was committed at A while A's consumer saw
the connection drop. The store's memo of stream heads still named the version before, so every redelivery was
decided "append" and refused by the unique key (``conflict``), for good: nothing more of B reached A. Now a
failed insert forgets the memo of its streams (``ledger/log/store.py``, as a failed save always did) and the
redelivery reads the head from the store. Threat: no attacker, a database outage; what it defends is a peer's
events (and so the protections they carry) reaching this node at all. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import OperationalError

from consumers.ingest import PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from ledger.errors import StorageError
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import open_node
from tests.faults.harness import make_pair
from tests.support.postgres import temp_database

KEYS = "ledger.domain.keys:"
ROSTER = "ledger.domain.roster:"


@pytest.mark.parametrize("batched", [False, True], ids=["ingest", "ingest_many"])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_event_committed_without_acknowledgement_is_a_duplicate_when_redelivered(
    make_node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batched: bool, backend: str
) -> None:
    with temp_database() if backend == "postgres" else nullcontext() as url:
        pair = make_pair(make_node, tmp_path, seed=5, a_database_url=url)
        pair.protect_at_b(1)
        b = open_node(pair.b_dir)
        raws = [raw for _, _, raw in publishable(b.app)]
        b.close()
        headers = [Envelope.from_bytes(r).header for r in raws]
        # the second event of a stream A already holds the first of: its head is in A's memo (key and roster
        # events go through ingest() one at a time even in a batch: not the batched write tried here)
        last = next(i for i, h in enumerate(headers) if h.version == 2 and not h.topic.startswith((KEYS, ROSTER)))
        a = open_node(pair.a_dir)
        try:
            pending = PendingStore(a.app, a.engine)
            for raw in raws[:last]:
                assert ingest(a.app, raw, pending).kind in ("applied", "duplicate")
            h = headers[last]
            stream = UUID(h.stream)
            assert a.app.signed_store.head(stream) is not None
            real = a.app.recorder.insert_events

            def commit_then_drop(events: Any, **kwargs: Any) -> Any:
                real(events, **kwargs)  # the database has it …
                raise OperationalError("server closed the connection unexpectedly")  # … the client never hears

            monkeypatch.setattr(a.app.recorder, "insert_events", commit_then_drop)
            if batched:
                # the batch's write failed, so each event is decided again on its own, from the store
                first = ingest_many(a.app, [raws[last]], pending)
                monkeypatch.setattr(a.app.recorder, "insert_events", real)
                assert [o.kind for o in first] == ["duplicate"], first
            else:
                with pytest.raises(StorageError):
                    ingest(a.app, raws[last], pending)
                monkeypatch.setattr(a.app.recorder, "insert_events", real)
            assert a.app.recorder.select_events(stream, gt=h.version - 1, lte=h.version), "it was committed"
            again = ingest_many(a.app, [raws[last]], pending) if batched else [ingest(a.app, raws[last], pending)]
            assert [o.kind for o in again] == ["duplicate"], again
            rest = ingest_many(a.app, raws[last + 1 :], pending)
            assert all(o.kind in ("applied", "duplicate") for o in rest), rest
        finally:
            a.close()
