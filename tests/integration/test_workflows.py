"""The life of a protection, told through the application surface, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from ledger.app import Actor, QuerierAnswer
from ledger.domain.provision import ProbeNotice
from ledger.runtime.bootstrap import Node
from tests.conftest import SC, A, B, C
from tests.support.answers import release_decided
from tests.support.links import link


def _protect(node: Node, who: str, flags: list[str], agency: str = B) -> UUID:
    rid = node.app.request_flags(Actor(agency, "req"), who, flags)
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)
    return rid


def _topics(node: Node) -> list[str]:
    return [env.header.topic for _, _, env in node.app.envelopes()]


def test_intake_then_set_renew_and_release_with_approvals(node: Node, person) -> None:
    app = node.app
    x, y = person(), person()
    case = app.open_case(
        Actor(B, "req"), x, perpetrators=[y], checklist={"flag_restrictions_explained": True}, notes="避難中"
    )
    assert app.case(case).checklist["flag_restrictions_explained"] is True
    assert app.case(case).perpetrators == [app.subject(y)]
    rid = app.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"], case_id=case)
    assert app.flag_request(rid).review_date == (date.today() + timedelta(days=365)).isoformat()
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    held = app.protection(B, x)
    assert held is not None and set(held.flags) == {"NON_DISCLOSURE", "NO_AUTO_RESPONSE"}
    later = date.today() + timedelta(days=400)
    renew = app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"], kind="renew", review_date=later)
    app.approve_request(Actor(B, "apr"), renew)
    app.execute_request(Actor(B, "op"), renew)
    assert app.protection(B, x).flags["NO_AUTO_RESPONSE"]["review_date"] == later.isoformat()  # type: ignore[union-attr]
    release = app.request_flags(
        Actor(B, "req"), x, ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"], kind="release", explanation="説明済み"
    )
    assert app.approve_request(Actor(B, "apr"), release) == "pending"  # the last holder: a second approval
    app.approve_request(Actor(B, "apr2"), release)
    app.execute_request(Actor(B, "op"), release)
    assert app.protection(B, x).flags == {}  # type: ignore[union-attr]
    assert app.flag_state is not None and app.flag_state.flags_for(app.subject(x)) == {}
    assert _topics(node).count("ledger.domain.flags:Protection.FlagsReleased") == 1


def test_a_two_step_chain_needs_two_different_approvers(node: Node, person) -> None:
    node.app.set_approval_policy(Actor(B, "admin"), 2)
    rid = node.app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"])
    assert node.app.approve_request(Actor(B, "apr"), rid) == "pending"
    assert node.app.approve_request(Actor(B, "apr2"), rid) == "approved"
    node.app.execute_request(Actor(B, "op"), rid)
    assert node.app.flag_request(rid).status == "executed"


def test_permission_table_changes_are_events_that_take_effect(node: Node, person) -> None:
    app = node.app
    app.revoke_permission(Actor(B, "admin"), "requester", "request_flag")
    try:
        app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"])
        raise AssertionError("requester should have lost request_flag")
    except Exception as exc:
        assert type(exc).__name__ == "PermissionDenied"
    app.grant_permission(Actor(B, "admin"), "counter", "request_flag")
    assert app.request_flags(Actor(B, "counter"), person(), ["NON_DISCLOSURE"])
    topics = _topics(node)
    assert "ledger.domain.agencies:Agency.PermissionRevoked" in topics
    assert "ledger.domain.agencies:Agency.PermissionGranted" in topics


def test_a_support_centre_asks_b_and_b_decides_through_its_own_chain(node: Node, person) -> None:
    app = node.app
    x = person()
    body = app.send_body_request(Actor(SC, "req"), B, x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
    rid = app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"], body_request_id=body)
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    assert app.flag_request(rid).body_request_id == body
    assert app.flag_state is not None and set(app.flag_state.flags_for(app.subject(x))) == {
        "NO_AUTO_RESPONSE",
        "NON_DISCLOSURE",
    }


def test_provision_is_automatic_without_flags_and_held_with_one_anywhere(node: Node, person) -> None:
    app = node.app
    x, other = person(), person()
    free = app.request_provision(
        Actor(A, "counter"), C, other, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert free.status == "answered"
    _protect(node, x, ["NO_AUTO_RESPONSE"], agency=B)
    # C holds no flag itself: the nationwide state decides
    held = app.request_provision(
        Actor(A, "counter"), C, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert held == QuerierAnswer(held.request_id, "in_progress", QuerierAnswer.IN_PROGRESS)
    assert "NO_AUTO" not in held.message and B not in held.message
    request = app.provision_request(UUID(held.request_id))
    assert request.status == "held"
    notices = [
        e
        for _, _, env in app.envelopes()
        if env.header.topic == "ledger.domain.provision:ProbeNotice.Sent"
        for e in [app.signed_mapper.decode(env)]
    ]
    assert len(notices) == 1 and notices[0].holders == [B] and notices[0].querier == A  # type: ignore[attr-defined]
    assert isinstance(notices[0], ProbeNotice.Sent)


def test_a_held_request_is_provided_or_refused_only_with_approval(node: Node, person) -> None:
    app = node.app
    x = person()
    _protect(node, x, ["NO_AUTO_RESPONSE"])
    ids = [
        UUID(
            app.request_provision(
                Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
            ).request_id
        )
        for _ in range(2)
    ]
    app.propose_decision(Actor(B, "rev"), ids[0], "provide", "protected_person", "本人の申請を確認")
    assert (
        app.approve_decision(Actor(B, "apr"), ids[0], app.provision_request(ids[0]).proposal_version)
        == "provided_manually"
    )
    app.propose_decision(Actor(B, "rev"), ids[1], "refuse", "known_perpetrator")
    assert app.approve_decision(Actor(B, "apr"), ids[1], app.provision_request(ids[1]).proposal_version) == "refused"
    assert {app.querier_answer(i).status for i in ids} == {"in_progress"}, "released only at the batch time"
    assert sorted(release_decided(app)["released"]) == sorted(str(i) for i in ids)
    assert app.querier_answer(ids[0]).status == "answered"
    assert app.querier_answer(ids[1]) == QuerierAnswer(str(ids[1]), "not_provided", QuerierAnswer.NOT_PROVIDED)


def test_a_number_change_carries_protection_to_the_new_pseudonym(node: Node, person) -> None:
    app = node.app
    old, new = person(), person()
    _protect(node, old, ["NO_AUTO_RESPONSE"])
    link(app, B, old, new)
    answer = app.request_provision(
        Actor(A, "counter"), C, new, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert answer.status == "in_progress"


def test_proxies_and_reads_of_protected_details_are_recorded(node: Node, person) -> None:
    app = node.app
    x, y = person(), person()
    app.register_proxy(Actor(A, "req"), x, y)
    app.cancel_proxy(Actor(B, "req"), x, y, "DV")
    app.record_access(Actor(B, "aud"), x, "holding agencies", "監査")
    topics = _topics(node)
    assert "ledger.domain.identity:ProxyRegistration.Cancelled" in topics
    assert "ledger.domain.identity:AccessRecord.ProtectedDetailsRead" in topics
