"""Answers that need staff give nothing away (issue 21): a flag, an item the provider answers by hand by policy, no
data found (該当なし) and a provider-side check look byte for byte the same to the querying agency, on the command
line and over HTTP, and their decisions reach it at the same batch times; held requests get a due date and
escalate when overdue, without ever being answered automatically.

Threats: **the perpetrator asking through an agency** (A's counter, or A's staff reading the answer to them) and
**the querying agency itself**: before this, ``in_progress`` came back if and only if the person was flagged, so
the answer's status, size or timing told the querier that X is protected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from consumers.outbox import publishable
from ledger import clock
from ledger.app import Actor
from ledger.app.answers import held_file, run_batches
from ledger.app.values import is_local_only
from ledger.domain.answers import JST, add_business_days, next_batch
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import A, B, C, NodeFactory
from tests.support.api import auth, client
from tests.support.ship import ship
from tests.support.staff import run_in_process
from tests.support.trust import agency_pair

NAR = "NO_AUTO_RESPONSE"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ASK = {"legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"}
MANUAL_ITEM = 57  # C answers table 2 item 57 by hand, by policy
MANUAL_PROCEDURE = "児童扶養手当"  # item 57's procedure in the law catalogue (docs/bodies.md)


def normalised(raw: str | bytes) -> str:
    """The answer with its request id (always 36 characters) replaced by one of the same length."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    return UUID_RE.sub("00000000-0000-4000-8000-000000000000", text)


def cli(node: Node, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_in_process(["--data-dir", str(node.config.data_dir), *argv], capsys)
    assert code == 0, err
    return out


def four_kinds(node: Node, capsys: pytest.CaptureFixture[str], person: Callable[[], str]) -> dict[str, str]:
    """Four people about whom a query to C needs staff, each for another reason, and one answered at once."""
    people = {kind: person() for kind in ("flag", "policy", "no_data", "check", "automatic")}
    rid = node.app.request_flags(Actor(B, "req"), people["flag"], [NAR])
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)
    # the provider's own settings, on its command line: a recorded policy, and its notes on the copies it holds
    policy = json.loads(
        cli(node, capsys, "policy", "manual", "--as", f"{C}/admin", "--kind", "legal_item", "--value", str(MANUAL_ITEM))
    )
    assert policy["manual"]["legal_item"] == [str(MANUAL_ITEM)]
    for kind in ("no_data", "check"):
        cli(node, capsys, "provision", "copy", "--as", f"{C}/rev", "--subject", people[kind], "--info-kind",
            ASK["info_kind"], "--state", kind)  # fmt: skip
    return people


def ask_cli(node: Node, capsys: pytest.CaptureFixture[str], subject: str, kind: str) -> str:
    item = str(MANUAL_ITEM if kind == "policy" else ASK["legal_item"])
    procedure = MANUAL_PROCEDURE if kind == "policy" else str(ASK["procedure"])
    return cli(node, capsys, "provision", "request", "--as", f"{A}/counter", "--provider", C, "--subject", subject,
               "--item", item, "--procedure", procedure, "--info-kind", str(ASK["info_kind"]))  # fmt: skip


def decide_all(node: Node, ids: list[str], decision: str = "refuse", provider: str = C) -> None:
    for rid in ids:
        node.app.propose_decision(Actor(provider, "rev"), UUID(rid), decision, "unknown")
        version = node.app.provision_request(UUID(rid)).proposal_version
        assert version is not None
        node.app.approve_decision(Actor(provider, "apr"), UUID(rid), version)


