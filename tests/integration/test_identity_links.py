"""Number changes since issue 18: four eyes at the linking agency, unlink, no chains or cycles, retired cards.

Each test names its threat: the perpetrator (who reaches the portal with a card, theirs or a stolen one),
an insider (one clerk linking a stranger's number onto a victim's), a peer agency (tests/integration/
test_link_ingest.py), an administrator or shell user (what they do is recorded, never silent).
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.app import Actor
from ledger.errors import Code, InputError, NotFoundError, PermissionDenied, SelfApprovalError, StateConflict
from ledger.runtime.bootstrap import Node
from projections import views
from projections.flag_state import NationwideState
from tests.conftest import A, B, C
from tests.integration.test_projections_views import NAR, ND, protect, query, release, shown
from tests.support.links import link, unlink
from tests.support.staff import enrol_approved


def national(node: Node, pseudonym: str) -> dict[str, list[str]]:
    """The views' nationwide state (staff listings, as-of reports), caught up with the log."""
    node.projector.catch_up()
    return NationwideState(node.engine).flags_for(pseudonym)


def test_a_link_takes_a_second_person_of_the_linking_agency(node: Node, person: Any) -> None:
    """Threat: an insider — one clerk alone links a stranger's number onto a victim's (the stranger then reads
    the victim's portal as "self"). A request changes nothing; the requester cannot approve it, nor can an
    approver of another agency or a clerk without the approver role; only a second staff member's approval
    links, and both are recorded."""
    app = node.app
    enrol_approved(node, Actor(C, "admin"), "both", ["requester", "approver"], "both")
    victim, stranger = person(), person()
    query(node, A, B, victim)
    rid = app.request_link(Actor(C, "req"), victim, stranger, "number-change notice")
    assert shown(node, stranger, victim) == [], "a request alone links nothing"
    assert node.state.linked(app.subject(victim)) is None
    with pytest.raises(PermissionDenied):
        app.approve_link(Actor(C, "req"), rid)  # a requester holds no approver role
    both = app.request_link(Actor(C, "both"), person(), person(), "notice")
    with pytest.raises(SelfApprovalError) as own:
        app.approve_link(Actor(C, "both"), both)  # with both roles, still not their own request
    assert own.value.code == Code.FOUR_EYES
    with pytest.raises(NotFoundError):
        app.approve_link(Actor(A, "apr"), rid)  # another agency's request is unknown there
    with pytest.raises(PermissionDenied):
        app.approve_link(Actor(C, "counter"), rid)
    with pytest.raises(PermissionDenied):
        app.request_link(Actor(C, "counter"), victim, stranger, "x")
    assert node.state.linked(app.subject(victim)) is None
    done = app.approve_link(Actor(C, "apr"), rid, "notice checked")
    assert (done["old"], done["new"]) == (app.subject(victim), app.subject(stranger))
    assert node.state.linked(app.subject(stranger)) == (app.subject(victim), app.subject(stranger))
    events = [(e.event, e.actor) for e in views.subject_timeline(node, Actor(C, "aud"), stranger, "audit")]
    assert ("LinkRequest.Requested", "req") in events and ("LinkRequest.Approved", "apr") in events
    assert ("PseudonymLink.Linked", "apr") in events
    with pytest.raises(StateConflict):
        app.approve_link(Actor(C, "apr2"), rid)  # decided once


def test_a_link_states_its_reason_and_distinct_numbers(node: Node, person: Any) -> None:
    """Threat: an insider — a link with no stated reason leaves an auditor nothing to check it against."""
    x = person()
    with pytest.raises(InputError):
        node.app.request_link(Actor(B, "req"), x, person(), "  ")
    with pytest.raises(InputError):
        node.app.request_link(Actor(B, "req"), x, x, "notice")
    rid = node.app.request_link(Actor(B, "req"), x, person(), "notice")
    with pytest.raises(InputError):
        node.app.reject_link(Actor(B, "apr"), rid, "")
    node.app.reject_link(Actor(B, "apr"), rid, "the notice names someone else")
    with pytest.raises(StateConflict):
        node.app.approve_link(Actor(B, "apr2"), rid)
    assert node.state.linked(node.app.subject(x)) is None


