"""Every refusal of the core workflows raises our documented error and changes nothing in the log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from uuid import UUID, uuid4

import pytest

from ledger.app import Actor
from ledger.errors import (
    FlagLedgerError,
    InputError,
    NotFoundError,
    PermissionDenied,
    SelfApprovalError,
    StateConflict,
)
from ledger.runtime.bootstrap import Node
from tests.conftest import SC, A, B, C
from tests.support.staff import enrol, grant_approved


def _refused(node: Node, error: type[FlagLedgerError], action: Callable[[], object]) -> FlagLedgerError:
    before = node.app.max_position()
    with pytest.raises(error) as info:
        action()
    assert node.app.max_position() == before, "a refused command must not write"
    return info.value


@pytest.fixture
def pending(node: Node, person: Callable[[], str]) -> tuple[Node, str, object]:
    x = person()
    rid = node.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
    return node, x, rid


def test_the_requester_cannot_approve_their_own_request(pending) -> None:
    node, _, rid = pending
    grant_approved(node, Actor(B, "admin"), "req", "approver")
    err = _refused(node, SelfApprovalError, lambda: node.app.approve_request(Actor(B, "req"), rid))
    assert "four eyes" in str(err)


def test_one_approver_cannot_count_twice_when_two_are_required(node: Node, person) -> None:
    node.app.set_approval_policy(Actor(B, "admin"), 2)
    rid = node.app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"])
    assert node.app.approve_request(Actor(B, "apr"), rid) == "pending"
    # the same approver again is a conflict with the recorded state (409, as docs/api.md says), not four eyes
    err = _refused(node, StateConflict, lambda: node.app.approve_request(Actor(B, "apr"), rid))
    assert not isinstance(err, SelfApprovalError) and "already approved" in str(err)
    _refused(node, StateConflict, lambda: node.app.execute_request(Actor(B, "op"), rid))
    assert node.app.approve_request(Actor(B, "apr2"), rid) == "approved"


def test_wrong_role_is_refused_and_another_agencys_request_is_as_if_unknown(pending) -> None:
    """Threat: a peer agency (its staff probing ids). Another agency's request is answered exactly like an
    unknown id: a refusal naming the owner would tell them which agency holds the request."""
    node, _, rid = pending
    err = _refused(node, PermissionDenied, lambda: node.app.approve_request(Actor(B, "counter"), rid))
    assert err.code == "role_not_permitted"
    err = _refused(node, NotFoundError, lambda: node.app.approve_request(Actor(A, "apr"), rid))
    assert str(err) == "unknown flag request" and B not in str(err)


def test_execute_before_approval_is_refused(pending) -> None:
    node, _, rid = pending
    _refused(node, StateConflict, lambda: node.app.execute_request(Actor(B, "op"), rid))


def test_release_by_an_agency_that_does_not_hold_the_flag_is_refused(pending) -> None:
    node, x, rid = pending
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)
    _refused(
        node,
        NotFoundError,
        lambda: node.app.request_flags(Actor(A, "req"), x, ["NO_AUTO_RESPONSE"], kind="release", explanation="x"),
    )
    _refused(  # B holds NO_AUTO_RESPONSE but not NON_DISCLOSURE
        node,
        NotFoundError,
        lambda: node.app.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE"], kind="release", explanation="x"),
    )
    _refused(  # Point 6: the explanation given to the person must be recorded
        node,
        InputError,
        lambda: node.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"], kind="release"),
    )


def test_unknown_deactivated_and_foreign_staff_are_refused(pending) -> None:
    node, _, rid = pending
    err = _refused(node, PermissionDenied, lambda: node.app.approve_request(Actor(B, "nobody"), rid))
    assert err.code == "unknown_staff"
    node.app.deactivate_staff(Actor(B, "admin"), "apr")
    err = _refused(node, PermissionDenied, lambda: node.app.approve_request(Actor(B, "apr"), rid))
    assert err.code == "inactive_staff"
    err = _refused(node, PermissionDenied, lambda: node.app.approve_request(Actor("999999", "apr"), rid))
    assert err.code == "foreign_agency"


def test_unknown_ids_and_bad_inputs_are_refused(node: Node, person) -> None:
    app = node.app
    _refused(node, NotFoundError, lambda: app.approve_request(Actor(B, "apr"), uuid4()))
    _refused(node, InputError, lambda: app.request_flags(Actor(B, "req"), "123456789012", ["NON_DISCLOSURE"]))
    _refused(node, InputError, lambda: app.request_flags(Actor(B, "req"), person(), ["NO_SUCH_FLAG"]))
    _refused(node, InputError, lambda: app.request_flags(Actor(B, "req"), person(), []))
    yesterday = date.today() - timedelta(days=1)
    _refused(
        node,
        InputError,
        lambda: app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"], review_date=yesterday),
    )
    _refused(
        node,
        InputError,
        lambda: app.request_provision(
            Actor(A, "counter"), B, person(), legal_item=0, procedure="児童手当", info_kind="地方税関係情報"
        ),
    )


def test_only_protection_bodies_send_body_requests_and_only_to_the_addressee(node: Node, person) -> None:
    app = node.app
    enrol(node, Actor(A, "admin"), "bodyreq", ["requester"], name="b")
    _refused(node, PermissionDenied, lambda: app.send_body_request(Actor(A, "req"), B, person(), ["NON_DISCLOSURE"]))
    bid = app.send_body_request(Actor(SC, "req"), B, person(), ["NON_DISCLOSURE"])
    err = _refused(  # sent to another municipality: as if there were no such request
        node,
        NotFoundError,
        lambda: app.request_flags(Actor(A, "req"), person(), ["NON_DISCLOSURE"], body_request_id=bid),
    )
    assert str(err) == "unknown protection-body request"


def test_a_held_request_cannot_be_decided_by_one_person(node: Node, person) -> None:
    app = node.app
    x = person()
    rid = app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    answer = app.request_provision(
        Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    from uuid import UUID

    held = UUID(answer.request_id)
    _refused(node, StateConflict, lambda: app.approve_decision(Actor(B, "apr"), held, 1))  # nothing proposed yet
    grant_approved(node, Actor(B, "admin"), "rev", "approver")
    app.propose_decision(Actor(B, "rev"), held, "provide", "unknown")
    seen = app.provision_request(held).proposal_version
    _refused(node, SelfApprovalError, lambda: app.approve_decision(Actor(B, "rev"), held, seen))
    assert app.querier_answer(held).status == "in_progress"


def test_other_agencies_requests_and_cases_answer_exactly_like_unknown_ones(node: Node, person) -> None:
    """Threat: a peer agency's staff (or a perpetrator at its counter) probing ids. For every command that acts
    on an agency's own request or case, another agency's object and an id naming nothing give the same error
    class, code and message pattern, name no agency, and write nothing."""
    app = node.app
    x = person()
    case = app.open_case(Actor(B, "req"), x)
    flag = app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
    protect = app.request_flags(Actor(B, "req"), person(), ["NO_AUTO_RESPONSE"])
    app.approve_request(Actor(B, "apr"), protect)
    app.execute_request(Actor(B, "op"), protect)
    protected = app.flag_request(protect).subject
    held = UUID(
        app.request_provision(
            Actor(A, "counter"), B, protected, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        ).request_id
    )
    app.propose_decision(Actor(B, "rev"), held, "refuse", "unknown")
    version = app.provision_request(held).proposal_version
    commands: list[tuple[str, Callable[[str, UUID], object]]] = [
        ("case", lambda c, i: app.add_perpetrator(Actor(c, "req"), i, person())),
        ("case", lambda c, i: app.request_flags(Actor(c, "req"), person(), ["NON_DISCLOSURE"], case_id=i)),
        ("flag request", lambda c, i: app.approve_request(Actor(c, "apr"), i)),
        ("flag request", lambda c, i: app.reject_request(Actor(c, "apr"), i, "no")),
        ("flag request", lambda c, i: app.execute_request(Actor(c, "op"), i)),
        ("provision request", lambda c, i: app.propose_decision(Actor(c, "rev"), i, "provide", "unknown")),
        ("provision request", lambda c, i: app.approve_decision(Actor(c, "apr"), i, version)),
        ("provision request", lambda c, i: app.provision_answer(Actor(c, "counter"), i)),
    ]
    owned = {"case": case, "flag request": flag, "provision request": held}
    for what, run in commands:
        theirs, missing = owned[what], uuid4()
        for agency in (C, SC):  # C neither asked nor provides; SC is another kind of agency
            err = _refused(node, NotFoundError, lambda r=run, a=agency, t=theirs: r(a, t))
            unknown = _refused(node, NotFoundError, lambda r=run, a=agency, m=missing: r(a, m))
            assert err.code == unknown.code == "not_found", what
            assert (str(err), str(unknown)) == (f"unknown {what}", f"unknown {what}")
            assert B not in str(err) and A not in str(err)
    # an id of another kind of object is not told apart either
    err = _refused(node, NotFoundError, lambda: app.approve_request(Actor(B, "apr"), held))
    assert str(err) == "unknown flag request"
