"""A flag on a person's new number survives the late arrival of the release of their old number.

Streams reach other nodes in order one by one, not with each other. Found by the three-node leak-freedom run:
A released its protection of X's old number, X's number was changed, A protected the new number — and at B's
node the release arrived after the new protection and deleted A's nationwide NO_AUTO_RESPONSE on X, so B's
node no longer held requests about X for A's sake. Fixed in projections/flag_state.py (``_still_held``).
"""

from __future__ import annotations

from pathlib import Path

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import Node
from tests.conftest import A
from tests.support.approvals import approve_fully
from tests.support.links import link
from tests.support.people import individual_number
from tests.support.trust import agency_pair

NAR = "NO_AUTO_RESPONSE"


def decided(node: Node, rid: object) -> None:
    approve_fully(node.app, A, rid)
    node.app.execute_request(Actor(A, "op"), rid)


def test_a_late_release_of_the_old_number_leaves_the_new_number_protected(make_node, tmp_path: Path) -> None:
    import random

    a, b = agency_pair(make_node, tmp_path)
    rng = random.Random(5)
    old, new = individual_number(rng), individual_number(rng)

    decided(a, a.app.request_flags(Actor(A, "req"), old, [NAR]))
    decided(a, a.app.request_flags(Actor(A, "req"), old, [NAR], kind="release", explanation="Point 6"))
    link(a.app, A, old, new)
    decided(a, a.app.request_flags(Actor(A, "req"), new, [NAR]))
    a.projector.catch_up()
    assert a.state.flags_for(a.app.subject(new)) == {NAR: [A]}  # at home, in the order it happened

    messages = [raw for _, _, raw in publishable(a.app)]
    released = [m for m in messages if Envelope.from_bytes(m).header.topic.endswith("FlagsReleased")]
    assert len(released) == 1
    late = [m for m in messages if m not in released] + released  # the old stream's release comes last
    pending = PendingStore(b.app, b.engine)
    for raw in late:
        assert ingest(b.app, raw, pending).kind == "applied"

    def held_at_b() -> dict[str, list[str]]:
        b.projector.catch_up()
        return b.state.flags_for(b.app.subject(new))

    assert held_at_b() == {NAR: [A]}, "A's protection of the new number was lost at B's node"
    b.projector.rebuild()
    assert held_at_b() == {NAR: [A]}, "a rebuild in the same order must agree"

    # releasing the new number does end it everywhere (the row is not kept forever)
    before = a.app.max_position()
    decided(a, a.app.request_flags(Actor(A, "req"), new, [NAR], kind="release", explanation="Point 6"))
    for _, _, raw in publishable(a.app, before):
        assert ingest(b.app, raw, pending).kind == "applied"
    assert held_at_b() == {}