def test_chains_and_cycles_are_refused(node: Node, person: Any) -> None:
    """Threat: an insider (or two) building V1→V2→V3→V1 so that numbers of different people become one
    person. Any number already in an active link — old or new, any agency's — is refused, at request and again
    at approval (two requests pending at once)."""
    app = node.app
    v1, v2, v3 = person(), person(), person()
    link(app, A, v1, v2)
    for old, new in ((v2, v3), (v3, v1), (v1, v3), (v3, v2), (v2, v1)):
        with pytest.raises(StateConflict) as refused:
            app.request_link(Actor(B, "req"), old, new, "notice")
        assert refused.value.code == Code.LINK_CONFLICT
        assert "chain or cycle" in str(refused.value)
    w1, w2, w3 = person(), person(), person()
    first = app.request_link(Actor(B, "req"), w1, w2, "notice")
    second = app.request_link(Actor(C, "req"), w2, w3, "notice")
    app.approve_link(Actor(B, "apr"), first)
    with pytest.raises(StateConflict) as late:
        app.approve_link(Actor(C, "apr"), second)
    assert late.value.code == Code.LINK_CONFLICT
    assert node.state.linked(app.subject(w3)) is None


def test_the_old_card_is_nobodys_after_the_number_change(node: Node, person: Any) -> None:
    """Threat: the perpetrator holding the victim's old card (taken when she fled): after the number change it
    no longer counts as her on the portal — not for her records, not for its own number's — while the new
    card does."""
    old, new = person(), person()
    made = query(node, A, B, old)
    assert shown(node, old, old) == [made]
    link(node.app, C, old, new)
    later = query(node, A, B, new)
    assert views.portal_records(node, old, old).access == "none"
    assert views.portal_records(node, old, new).access == "none"
    assert shown(node, old, old) == [] and shown(node, old, new) == []
    assert views.self_information(node, old, old).access == "none", "nor its self-information"
    assert views.self_information(node, new, old).access == "self"
    assert views.portal_records(node, new, old).access == "self"
    assert set(shown(node, new, new)) == {made, later}


def test_unlink_ends_a_strangers_access_and_keeps_what_was_set_through_the_link(node: Node, person: Any) -> None:
    """Threat: two colluding clerks link a stranger's number onto a victim's (victim → stranger: the stranger's
    card is now "self" for her records). The link is recorded; a second pair unlinks it. The stranger then
    sees none of her records; a flag set on her number before the link stops covering the stranger; a flag the
    agency set on the stranger's number *through* the link (believing it hers) keeps protecting her — the
    unlink never silently unprotects the real victim — and the approval says so."""
    app = node.app
    victim, stranger = person(), person()
    mine = query(node, A, C, victim)
    protect(node, B, victim, [NAR])  # before the link: stays with her number
    link(app, C, victim, stranger, requester="req", approver="apr")
    assert views.portal_records(node, stranger, victim).access == "self"
    assert mine in shown(node, stranger, victim), "what the wrong link exposes (no ND yet)"
    protect(node, A, stranger, [ND])  # set through the link: A thinks this is the victim's new number
    assert mine not in shown(node, stranger, victim)
    done = unlink(app, C, victim)
    v, s = app.subject(victim), app.subject(stranger)
    assert done["carried"] == {v: [ND], s: []}
    assert done["no_longer_covered"] == {v: [], s: [NAR]}
    assert views.portal_records(node, stranger, victim).access == "none"
    assert views.portal_records(node, stranger, stranger).access == "self"
    assert node.state.flags_for(v) == {ND: [A], NAR: [B]}, "the victim keeps A's flag set through the link"
    assert node.state.flags_for(s) == {ND: [A]}
    assert national(node, v) == {ND: [A], NAR: [B]}, "the views agree"
    assert national(node, s) == {ND: [A]}
    assert node.state.linked(v) is None and node.state.linked(s) is None
    assert shown(node, victim, victim) == [], "protected: nothing shown"
    release(node, A, stranger, [ND])  # A finds its mistake and releases: the carried protection ends too
    assert node.state.flags_for(v) == {NAR: [B]} and node.state.flags_for(s) == {}
    assert national(node, v) == {NAR: [B]}
    assert national(node, s) == {}
    release(node, B, victim, [NAR])
    assert mine not in shown(node, victim, victim), "the carried ND's end is her sticky cutoff too"
    events = [e.event for e in views.subject_timeline(node, Actor(C, "aud"), victim, "audit")]
    assert events.count("LinkRequest.Approved") == 2 and "PseudonymLink.Unlinked" in events


