"""Who may link a person's numbers (issue 21): only their residence municipality, with four eyes.

Linking a stranger's number onto a victim's gives the stranger "self" access to the victim's portal records
(issue 18). Since issue 21 the ledger knows where a protected person lives (their recorded moves), so the
number change is left to the one municipality that makes it in life; anyone else's link is refused at their own
node and parked at every peer (``not_residence``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.errors import Code, PermissionDenied
from ledger.runtime.bootstrap import Node
from tests.conftest import SC, A, B, C, NodeFactory
from tests.support.links import link
from tests.support.trust import agency_pair

MOVED = date(2026, 12, 1)


def protect(node: Node, who: str, agency: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), who, ["NON_DISCLOSURE"])
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def test_only_the_municipality_the_person_moved_to_links_their_numbers(node: Node, person: Any) -> None:
    """Threat: an insider at the old municipality (or any other) joining a stranger's number onto a protected
    person's after they moved away: refused with ``not_residence``; the municipality they moved to links, with
    four eyes as before."""
    x, new_number = person(), person()
    protect(node, x, B)
    node.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=B, moved_on=MOVED)
    with pytest.raises(PermissionDenied) as refused:
        node.app.request_link(Actor(B, "req"), x, new_number, "number-change notice")
    assert refused.value.code == Code.NOT_RESIDENCE
    assert node.state.linked(node.app.subject(x)) is None
    old, new = link(node.app, C, x, new_number)
    assert node.state.linked(new) == (old, new)


def test_a_link_requested_before_the_move_is_not_approved_after_it(node: Node, person: Any) -> None:
    """Threat: an insider racing a move — a request made while X still lived at B is checked again when
    approved: once the move to C is recorded, B's approval is refused and nothing links."""
    x, stranger = person(), person()
    protect(node, x, B)
    rid = node.app.request_link(Actor(B, "req"), x, stranger, "number-change notice")
    node.app.record_move(Actor(C, "req"), x, to_agency=C, from_agency=B, moved_on=MOVED)
    with pytest.raises(PermissionDenied) as refused:
        node.app.approve_link(Actor(B, "apr"), rid)
    assert refused.value.code == Code.NOT_RESIDENCE
    assert node.state.linked(node.app.subject(stranger)) is None


def test_a_protection_body_never_links_numbers(node: Node, person: Any) -> None:
    """Threat: a peer agency of another kind (a support centre) linking numbers, which only a municipality
    does in life — even with no residence recorded."""
    with pytest.raises(PermissionDenied) as refused:
        node.app.request_link(Actor(SC, "req"), person(), person(), "notice")
    assert refused.value.code == Code.NOT_RESIDENCE


def test_a_peers_link_for_someone_living_elsewhere_is_parked(
    make_node: NodeFactory, tmp_path: Path, person: Any
) -> None:
    """Threat: a peer agency whose node skipped the check (or did not know of the move yet): node A knows X
    moved to A, so B's link of X's numbers is parked with ``not_residence``, nothing applied, the reason naming
    no pseudonym."""
    a, b = agency_pair(make_node, tmp_path)
    x, stranger = person(), person()
    protect(a, x, A)
    a.app.record_move(Actor(A, "req"), x, to_agency=A, from_agency=B, moved_on=MOVED)
    start = b.app.max_position()
    link(b.app, B, x, stranger)  # B's node knows no move: its own check passes
    (raw,) = [r for _, r in ((p, raw) for p, _, raw in publishable(b.app, start))]
    size = a.app.max_position()
    outcome = ingest(a.app, raw, PendingStore(a.app, a.engine))
    assert outcome.kind == "parked" and outcome.code == Code.NOT_RESIDENCE, outcome
    assert a.app.subject(x) not in outcome.reason
    assert a.app.max_position() == size
    assert a.state.linked(a.app.subject(stranger)) is None
