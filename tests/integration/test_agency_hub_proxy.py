"""A holder's four-eyes approval of a proxy, from the agency node's app through its bridge and the hub to the portal
(issue 19, docs/linkage.md) — agency nodes and the hub on SQLite and on PostgreSQL, the portal its own database,
on the in-memory transport.

While B's flag applies to X the portal refuses every proxy view, unless B — every holder — approved that proxy:
B's requester proposes, B's approver (another person) approves, each signing with their own staff key; the bridge
sends the approval once it is committed, exactly once. Threats, per test: the perpetrator as X's proxy, a peer
agency that holds nothing on X, an administrator (or any one person) alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.cli.main import main
from ledger.domain.staff_acts import APPROVED, REQUESTED, proxy_approval_statement
from ledger.errors import Code, FlagLedgerError, PermissionDenied
from ledger.hub.inbox import parked
from ledger.hub.portal_feed import PortalFeed
from ledger.hub.tables import hub_proxy_approvals
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.proxy_approvals import ProxyApproval, holder_subject
from ledger.portal.rules import PortalView
from ledger.portal.service import PortalService, read_page
from ledger.portal.store import PortalStore
from tests.conftest import NodeFactory
from tests.support.api import auth, client
from tests.support.approvals import approve_fully
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, portal_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number


@dataclass
class Story:
    """A, B, C's nodes in hub mode, the hub, and the portal the hub feeds."""

    world: HubNodes
    store: PortalStore
    portal: PortalService
    feed: PortalFeed

    def settle(self, rounds: int = 10) -> None:
        for _ in range(rounds):
            moved = self.portal.step(timeout_ms=20)
            self.world.settle()
            fed = self.feed.step()
            self.world.settle()  # the hub sends what the feed owes
            kept = self.portal.step(timeout_ms=20)
            if not (moved.sent or fed or kept.kept or kept.sent):
                return

    def page(self, number: str, viewer: str = "self", proxy: str | None = None) -> PortalView:
        return read_page(self.store, self.world.portal_keys, self.world.hub.directory, number, viewer, proxy)  # type: ignore[arg-type]

    def refused(self, number: str, viewer: str, proxy: str | None = None) -> str:
        with pytest.raises(FlagLedgerError) as caught:
            self.page(number, viewer, proxy)
        return caught.value.code

    def approvals_at_hub(self) -> int:
        with self.world.hub.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(hub_proxy_approvals)).scalar_one())