def test_only_the_linking_agency_unlinks_and_relinks_its_number(node: Node, person: Any) -> None:
    """Threat: an insider at another agency undoing a genuine number change (the victim's new number would lose
    the protection on her old one). Only the agency whose stream it is may ask; it may link the old number
    again afterwards (the correct new number), through the same four eyes."""
    app = node.app
    old, wrong, right = person(), person(), person()
    link(app, B, old, wrong)
    with pytest.raises(NotFoundError):
        app.request_unlink(Actor(A, "req"), old, "not ours")
    with pytest.raises(NotFoundError):
        app.request_unlink(Actor(B, "req"), wrong, "the new number is not an old one")
    enrol_approved(node, Actor(B, "admin"), "both", ["requester", "approver"], "both")
    rid = app.request_unlink(Actor(B, "both"), old, "wrong person")
    with pytest.raises(SelfApprovalError):
        app.approve_link(Actor(B, "both"), rid)
    app.approve_link(Actor(B, "apr2"), rid)
    with pytest.raises(NotFoundError):
        app.request_unlink(Actor(B, "req"), old, "again")
    link(app, B, old, right)  # Relinked on the same stream
    assert node.state.linked(app.subject(old)) == (app.subject(old), app.subject(right))
    assert views.portal_records(node, wrong, old).access == "none"
    assert views.portal_records(node, right, old).access == "self"


def test_views_rebuilt_from_the_log_equal_the_live_ones_after_links_and_unlinks(sqlite_node: Node, person: Any) -> None:
    """Threat: an administrator rebuilding views (or `audit views`) — the link tables must replay to the same
    rows, or a carried protection could vanish from staff listings after a rebuild."""
    node = sqlite_node
    app = node.app
    a, b, c = person(), person(), person()
    protect(node, A, a, [ND])
    link(app, B, a, b)
    protect(node, C, b, [NAR])
    unlink(app, B, a)
    link(app, B, a, c)
    release(node, C, b, [NAR])
    live = {p: national(node, app.subject(p)) for p in (a, b, c)}
    node.projector.rebuild()
    assert {p: national(node, app.subject(p)) for p in (a, b, c)} == live
    assert live[c] == {ND: [A]} and live[b] == {}


def test_a_second_number_change_keeps_every_protection_and_retires_both_old_cards(node: Node, person: Any) -> None:
    """Threat: the perpetrator holding either of the victim's old cards after her number changed twice, and the
    gap a second change could open (her newest number unprotected). V1→V2, then V2→V3: the chain is refused;
    the documented path — unlink V1→V2 as a second change, then link V2→V3 — keeps every flag on every number,
    and neither old card counts as her."""
    app = node.app
    v1, v2, v3 = person(), person(), person()
    protect(node, B, v1, [ND])  # before the first change
    link(app, C, v1, v2)
    protect(node, A, v2, [NAR])  # after it
    with pytest.raises(StateConflict) as chain:
        app.request_link(Actor(C, "req"), v2, v3, "second notice")
    assert chain.value.code == Code.LINK_CONFLICT and "--second-change" in str(chain.value)
    rid = app.request_unlink(Actor(C, "req"), v1, "second number change", second_change=True)
    done = app.approve_link(Actor(C, "apr"), rid)
    p1, p2, p3 = (app.subject(p) for p in (v1, v2, v3))
    assert done["kind"] == "second_change" and done["no_longer_covered"] == {p1: [], p2: []}
    assert done["carried"] == {p1: [NAR], p2: [ND]}
    link(app, C, v2, v3)
    for p in (p1, p2, p3):
        assert node.state.flags_for(p) == {ND: [B], NAR: [A]}, p
        assert national(node, p) == {ND: [B], NAR: [A]}, p
    for card in (v1, v2):
        for subject in (v1, v2, v3):
            assert views.portal_records(node, card, subject).access == "none", "a retired card is nobody's"
    assert views.portal_records(node, v3, v2).access == "self"
    with pytest.raises(StateConflict):
        app.request_link(Actor(A, "req"), v1, person(), "the oldest card, linked elsewhere")
    with pytest.raises(StateConflict):
        app.request_link(Actor(A, "req"), person(), v1, "a retired card as someone's new number")
