"""Number changes received from other agencies follow the rules the linking node applies (issue 18).

Threat: a peer agency — trusted for its own acts on its own streams only. It may link its own numbers, never
undo another agency's link, and a link of its that would chain or cycle onto a number already linked here is
parked (``link_conflict``), not applied: otherwise a peer (or one clerk there) could join a stranger to a victim
protected elsewhere. A genuine race (the peer's unlink not here yet) is applied by replaying it later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consumers.ingest import PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from consumers.parked import park, parked, replay_parked
from ledger.errors import Code
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, NodeFactory
from tests.support.forge import forge
from tests.support.links import link, unlink
from tests.support.trust import agency_pair

LINKED = "ledger.domain.identity:PseudonymLink.Linked"
UNLINKED = "ledger.domain.identity:PseudonymLink.Unlinked"
NONE_NAMED = {"residence_move": ""}  # (a link names the move it was judged by: none known here)


def published(src: Node, after: int) -> list[tuple[int, bytes]]:
    return [(p, raw) for p, _, raw in publishable(src.app, after)]


def test_a_peers_link_that_would_chain_onto_a_number_linked_here_is_parked(
    make_node: NodeFactory, tmp_path: Path, person: Any
) -> None:
    """Threat: a peer agency linking a number that this node already knows as part of a number change (a chain
    V1→V2→V3 or a cycle). Parked with ``link_conflict`` on both ingest paths, nothing applied; once the local
    link is undone (four eyes, recorded) the parked message replays and applies."""
    a, b = agency_pair(make_node, tmp_path)
    v1, v2, v3 = person(), person(), person()
    link(a.app, A, v1, v2)
    start = b.app.max_position()
    link(b.app, B, v2, v3)  # B's node does not know A's link yet: B's own check passes
    (raw,) = [r for _, r in published(b, start)]  # (the link requests are local: only Linked is published)
    size = a.app.max_position()
    outcome = ingest(a.app, raw, PendingStore(a.app, a.engine))
    assert outcome.kind == "parked" and outcome.code == Code.LINK_CONFLICT, outcome
    assert "already linked" in outcome.reason and a.app.subject(v2) not in outcome.reason, "names no pseudonym"
    (batched,) = ingest_many(a.app, [raw], PendingStore(a.app, a.engine))
    assert batched.code == Code.LINK_CONFLICT
    assert a.app.max_position() == size
    assert a.state.linked(a.app.subject(v3)) is None
    park(a, outcome, raw, "test")
    (row,) = [r for r in parked(a) if r["code"] == Code.LINK_CONFLICT]
    unlink(a.app, A, v1)
    assert replay_parked(a, int(row["id"])).kind == "applied"
    assert a.state.linked(a.app.subject(v3)) == (a.app.subject(v2), a.app.subject(v3))


def test_a_forged_chain_in_one_batch_is_parked_after_its_first_link(
    make_node: NodeFactory, tmp_path: Path, person: Any
) -> None:
    """Threat: a peer agency whose node skips its own checks, sending W1→W2 and W2→W3 in one batch (the batched
    path stages events unread by the state): the second is parked, the first applies."""
    a, b = agency_pair(make_node, tmp_path)
    w1, w2, w3 = (b.app.subject(person()) for _ in range(3))
    first = forge(
        b.app, B, LINKED, b.app.ids.link(B, w1), 1, {"agency": B, "old": w1, "new": w2, "by": "apr", **NONE_NAMED}
    )
    second = forge(
        b.app, B, LINKED, b.app.ids.link(B, w2), 1, {"agency": B, "old": w2, "new": w3, "by": "apr", **NONE_NAMED}
    )
    itself = forge(
        b.app, B, LINKED, b.app.ids.link(B, w3), 1, {"agency": B, "old": w3, "new": w3, "by": "apr", **NONE_NAMED}
    )
    outcomes = ingest_many(a.app, [first, second, itself], PendingStore(a.app, a.engine))
    assert [o.kind for o in outcomes] == ["applied", "parked", "parked"], outcomes
    assert outcomes[1].code == outcomes[2].code == Code.LINK_CONFLICT
    assert a.state.linked(w3) is None and a.state.linked(w1) == (w1, w2)


def test_only_the_linking_agency_undoes_its_link(make_node: NodeFactory, tmp_path: Path, person: Any) -> None:
    """Threat: a peer agency undoing another agency's number change (the victim's new number would lose the
    protection on her old one): an ``Unlinked`` on A's link stream signed by B is parked ``foreign_writer``."""
    a, b = agency_pair(make_node, tmp_path)
    old, new = person(), person()
    link(a.app, A, old, new)
    for _, raw in published(a, 0):
        assert ingest(b.app, raw, PendingStore(b.app, b.engine)).kind == "applied"
    stream = a.app.ids.link(A, a.app.subject(old))
    head = b.app.signed_store.head(stream)
    assert head is not None
    raw = forge(b.app, B, UNLINKED, stream, head[0] + 1, {"by": "apr", "request_id": stream, "reason": "not hers"})
    outcome = ingest(a.app, raw, PendingStore(a.app, a.engine))
    assert outcome.kind == "parked" and outcome.code == Code.FOREIGN_WRITER
    assert a.state.linked(a.app.subject(new)) == (a.app.subject(old), a.app.subject(new))


def test_an_unlink_keeps_the_same_protection_on_every_node_whatever_the_arrival_order(
    make_node: NodeFactory, tmp_path: Path, person: Any
) -> None:
    """Threat: the broker and the network (delivery order) against a wrongly linked victim — B protected the
    stranger's number believing it hers before B's node had A's link. On A's node the flag arrives after the
    link, on B's node before it; after A undoes the link both nodes keep the flag on the victim (by its signed
    time it was set through the link), so no provider's node answers about her automatically."""
    from tests.integration.test_projections_views import ND, protect

    a, b = agency_pair(make_node, tmp_path)
    victim, stranger = person(), person()
    v, s = a.app.subject(victim), a.app.subject(stranger)
    link(a.app, A, victim, stranger)
    a_sent = 0
    protect(b, B, stranger, [ND])  # on B's node: before the link arrives
    for position, raw in published(a, a_sent):
        assert ingest(b.app, raw, PendingStore(b.app, b.engine)).kind == "applied"
        a_sent = position
    for _, raw in published(b, 0):
        assert ingest(a.app, raw, PendingStore(a.app, a.engine)).kind == "applied"
    unlink(a.app, A, victim)
    for _, raw in published(a, a_sent):
        assert ingest(b.app, raw, PendingStore(b.app, b.engine)).kind == "applied"
    for node in (a, b):
        assert node.state.flags_for(v) == {ND: [B]}, node.config.data_dir
        assert node.state.flags_for(s) == {ND: [B]}
        assert node.state.carried(v) == [ND]
