"""`audit verify` with stream heads spilled out of memory checks the chain exactly as with all of them in memory.

A tiny heads cache forces every stream's head out to the temporary table between its events: the honest log
still verifies, and a deleted middle event is still named, alike.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.audit.verify import verify_log
from ledger.domain.provision import ProvisionRequest
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import A, B
from tests.support import store

AGENCIES = (AgencySpec(B, "B市", "municipality"),)
STREAMS = 12


@pytest.fixture
def interleaved(make_node: Callable[..., Node], backend: str | None) -> Node:
    """12 held provision requests, their events saved in rounds so that streams interleave in the log."""
    node = make_node(AGENCIES, database_url=backend, staff=False)
    reqs = [
        ProvisionRequest(
            agency=B,
            querier=A,
            subject=f"p{i:032x}",
            legal_item=74,
            procedure="児童手当",
            info_kind="地方税関係情報",
            applicant="unknown",
        )
        for i in range(STREAMS)
    ]
    node.app.save_as(B, *reqs)
    for r in reqs:
        r.hold(flags=["NO_AUTO_RESPONSE"])
    node.app.save_as(B, *reqs)
    for r in reqs:
        r.propose("provide", "unknown", "rev1", "")
    node.app.save_as(B, *reqs)
    return node


def test_the_honest_log_verifies_with_heads_spilled(interleaved: Node) -> None:
    whole = verify_log(interleaved.app)
    spilled = verify_log(interleaved.app, heads_in_memory=2)
    assert whole.ok and spilled.ok, (whole.first_bad, spilled.first_bad)
    assert whole.heads_spilled == 0 and spilled.heads_spilled >= STREAMS
    assert (spilled.events, spilled.streams, spilled.batches) == (whole.events, whole.streams, whole.batches)


def test_a_deleted_middle_event_is_named_when_its_stream_head_was_spilled(interleaved: Node) -> None:
    rows = [r for r in store.rows(interleaved) if r[3].startswith("ledger.domain.provision:ProvisionRequest.")]
    first_stream = rows[0][1]
    held, proposed = (r for r in rows if r[1] == first_stream and r[2] in (2, 3))
    store.delete(interleaved, held[0])
    report = verify_log(interleaved.app, heads_in_memory=2)
    assert report.first_bad is not None, "the deleted event went unnoticed"
    # the hold was the first event of its batch: the batch's next event is out of place, and the hole in the
    # positions names the deleted one
    assert (report.first_bad.position, report.first_bad.code) == (held[0], "missing")
    assert report.first_bad.position < proposed[0]
    assert report.first_bad == verify_log(interleaved.app).first_bad, "same finding as with every head in memory"
