"""Counterexamples the leak-freedom machine found, each kept as a fixed story.

Every test here was a shrunk history printed by tests/adversarial/test_leak_freedom.py (one node) or
test_leak_freedom_nodes.py (three nodes); it failed on the product before the fix named in its docstring and
must never fail again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.app import Actor
from ledger.errors import PermissionDenied
from ledger.runtime.bootstrap import Node, init_node
from projections import views
from tests.adversarial.threat import AGENCIES, NAR, ND, A, B, C, named, prepare_node
from tests.support.people import individual_number


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = init_node(tmp_path / "node", AGENCIES)
    prepare_node(n)
    yield n
    n.close()


def protect(node: Node, at: str, x: str, ys: list[str]) -> None:
    """The seed's protection at ``at``: NO_AUTO_RESPONSE + NON_DISCLOSURE on X, NON_DISCLOSURE on each Y."""
    app = node.app
    rids = [app.request_flags(Actor(at, "req"), x, [NAR, ND])]
    rids += [app.request_flags(Actor(at, "req"), y, [ND]) for y in ys]
    for rid in rids:
        for approver in ("apr", "apr2"):
            if app.approve_request(Actor(at, approver), rid) == "approved":
                break
        app.execute_request(Actor(at, "op"), rid)


def release(node: Node, at: str, x: str, ys: list[str]) -> None:
    app = node.app
    rids = [app.request_flags(Actor(at, "req"), x, [NAR, ND], kind="release", explanation="Point 6")]
    rids += [app.request_flags(Actor(at, "req"), y, [ND], kind="release", explanation="Point 6") for y in ys]
    for rid in rids:
        for approver in ("apr", "apr2", "apr3"):  # the last holder's release: one approval more (docs/year.md)
            if app.approve_request(Actor(at, approver), rid) == "approved":
                break
        app.execute_request(Actor(at, "op"), rid)


def query(node: Node, querier: str, provider: str, subject: str) -> str:
    return node.app.request_provision(
        Actor(querier, "counter"), provider, subject, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).request_id


def test_counter_staff_at_a_do_not_see_who_asked_a_about_the_protected_victim(node: Node) -> None:
    """Found: A protects X, X flees to B, B asks A for X's earlier data (case 3). The request is held at A,
    and A's work queue, which any staff member could open, listed it with querier B — so the counter clerk Y
    talks to could read "B". Fix (projections/views.py): held requests in a work queue are listed only for
    staff who decide them (review_held / approve_held); everyone else gets none."""
    x, y = individual_number(), individual_number()
    protect(node, A, x, [y])
    query(node, B, A, x)
    counter_queue = views.work_queue(node, Actor(A, "counter"))
    assert named(counter_queue, {B}) == [], "the counter's work queue names B"
    assert counter_queue.held == ()
    reviewer_queue = views.work_queue(node, Actor(A, "rev"))
    assert [h.querier for h in reviewer_queue.held] == [B], "the reviewer still sees whom to call back (Point 5)"


def test_a_holding_municipality_s_counter_does_not_see_the_other_holders(node: Node) -> None:
    """Found: A protects X and Y before X flees; X flees to B, which protects them too. A's counter screen
    (nationwide protection, "holding agency" basis) listed every holder — A and B — to the clerk Y talks to.
    Fix (projections/views.py): a holding agency's staff see their own holding; the other holders never
    (issue 18: not even through a purposeful read by a reviewer or auditor; refused with holders_withheld)."""
    x, y = individual_number(), individual_number()
    protect(node, A, x, [y])
    protect(node, B, x, [y])
    for subject in (x, y):
        screen = views.counter_view(node, Actor(A, "counter"), subject).protection
        assert screen.protected and screen.holders == (A,) and screen.basis == "holding_agency"
        assert named(screen, {B}) == []
    with pytest.raises(PermissionDenied) as refused:
        views.nationwide_view(node, Actor(A, "rev"), x, purpose="Point 5: contact the other holder")
    assert refused.value.code == "holders_withheld"


def test_after_release_a_s_counter_still_does_not_name_the_provider_of_earlier_answers(node: Node) -> None:
    """Found: X flees to B; Y applies at A and A's query about X is answered by B (case 2, before any flag).
    B protects X and Y, later releases them. A's counter view then showed provider B for the old answers:
    the sticky rule held on the portal but not at the counter. Fix (projections/views.py): the counter names
    a provider only for answers created after the end of the person's last protection interval."""
    x, y = individual_number(), individual_number()
    before = query(node, A, B, x)
    protect(node, B, x, [y])
    release(node, B, x, [y])
    after = query(node, A, C, x)
    answers = {a.request_id: a for a in views.counter_view(node, Actor(A, "counter"), x).answers}
    assert answers[before].provider is None and answers[before].status == "answered"
    assert answers[after].provider == C, "an answer given after release names its provider again"


def test_after_release_self_information_does_not_show_holdings_learnt_before_it(node: Node) -> None:
    """Found (while checking the counter fix above, same history shape): A's query about X answered by B
    before protection; B protects, then releases. X's self-information (read with X's card) then listed
    "B holds 地方税関係情報" — derived from a record the sticky rule hides everywhere else. Fix
    (projections/views.py): self-information is derived only from records made after the last release."""
    x, y = individual_number(), individual_number()
    query(node, A, B, x)
    protect(node, B, x, [y])
    release(node, B, x, [y])
    assert views.self_information(node, x, x).holdings == ()
    query(node, A, C, x)
    assert [h.agency for h in views.self_information(node, x, x).holdings] == [C]


def test_a_probe_notice_that_arrives_before_its_request_still_names_the_person(tmp_path: Path) -> None:
    """Found by the three-node machine (threat_nodes.py): the ProbeNotice and the request it names are two
    streams, so another node may ingest the notice first. B's queue then listed the probe with an empty
    subject, for good: B could not tell whom someone was asking about. Fix (projections/queues.py): the
    request's ``Received`` fills in the subject of notices that came ahead of it."""
    from consumers.ingest import PendingStore, ingest
    from consumers.outbox import publishable
    from ledger.log.envelope import Envelope
    from tests.adversarial.threat import AGENCIES
    from tests.support.trust import trust_everyone

    key = tmp_path / "pseudonym.key"
    key.write_text("11" * 32)
    a, b = (
        init_node(tmp_path / n, [spec], pseudonym_key_file=key) for n, spec in (("a", AGENCIES[0]), ("b", AGENCIES[1]))
    )
    try:
        for n in (a, b):
            prepare_node(n)
        trust_everyone([a, b])
        x = individual_number()
        for raw in (r for _, _, r in publishable(a.app)):
            ingest(b.app, raw, PendingStore(b.app, b.engine))
        protect(b, B, x, [])
        for raw in (r for _, _, r in publishable(b.app)):
            assert ingest(a.app, raw, PendingStore(a.app, a.engine)).kind == "applied"
        after = a.app.max_position()
        rid = a.app.receive_query(B, A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報").request_id
        fresh = [raw for p, _, raw in publishable(a.app) if p > after]
        notice_first = sorted(fresh, key=lambda r: "ProbeNotice" not in Envelope.from_bytes(r).header.topic)
        for raw in notice_first:
            assert ingest(b.app, raw, PendingStore(b.app, b.engine)).kind == "applied"
        (probe,) = [p for p in views.work_queue(b, Actor(B, "rev")).probes if p.request_id == rid]
        assert probe.subject == b.app.subject(x) and probe.querier == B
    finally:
        a.close()
        b.close()
