"""A held request's decision is approved only as the approver saw it.

Threat: an insider — the reviewer, one of the four eyes. The approver opens the held-request queue and sees
"refuse"; the reviewer then proposes "provide" (the perpetrator's query answered). Before, the approver's click
approved whatever stood at that moment. Now every approval names the proposal it approves (its event's version,
shown in every queue), a proposal replaced since is refused — 409 over HTTP and in the console, exit 5 on the
command line — and nothing is applied. The approval event records the version it approved; approval events
written before the field existed still load.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from ledger.app import Actor
from ledger.cli.main import main
from ledger.domain.provision import ProvisionRequest
from ledger.errors import StateConflict
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import A, B
from tests.integration.test_api_console import signed_in
from tests.support.api import client, token

NAR = "NO_AUTO_RESPONSE"


def held_request(node: Node, subject: str) -> UUID:
    """B protects the subject (NO_AUTO_RESPONSE); A's counter asks B about them: held at B."""
    app = node.app
    rid = app.request_flags(Actor(B, "req"), subject, [NAR])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    answer = app.request_provision(
        Actor(A, "counter"), B, subject, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert answer.status == "in_progress"
    return UUID(answer.request_id)


def shown_version(node: Node, request_id: UUID) -> int:
    """The proposal version B's approver is shown in the held-request queue."""
    (held,) = [h for h in views.work_queue(node, Actor(B, "apr")).held if h.request_id == str(request_id)]
    assert held.proposal_version is not None
    return held.proposal_version


def approval_events(node: Node, request_id: UUID) -> list[Any]:
    return [
        node.app.signed_mapper.decode(env)
        for _, _, env in node.app.envelopes()
        if env.header.stream == str(request_id)
        and env.header.topic.rsplit(".", 1)[1] in ("ManuallyProvided", "Refused")
    ]


def test_an_approval_of_a_replaced_proposal_is_refused_and_applies_nothing(
    node: Node, person: Callable[[], str]
) -> None:
    app = node.app
    rid = held_request(node, person())
    app.propose_decision(Actor(B, "rev"), rid, "refuse", "known_perpetrator", "加害者からの照会")
    seen = shown_version(node, rid)  # the approver looks: "refuse"
    app.propose_decision(Actor(B, "rev"), rid, "provide", "protected_person")  # the reviewer changes it
    before = app.max_position()
    with pytest.raises(StateConflict) as refused:
        app.approve_decision(Actor(B, "apr"), rid, seen)
    assert refused.value.code == "stale_proposal"
    assert app.max_position() == before and app.querier_answer(rid).status == "in_progress"
    assert approval_events(node, rid) == []

    current = shown_version(node, rid)
    assert current > seen
    assert app.approve_decision(Actor(B, "apr"), rid, current) == "provided_manually"
    (approved,) = approval_events(node, rid)
    assert (approved.approved_by, approved.proposal_version) == ("apr", current)


def test_an_approval_event_recorded_before_the_field_existed_still_loads(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """The schema change is additive: an old ``Refused`` event (no ``proposal_version``) decodes and applies."""
    app = sqlite_node.app
    rid = held_request(sqlite_node, person())
    app.propose_decision(Actor(B, "rev"), rid, "refuse", "unknown")
    request = app.provision_request(rid)
    old_state = {
        "originator_id": rid,
        "originator_version": request.version + 1,
        "timestamp": request.modified_on,
        "approved_by": "apr",
    }  # as a decoder builds it from old bytes
    old = object.__new__(ProvisionRequest.Refused)  # type: ignore[attr-defined]
    object.__setattr__(old, "__dict__", old_state)
    old.mutate(request)
    assert request.status == "refused"


def test_over_http_the_approval_names_the_proposal_and_a_stale_one_is_409(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    node, http = sqlite_node, client(sqlite_node)
    rev = {"Authorization": "Bearer " + token(node, B, "rev")}
    apr = {"Authorization": "Bearer " + token(node, B, "apr")}
    rid = held_request(node, person())
    propose = f"/api/v1/provision-requests/{rid}/propose"
    assert (
        http.post(propose, json={"decision": "refuse", "applicant_check": "known_perpetrator"}, headers=rev).status_code
        == 200
    )
    (seen,) = http.get("/api/v1/queue", headers=apr).json()["held"]
    assert seen["proposal"] == "refuse"
    assert (
        http.post(propose, json={"decision": "provide", "applicant_check": "unknown"}, headers=rev).status_code == 200
    )
    before = node.app.max_position()
    r = http.post(
        f"/api/v1/provision-requests/{rid}/approve", json={"proposal_version": seen["proposal_version"]}, headers=apr
    )
    assert r.status_code == 409 and r.json()["code"] == "stale_proposal"
    assert node.app.max_position() == before and node.app.querier_answer(rid).status == "in_progress"
    missing = http.post(f"/api/v1/provision-requests/{rid}/approve", json={}, headers=apr)
    assert missing.status_code == 422 and missing.json()["fields"][0]["loc"] == ["body", "proposal_version"]


def test_in_the_console_the_form_carries_the_proposal_it_showed(sqlite_node: Node, person: Callable[[], str]) -> None:
    node = sqlite_node
    rid = held_request(node, person())
    node.app.propose_decision(Actor(B, "rev"), rid, "refuse", "known_perpetrator")
    apr, csrf = signed_in(node, B, "apr")
    page = apr.get("/console/held").text
    form = re.search(rf'action="/console/held/{rid}/approve">.*?name="proposal_version" value="(\d+)"', page, re.S)
    assert form is not None
    node.app.propose_decision(Actor(B, "rev"), rid, "provide", "unknown")  # after the page was shown
    before = node.app.max_position()
    r = apr.post(f"/console/held/{rid}/approve", data={"csrf": csrf, "proposal_version": form.group(1)})
    assert r.status_code == 409 and "stale_proposal" in r.text
    assert node.app.max_position() == before and node.app.querier_answer(rid).status == "in_progress"
    assert apr.post(f"/console/held/{rid}/approve", data={"csrf": csrf}).status_code == 422


def test_on_the_command_line_a_stale_proposal_exits_5(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    node = sqlite_node
    d = str(node.config.data_dir)
    rid = held_request(node, person())
    node.app.propose_decision(Actor(B, "rev"), rid, "refuse", "known_perpetrator")
    assert main(["--data-dir", d, "view", "queue", "--as", f"{B}/apr"]) == 0
    (seen,) = json.loads(capsys.readouterr().out)["held"]
    node.app.propose_decision(Actor(B, "rev"), rid, "provide", "unknown")
    before = node.app.max_position()
    approve = ["--data-dir", d, "provision", "approve", "--as", f"{B}/apr", str(rid)]
    assert main([*approve, "--proposal", str(seen["proposal_version"])]) == 5
    assert "[stale_proposal]" in capsys.readouterr().err
    with pytest.raises(SystemExit) as no_proposal:
        main(approve)
    assert no_proposal.value.code == 2
    assert node.app.max_position() == before and node.app.querier_answer(rid).status == "in_progress"
    assert main([*approve, "--proposal", str(shown_version(node, rid))]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "provided_manually"
