"""An event held behind a gap survives a failure while it is being released (found while building tests/faults).

It used to be deleted from ``ingest_pending`` before it was appended: a crash or database error in between lost
it for good (its Kafka offset was committed long before). Now it is deleted only once it is in the ledger, and
the redelivery of the batch (which the consumer rewinds to) releases it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import OperationalError

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.errors import StorageError
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import open_node
from tests.faults.harness import make_pair


def test_a_held_event_is_not_lost_when_its_release_fails(
    make_node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = make_pair(make_node, tmp_path, seed=3)
    pair.protect_at_b(1)
    b = open_node(pair.b_dir)
    raws = [raw for _, _, raw in publishable(b.app)]
    b.close()
    by_stream: dict[str, list[bytes]] = {}
    for raw in raws:
        by_stream.setdefault(Envelope.from_bytes(raw).header.stream, []).append(raw)
    stream, (v1, v2, *_) = next((s, r) for s, r in by_stream.items() if len(r) >= 2)
    a = open_node(pair.a_dir)
    try:
        pending = PendingStore(a.app, a.engine)
        for other, events in by_stream.items():
            if other != stream:
                for raw in events:
                    assert ingest(a.app, raw, pending).kind == "applied"
        assert ingest(a.app, v2, pending).kind == "held_gap"
        real = a.app.recorder.insert_events
        v2_version = Envelope.from_bytes(v2).header.version

        def failing(events: Any, **kwargs: Any) -> Any:
            if events[0].originator_version == v2_version:
                raise OperationalError("server closed the connection unexpectedly")
            return real(events, **kwargs)

        monkeypatch.setattr(a.app.recorder, "insert_events", failing)
        with pytest.raises(StorageError, match="nothing was kept"):
            ingest(a.app, v1, pending)
        assert (stream, v2_version) in pending.waiting(), "the held event must still be waiting"
        monkeypatch.setattr(a.app.recorder, "insert_events", real)
        redelivered = ingest(a.app, v1, pending)  # the consumer rewound the batch: v1 comes again
        assert redelivered.kind == "applied" and redelivered.applied >= 1
        assert pending.waiting() == []
        versions = [row.originator_version for row in a.app.recorder.select_events(UUID(stream))]
        assert versions[:2] == [1, 2]
    finally:
        a.close()