@pytest.fixture
def story(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[Story]:
    with portal_nodes(make_node, backend, tmp_path, (A, B, C)) as p:
        yield Story(p.world, p.store, p.service(), p.feed)


def signed(story: Story, agency: str, x: str, proxy: str, by: tuple[str, str] = ("req", "apr")) -> ProxyApproval:
    """A ``proxy_approval`` as ``agency``'s node would send it, its two acts signed by ``by``'s own staff keys."""
    app, end = story.world.nodes[agency].app, story.world.bridges[agency].end
    code, proxy_code = end.file_person(x), end.file_person(proxy)  # registered at the hub under its codes
    stream = uuid.uuid4()
    sigs = [
        app.signer_for(Actor(agency, who)).sign(
            proxy_approval_statement(
                agency, str(stream), False, act, holder_subject(code), holder_subject(proxy_code), who
            )
        )
        for act, who in zip((REQUESTED, APPROVED), by, strict=True)
    ]
    as_json = [json.dumps(s, sort_keys=True) for s in sigs]
    return ProxyApproval(uuid.uuid4().hex, code, proxy_code, "approve", stream.hex, *as_json)


def protected(story: Story) -> tuple[str, str, str]:
    """X with a record (C asked A about her), then protected by B; P registered at B as X's proxy, Q (the
    perpetrator) signed in as a proxy too. Returns the numbers of X, P and Q."""
    x, p, q = individual_number(), individual_number(), individual_number()
    story.world.bridges[A].file_person(x)
    story.world.settle()
    story.world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    story.world.settle()
    for number in (x, p, q):
        with pytest.raises(FlagLedgerError):
            story.page(number)  # each card signs in once: its registration is owed, no page yet
    story.settle()
    assert [r.querier for r in story.page(x).records] == [C]  # the control: the record is there before the flag
    set_flag(story.world.nodes[B], B, x, "NON_DISCLOSURE")
    story.world.nodes[B].app.register_proxy(Actor(B, "req"), x, p)
    story.settle()
    assert story.page(x).records == () and story.page(x).note is not None
    assert story.refused(x, "proxy", p) == Code.PROXY_REFUSED
    return x, p, q


def test_the_holders_two_people_let_the_proxy_read_and_withdraw_it(story: Story) -> None:
    """Threat: the perpetrator as X's proxy. B's requester proposes P, which alone lets no one in; B's approver
    approves and the bridge sends it: P (with P's own card) reads what X reads — hidden stays hidden — while Q and
    a guardian stay refused. Sent exactly once: a new bridge sends nothing, a resend after a crash is dropped as a
    replay. B's two people withdraw it: P is refused again."""
    x, p, q = protected(story)
    b = story.world.nodes[B].app
    approval = b.propose_proxy_approval(Actor(B, "req"), x, p, "X asked for her sister to read it")
    story.settle()
    assert story.approvals_at_hub() == 0 and story.refused(x, "proxy", p) == Code.PROXY_REFUSED

    b.approve_proxy_approval(Actor(B, "apr"), approval)
    story.settle()
    assert parked(story.world.hub.store.engine) == []
    seen = story.page(x, "proxy", p)
    assert seen == story.page(x) and seen.records == () and seen.note is not None
    assert story.refused(x, "proxy", q) == Code.PROXY_REFUSED
    assert story.refused(x, "guardian", p) == Code.PROXY_REFUSED
    assert b.proxy_approvals(Actor(B, "apr"))[0]["in_force"] is True

    assert story.world.bridge(B).push().acts == []  # what was sent is recorded: a new bridge owes nothing
    bridge = story.world.bridges[B]
    bridge._set_position(0)  # a crash after the broker took the messages, before the node recorded them sent
    assert "proxy_approval" in bridge.push().acts
    step = story.world.hub.step(timeout_ms=20)
    assert step.replays >= 1 and step.applied == 0 and story.approvals_at_hub() == 1

    b.propose_proxy_withdrawal(Actor(B, "req"), approval, "X withdrew her consent")
    story.settle()
    assert story.page(x, "proxy", p) == story.page(x)  # a proposed withdrawal alone ends nothing
    b.withdraw_proxy_approval(Actor(B, "apr"), approval)
    story.settle()
    assert story.refused(x, "proxy", p) == Code.PROXY_REFUSED
    assert b.proxy_approvals(Actor(B, "apr")) == []
    report = verify_log(b, workers=1)  # B's log with the four signed acts still verifies
    assert report.ok, report.first_bad


def test_a_peer_agency_holding_nothing_cannot_approve(story: Story) -> None:
    """Threat: a peer agency (C, which asked about X and holds nothing on her) letting the perpetrator Q in. C's
    own app refuses the proposal (``wrong_agency``, nothing saved); sent straight on C's linkage end past its app,
    the hub parks it (``wrong_agency``) and Q stays refused. B's approval, proposed and then B's flag released
    before the approver acts, is refused at B's node too."""
    x, _, q = protected(story)
    c = story.world.nodes[C].app
    before = c.max_position()
    with pytest.raises(PermissionDenied) as caught:
        c.propose_proxy_approval(Actor(C, "req"), x, q)
    assert caught.value.code == Code.WRONG_AGENCY and c.max_position() == before

    story.world.bridges[C].end.send(signed(story, C, x, q), ANSWER_SIZE)  # C's own two people, past its app
    story.settle()
    [held] = parked(story.world.hub.store.engine)
    assert held.claimed_sender == C and held.code == Code.WRONG_AGENCY
    assert story.approvals_at_hub() == 0 and story.refused(x, "proxy", q) == Code.PROXY_REFUSED

    b = story.world.nodes[B].app
    approval = b.propose_proxy_approval(Actor(B, "req"), x, q)  # B still holds: the proposal is taken
    rid = b.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE"], kind="release", explanation="told in person")
    approve_fully(b, B, rid)
    b.execute_request(Actor(B, "op"), rid)
    with pytest.raises(PermissionDenied) as late:
        b.approve_proxy_approval(Actor(B, "apr"), approval)  # B holds nothing on X any more
    assert late.value.code == Code.WRONG_AGENCY
    story.settle()
    assert story.approvals_at_hub() == 0


def test_no_one_person_and_no_administrator_approves_alone(story: Story) -> None:
    """Threat: an administrator alone, or any one person of the holder: the requester cannot approve their own
    proposal (a requester is no approver; one holding both is refused as the proposer:
    tests/unit/test_holder_proxy_approval.py), an administrator can neither propose nor approve, a counter clerk
    cannot propose; nothing reaches the hub and P stays refused. A shell user at B sending past B's app with B's
    linkage key (unsigned, signed twice by one person, or carrying signatures of another pair) is parked at the
    hub against B's roster. A withdrawal needs two people as well."""
    x, p, _ = protected(story)
    b = story.world.nodes[B].app
    for who in ("admin", "counter"):
        with pytest.raises(PermissionDenied):
            b.propose_proxy_approval(Actor(B, who), x, p)
    approval = b.propose_proxy_approval(Actor(B, "req"), x, p)
    with pytest.raises(PermissionDenied):
        b.approve_proxy_approval(Actor(B, "req"), approval)  # a requester is no approver
    with pytest.raises(PermissionDenied):
        b.approve_proxy_approval(Actor(B, "admin"), approval)
    story.settle()
    assert story.approvals_at_hub() == 0 and story.refused(x, "proxy", p) == Code.PROXY_REFUSED

    # a shell user at B with B's node and linkage keys, past B's app: unsigned, one person's two signatures, the
    # approver's signature of another pair — each parked at the hub
    end = story.world.bridges[B].end
    end.approve_proxy(x, p)
    end.send(signed(story, B, x, p, ("req", "req")), ANSWER_SIZE)
    forged = signed(story, B, x, individual_number())
    end.send(ProxyApproval(forged.approval_id, forged.code, end.code(p), "approve", *astuple(forged)[4:]), ANSWER_SIZE)
    story.settle()
    codes = [h.code for h in parked(story.world.hub.store.engine)]
    assert codes == [Code.STAFF_SIGNATURE, Code.STAFF_ROLE, Code.STAFF_SIGNATURE], codes  # a requester approves not
    assert story.approvals_at_hub() == 0 and story.refused(x, "proxy", p) == Code.PROXY_REFUSED

    b.approve_proxy_approval(Actor(B, "apr"), approval)
    with pytest.raises(FlagLedgerError):
        b.withdraw_proxy_approval(Actor(B, "apr"), approval)  # no withdrawal proposed
    b.propose_proxy_withdrawal(Actor(B, "req"), approval, "X withdrew her consent")
    with pytest.raises(PermissionDenied):
        b.withdraw_proxy_approval(Actor(B, "req"), approval)
    story.settle()
    assert story.page(x, "proxy", p) == story.page(x)  # still in force: the withdrawal waits for an approver


def test_the_command_line_and_the_api_each_approve(story: Story, capsys: pytest.CaptureFixture[str]) -> None:
    """Threat: the perpetrator as X's proxy, let in by a path that skips the four eyes. On the command line B's
    requester proposes and B's approver approves: P reads. Over the API B's two people withdraw it (P refused
    again), a counter clerk's token is refused (403), then approve R (R reads)."""
    x, p, _ = protected(story)
    node = story.world.nodes[B]
    d = str(node.config.data_dir)
    assert main(["--data-dir", d, "proxy", "approval", "--as", f"{B}/req", "--subject", x, "--proxy", p]) == 0
    approval = json.loads(capsys.readouterr().out)["approval_id"]
    assert main(["--data-dir", d, "proxy", "approval-approve", "--as", f"{B}/apr", approval]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "in_force"
    story.settle()
    assert story.page(x, "proxy", p) == story.page(x)

    http = client(node)
    req, apr = auth(node, B, "req"), auth(node, B, "apr")
    r = http.post(f"/api/v1/proxy-approvals/{approval}/withdraw", json={"note": "X withdrew it"}, headers=req)
    assert r.status_code == 200 and r.json()["status"] == "withdrawal_proposed"
    assert http.post(f"/api/v1/proxy-approvals/{approval}/withdraw/approve", headers=apr).status_code == 200
    story.settle()
    assert story.refused(x, "proxy", p) == Code.PROXY_REFUSED

    rn = individual_number()
    with pytest.raises(FlagLedgerError):
        story.page(rn)  # R signs in
    node.app.register_proxy(Actor(B, "req"), x, rn)  # registered too: the page lists registered proxies only
    body = {"subject": x, "proxy": rn}
    assert http.post("/api/v1/proxy-approvals", json=body, headers=auth(node, B, "counter")).status_code == 403
    made = http.post("/api/v1/proxy-approvals", json=body, headers=req)
    assert made.status_code == 201
    rid = made.json()["approval_id"]
    assert http.post(f"/api/v1/proxy-approvals/{rid}/approve", headers=req).status_code == 403  # the requester
    assert http.post(f"/api/v1/proxy-approvals/{rid}/approve", headers=apr).json()["status"] == "in_force"
    assert [a["approval_id"] for a in http.get("/api/v1/proxy-approvals", headers=apr).json()["approvals"]] == [rid]
    story.settle()
    assert story.page(x, "proxy", rn) == story.page(x)
    assert story.refused(x, "proxy", p) == Code.PROXY_REFUSED
