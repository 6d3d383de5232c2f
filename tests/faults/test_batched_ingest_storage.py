"""A database failure inside a batched ingest is retried, never parked (found by CI: a consumer whose PostgreSQL
backends were being terminated parked B's key event with code ``storage`` and committed its offset, so it never
reached A).

``ingest_many`` hands some events to ``ingest`` itself (key events, checkpoints, events a held one waits for); a
``StorageError`` raised there used to be caught by the per-message error handler and turned into a parked
outcome while the rest of the batch went in. Threat: no attacker, a database outage; what it defends is the
perpetrator's view and a peer's authority, since a key or ``FlagsSet`` lost at A leaves B's acts unverifiable
or a victim unprotected there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import OperationalError

from consumers.ingest import PendingStore, ingest_many
from consumers.outbox import publishable
from ledger.errors import StorageError
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import open_node
from tests.faults.harness import make_pair

KEYS = "ledger.domain.keys:"


def test_a_storage_failure_on_ingests_own_path_raises_and_parks_nothing(
    make_node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = make_pair(make_node, tmp_path, seed=4)
    pair.protect_at_b(2)
    b = open_node(pair.b_dir)
    raws = [raw for _, _, raw in publishable(b.app)]
    b.close()
    headers = [Envelope.from_bytes(r).header for r in raws]
    a = open_node(pair.a_dir)
    try:
        missing_keys = [
            h
            for h in headers
            if h.topic.startswith(KEYS)
            and not a.app.recorder.select_events(UUID(h.stream), gt=h.version - 1, lte=h.version)
        ]
        assert missing_keys, "A must lack one of B's key events, so the batch takes ingest()'s own path"
        pending = PendingStore(a.app, a.engine)
        real = a.app.recorder.insert_events

        def keys_fail(events: Any, **kwargs: Any) -> Any:
            if any(e.topic.startswith(KEYS) for e in events):  # the connection drops on the key event only
                raise OperationalError("server closed the connection unexpectedly")
            return real(events, **kwargs)

        monkeypatch.setattr(a.app.recorder, "insert_events", keys_fail)
        with pytest.raises(StorageError, match="nothing was kept"):
            ingest_many(a.app, raws, pending)
        monkeypatch.setattr(a.app.recorder, "insert_events", real)
        outcomes = ingest_many(a.app, raws, pending)  # the consumer rewound the poll: the batch comes again
        assert [o.reason for o in outcomes if o.kind == "parked"] == []
        for h in headers:
            assert a.app.recorder.select_events(UUID(h.stream), gt=h.version - 1, lte=h.version), (h.topic, h.version)
    finally:
        a.close()