def test_the_four_kinds_are_byte_identical_on_the_command_line_and_released_together(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The querying agency A (and the perpetrator at its counter) cannot tell a flag from a manual item, no data
    or a check: the same bytes when asked, the same bytes while staff work, the same bytes after the decision,
    released at the same batch instant. The reason is known at the provider only, in local events."""
    node = sqlite_node
    people = four_kinds(node, capsys, person)
    kinds = ("flag", "policy", "no_data", "check")
    asked = {k: ask_cli(node, capsys, people[k], k) for k in (*kinds, "automatic")}
    assert json.loads(asked["automatic"])["status"] == "answered"  # the control: nothing needs staff
    assert {normalised(asked[k]) for k in kinds} == {normalised(asked["flag"])}
    assert json.loads(asked["flag"])["status"] == "in_progress"
    ids = {k: json.loads(asked[k])["request_id"] for k in kinds}

    # why each was held is on the provider's side only: a local file, never a shared event
    assert {k: getattr(held_file(node.app, UUID(ids[k])), "reason", None) for k in kinds} == {k: k for k in kinds}
    assert is_local_only("ledger.domain.answers:HeldFile.Opened")
    assert all(not hasattr(node.app.provision_request(UUID(i)), "reason") for i in ids.values())

    decide_all(node, [ids["no_data"], ids["check"]])  # some decided at once …
    decide_all(node, [ids["policy"], ids["flag"]])  # … some later
    decided_at = max(node.app.provision_request(UUID(i)).modified_on for i in ids.values())
    status = {k: cli(node, capsys, "provision", "status", "--as", f"{A}/counter", ids[k]) for k in kinds}
    assert {normalised(s) for s in status.values()} == {normalised(asked["flag"])}, "decided, not yet released"
    assert run_batches(node.app, decided_at)["released"] == [], "never released the moment it is decided"
    waiting = {a.status for k in kinds for a in views.counter_view(node, Actor(A, "counter"), people[k]).answers}
    assert waiting == {"in_progress"}, "A's counter too shows no decision before the batch time"

    batch = next_batch(decided_at, ["10:00", "14:00", "16:30"])
    assert run_batches(node.app, batch - timedelta(seconds=1))["released"] == []
    assert sorted(run_batches(node.app, batch)["released"]) == sorted(ids.values())
    slots = {node.app.provision_request(UUID(i)).released_batch for i in ids.values()}
    assert slots == {batch.isoformat()}, "all four released at the same batch instant"
    final = {k: cli(node, capsys, "provision", "status", "--as", f"{A}/counter", ids[k]) for k in kinds}
    assert {normalised(s) for s in final.values()} == {normalised(final["flag"])}
    assert json.loads(final["flag"])["status"] == "not_provided"
    # A's counter shows the same words for each (what the perpetrator asking there could be told)
    shown = {(a.status, a.message, a.provider) for k in kinds for a in views.counter_view(node, Actor(A, "counter"),
             people[k]).answers}  # fmt: skip
    assert shown == {("not_provided", json.loads(final["flag"])["message"], None)}


def test_the_four_kinds_are_byte_identical_over_http(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The querying agency's API client gets the same JSON bytes for the four kinds, asked and while in
    progress, and the same final bytes after the batch release (threat: the querying agency itself)."""
    node = sqlite_node
    people = four_kinds(node, capsys, person)
    http, h = client(node), auth(node, A, "counter")
    kinds = ("flag", "policy", "no_data", "check")
    raw: dict[str, bytes] = {}
    for k in kinds:
        body: dict[str, Any] = {"provider": C, "subject": people[k], **ASK}
        if k == "policy":
            body["legal_item"], body["procedure"] = MANUAL_ITEM, MANUAL_PROCEDURE
        r = http.post("/api/v1/provision-requests", json=body, headers=h)
        assert r.status_code == 201, r.text
        raw[k] = r.content
    assert {normalised(b) for b in raw.values()} == {normalised(raw["flag"])}
    ids = {k: json.loads(raw[k])["request_id"] for k in kinds}
    decide_all(node, list(ids.values()), "provide")

    def statuses() -> set[str]:
        got = set()
        for k in kinds:
            r = http.get(f"/api/v1/provision-requests/{ids[k]}", headers=h)
            assert r.status_code == 200, r.text
            got.add(normalised(r.content))
        return got

    before = statuses()
    assert before == {normalised(raw["flag"])}, "decided but not released: still the held answer"
    decided_at = max(node.app.provision_request(UUID(i)).modified_on for i in ids.values())
    run_batches(node.app, next_batch(decided_at, ["10:00", "14:00", "16:30"]))
    (after,) = statuses()
    assert json.loads(after)["status"] == "answered"


def test_a_held_request_is_due_by_policy_and_escalates_when_overdue_but_is_never_answered(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Nobody decides a held request: past its due date it goes to the approvers, then the administrators,
    each a recorded event; it stays ``in_progress`` for the querier (threat: the perpetrator waiting for an
    automatic answer, and an administrator or shell user letting a request lapse unnoticed)."""
    node = sqlite_node
    set_to = json.loads(cli(node, capsys, "policy", "answers", "--as", f"{C}/admin", "--due-days", "3"))
    assert set_to == {"agency": C, "batch_times": ["10:00", "14:00", "16:30"], "due_business_days": 3}
    x = person()
    cli(node, capsys, "provision", "copy", "--as", f"{C}/rev", "--subject", x, "--info-kind", ASK["info_kind"],
        "--state", "no_data")  # fmt: skip
    rid = json.loads(ask_cli(node, capsys, x, "no_data"))["request_id"]
    held = held_file(node.app, UUID(rid))
    assert held is not None
    received = datetime.fromisoformat(held.received).date()
    assert held.due == add_business_days(received, 3).isoformat()

    noon = lambda d: datetime.combine(d, time(12), JST)  # noqa: E731
    due = datetime.fromisoformat(held.due).date()
    assert run_batches(node.app, noon(due))["escalated"] == [], "not before the due date has passed"
    assert node.app.overdue(Actor(C, "apr"), noon(due)) == []
    assert run_batches(node.app, noon(due + timedelta(days=1)))["escalated"] == [rid]
    (late,) = node.app.overdue(Actor(C, "apr"), noon(due + timedelta(days=1)))
    assert late["escalated_to"] == ["approver"] and late["reason"] == "no_data" and late["overdue"] is True
    # the held queue of the deciders carries the same marker, from the provider's own file
    (queued,) = views.work_queue(node, Actor(C, "apr"), due + timedelta(days=1)).held
    assert (queued.reason, queued.due, queued.overdue, queued.escalated_to) == (
        "no_data",
        held.due,
        True,
        ("approver",),
    )
    (on_time,) = views.work_queue(node, Actor(C, "rev"), due).held
    assert on_time.overdue is False
    later = noon(add_business_days(due, 3))
    assert run_batches(node.app, later)["escalated"] == [rid]
    (late,) = node.app.overdue(Actor(C, "admin"), later)
    assert late["escalated_to"] == ["approver", "administrator"]
    assert run_batches(node.app, later) == {"released": [], "escalated": []}, "escalated once per level"
    assert node.app.querier_answer(UUID(rid)).status == "in_progress", "overdue never answers"
    with pytest.raises(Exception) as refused:
        node.app.overdue(Actor(A, "counter"), later)
    assert getattr(refused.value, "code", "") == "role_not_permitted"


def test_the_overdue_queue_on_the_command_line(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``flagledger provision overdue`` lists what the node's clock says is past due (the clock moved on with
    its skew setting, as on a node whose day has come), and names neither the person nor the querier."""
    node = sqlite_node
    x = person()
    rid = json.loads(ask_cli(node, capsys, x, "automatic"))["request_id"]
    assert node.app.querier_answer(UUID(rid)).status == "answered"  # nothing held yet: nothing overdue
    cli(node, capsys, "provision", "copy", "--as", f"{C}/rev", "--subject", x, "--info-kind", ASK["info_kind"],
        "--state", "check")  # fmt: skip
    held_id = json.loads(ask_cli(node, capsys, x, "check"))["request_id"]
    monkeypatch.setenv(clock.ENV, str(timedelta(days=14).total_seconds()))
    listed = json.loads(cli(node, capsys, "provision", "overdue", "--as", f"{C}/apr"))
    assert [r["request_id"] for r in listed["overdue"]] == [held_id]
    assert x not in json.dumps(listed) and A not in json.dumps(listed)
    released = json.loads(cli(node, capsys, "provision", "release", "--as", f"{C}/apr"))
    assert released == {"released": [], "escalated": [held_id]}
    # over HTTP, the same queue for the provider's deciders; the querying agency's counter is refused
    http = client(node)
    r = http.get("/api/v1/queue/overdue", headers=auth(node, C, "apr"))
    assert r.status_code == 200, r.text
    assert [(o["request_id"], o["escalated_to"]) for o in r.json()] == [(held_id, ["approver", "administrator"])]
    assert http.get("/api/v1/queue/overdue", headers=auth(node, A, "counter")).status_code == 403


def test_the_querying_node_learns_the_decision_only_from_the_release_and_never_the_reason(
    make_node: NodeFactory, tmp_path: Path, person: Callable[[], str]
) -> None:
    """B's node queries A's (the linkage network delivers it): B's node sees the held answer until A's batch
    step releases the decision, and never receives why A held it (threat: the querying agency, even with its
    own node's whole data directory)."""
    a, b = agency_pair(make_node, tmp_path)
    x = person()
    a.app.note_copy(Actor(A, "rev"), x, str(ASK["info_kind"]), "no_data")
    asked = a.app.receive_query(B, A, x, legal_item=74, procedure="児童手当", info_kind=str(ASK["info_kind"]))
    rid = UUID(asked.request_id)
    decide_all(a, [asked.request_id], provider=A)
    shipped_to = ship(a, b)
    assert b.app.querier_answer(rid) == asked, "decided at A, not released: B's node still sees the held answer"
    run_batches(a.app, clock.now() + timedelta(days=1))
    ship(a, b, shipped_to)
    assert b.app.querier_answer(rid).status == "not_provided"
    assert b.app.provision_request(rid).released_batch == a.app.provision_request(rid).released_batch
    shipped = {Envelope.from_bytes(raw).header.topic for _, _, raw in publishable(a.app)}
    assert not {t for t in shipped if t.startswith("ledger.domain.answers:")}, "policy, notes, held files stay at A"
    assert "ledger.domain.provision:ProvisionRequest.Released" in shipped
    assert held_file(b.app, rid) is None and held_file(a.app, rid) is not None
