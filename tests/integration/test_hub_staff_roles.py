"""The hub checks the roles of a staff answer's two signers, not only their keys (issue #19, "verified" means
verified for authority too): one of them must hold reviewer and the other approver in the provider's roster as the
hub keeps it — the reviewer proposes, the approver approves a held request — and neither may be an administrator;
the rule every reader of a roster applies (``ledger.log.staff_roles.decision_role_problem``). And the provider's
node runs the same check (``check_decision``) before it approves and sends, refusing locally.

First through the hub's loop with bare agency ends on the in-memory transport, the roster sent as its real events
(``RoleCertified``, ``RolesWithdrawn``) and folded by the ledger's rule; then on real agency nodes in hub mode
(``tests/support/hub_nodes.py``) whose rosters their own role grants wrote. Each node's and the hub's database
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import select

from consumers import linkage_decisions as decisions
from ledger.app import Actor
from ledger.app.answers import run_batches
from ledger.app.credentials import StaffSigner
from ledger.domain.types import Role
from ledger.errors import Code, PermissionDenied
from ledger.hub.inbox import parked
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.rosters import HubRosters
from ledger.linkage.consultation import StaffAnswer, StaffDesk, decision_statement
from ledger.linkage.messages import AnswerMessage
from ledger.linkage.staff_rosters import roster_events
from ledger.runtime.tables import linkage_routed
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B, C, World
from tests.support.people import individual_number
from tests.support.postgres import temp_database
from tests.support.roster_events import role_certified, roster_stream
from tests.support.roster_world import hub_store, roster_world, staff_answer, staff_request
from tests.support.staff import enrol, grant_approved
from tests.support.staff_keys import staff_signer

ADMIN, ADMIN2 = staff_signer(A, "admin"), staff_signer(A, "admin2")
REV, APR, APR2 = staff_signer(A, "rev"), staff_signer(A, "apr"), staff_signer(A, "apr2")
SOCK, SOCK2 = staff_signer(A, "sock"), staff_signer(A, "sock2")  # accounts one administrator enrolled


@pytest.fixture
def store(backend: str | None, tmp_path: Path) -> Iterator[HubStore]:
    with hub_store(backend, tmp_path) as opened:
        yield opened


def decide(w: World, desk: StaffDesk, request_id: str, first: StaffSigner, second: StaffSigner) -> None:
    w.agencies[A].answer_decided(staff_answer(desk, request_id, first, second))
    w.settle()


def refused(w: World) -> list[tuple[str, str]]:
    return [(p.code, p.reason) for p in parked(w.hub.store.engine)]


def test_a_staff_answer_needs_an_approver_and_no_administrator(store: HubStore) -> None:
    """Threat: an administrator or insider at the provider enrolling sock accounts — keys the roster certifies,
    with no approver's authority — or deciding with an administrator's own key; and a peer agency holding the
    provider's stolen node key, sending a role grant one administrator signed alone. Each such staff answer is
    parked at the hub with a reason naming the missing role, and never relayed; the reviewer's proposal approved
    by an approver is relayed (the control). A reviewer's role one administrator signed alone counts no more
    than an approver's."""
    w = roster_world(store)
    mine, request_id, desk = staff_request(w)
    roles = {"rev": "reviewer", "apr": "approver"}
    stream = roster_stream(ADMIN, REV, APR, SOCK, SOCK2, roles=roles, second=ADMIN2)
    stream = [e for e in stream if not (e[0] == "RoleCertified" and e[1]["certified"]["staff"].startswith("sock"))]
    w.agencies[A].send_roster(stream)

    decide(w, desk, request_id, SOCK, SOCK2)  # two certified people, neither an approver
    decide(w, desk, request_id, REV, ADMIN2)  # an administrator signing a half
    assert [code for code, _ in refused(w)] == [Code.STAFF_ROLE, Code.STAFF_ROLE]
    assert "sock holds neither, sock2 holds neither" in refused(w)[0][1]
    assert "administrator may not" in refused(w)[1][1]
    assert w.inbox(C) == []

    alone = role_certified(ADMIN, None, "sock", "approver")  # one administrator's signature: certifies nothing
    alone2 = role_certified(ADMIN, None, "sock2", "reviewer")  # nor for a reviewer (a privileged role)
    w.agencies[A].send_roster(roster_events([("RoleCertified", alone), ("RoleCertified", alone2)]), len(stream))
    decide(w, desk, request_id, REV, SOCK)
    decide(w, desk, request_id, SOCK2, APR)
    assert [code for code, _ in refused(w)] == [Code.STAFF_ROLE] * 4 and w.inbox(C) == []
    assert not HubRosters(store.engine)[A].holds("sock", "approver")
    assert not HubRosters(store.engine)[A].holds("sock2", "reviewer")

    decide(w, desk, request_id, REV, APR)
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(mine, "answered", "課税所得 0")]
    assert len(refused(w)) == 4


def test_a_role_withdrawn_before_the_answer_reaches_the_hub_does_not_count(store: HubStore) -> None:
    """Threat: an insider deciding with the key of an approver whose role an administrator withdrew (a person
    moved off the desk, still enrolled): the hub checks the roster at the point it holds when the answer comes,
    so the answer is parked; a fresh approver's is relayed."""
    w = roster_world(store)
    mine, request_id, desk = staff_request(w)
    stream = roster_stream(ADMIN, REV, APR, APR2, roles={"rev": "reviewer"}, second=ADMIN2)
    withdrawn = ("RolesWithdrawn", {"staff": "apr2", "roles": ["approver"]})
    w.agencies[A].send_roster([*stream, *roster_events([withdrawn])])
    decide(w, desk, request_id, REV, APR2)
    [(code, reason)] = refused(w)
    assert code == Code.STAFF_ROLE and "rev holds reviewer, apr2 holds neither" in reason and w.inbox(C) == []
    decide(w, desk, request_id, REV, APR)
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(mine, "answered", "課税所得 0")]


def test_a_roster_that_records_no_roles_decides_nothing(store: HubStore) -> None:
    """Threat: a shell user at the provider opening a roster whose root records no roles (as before roles
    travelled), so that any two certified keys would decide: the hub proves no authority from it, parks the
    answer (``staff_role``) and relays nothing."""
    w = roster_world(store)
    _, request_id, desk = staff_request(w)
    w.agencies[A].send_roster(roster_stream(ADMIN, REV, APR, roles=False))
    decide(w, desk, request_id, REV, APR)
    assert not HubRosters(store.engine)[A].roles_recorded
    [(code, reason)] = refused(w)
    assert code == Code.STAFF_ROLE and "records no roles" in reason and w.inbox(C) == []


# -- on real agency nodes in hub mode ---------------------------------------------------------------------------
@pytest.fixture
def nodes(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    """A (provider), B (holder), C (querier) as nodes, each on its own database, and the hub on its own."""
    with ExitStack() as stack:
        if backend is None:
            urls: dict[str, str | None] = {}
            hub_url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
        else:
            urls = {c: stack.enter_context(temp_database()) for c in (A, B, C)}
            hub_url = stack.enter_context(temp_database())
        hub_store = open_hub_store(hub_url, "hub-1")
        w = hub_nodes(make_node, hub_store, (A, B, C), urls)
        try:
            yield w
        finally:
            w.close()
            hub_store.close()


def _held_at_a(w: HubNodes) -> tuple[str, str, UUID]:
    """X protected by B; C asks A; B advises: (C's query id, the hub's routed id, A's local request id)."""
    x = individual_number()
    set_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
    w.bridges[A].file_person(x)
    w.settle()
    asked = w.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    w.settle()
    with w.nodes[A].engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed)).all()
    (consultation,) = w.bridges[B].consultations()
    decisions.advise(w.nodes[B].app, w.nodes[B].engine, Actor(B, "rev"), consultation["request_id"], "may_disclose")
    w.settle()
    return asked, routed.hub_request_id, UUID(routed.local_request_id)


def _refused_at_a(w: HubNodes, local: UUID, proposer: str, approver: str) -> str:
    """``proposer`` proposes, ``approver`` approves at A's node: refused there (``staff_role``); the reason."""
    a = w.nodes[A]
    decisions.propose(a.app, a.engine, Actor(A, proposer), local, "provide", "unknown")
    version = a.app.provision_request(local).proposal_version
    assert version is not None
    with pytest.raises(PermissionDenied) as refused_here:
        decisions.approve(a.app, a.engine, Actor(A, approver), local, version)
    assert refused_here.value.code == Code.STAFF_ROLE
    assert a.app.provision_request(local).status == "held"  # nothing approved, nothing to send
    return str(refused_here.value)


def _forced_past_a(w: HubNodes, hub_request_id: str, first: str, second: str) -> None:
    """The same two people's signatures sent straight to the hub (a provider whose node skipped its check)."""
    a = w.nodes[A]
    statement = decision_statement(A, hub_request_id, "answered", "", "may_disclose", "advised")
    one, two = (a.app.signer_for(Actor(A, who)).sign(statement) for who in (first, second))
    answer = StaffAnswer(
        hub_request_id, "answered", "", "may_disclose", "advised", str(one["key_id"]), str(one["signature"]),
        str(two["key_id"]), str(two["signature"]),
    )  # fmt: skip
    w.bridges[A].end.answer_decided(answer)
    w.settle()


def _hub_parked(w: HubNodes) -> list[tuple[str, str]]:
    return [(p.code, p.reason) for p in parked(w.hub.store.engine)]


def test_the_provider_node_and_the_hub_refuse_a_staff_answer_without_a_reviewer_and_an_approver(
    nodes: HubNodes,
) -> None:
    """Threats: an administrator or insider at the provider deciding with two approvers and no reviewer (the
    permission table let approvers propose), with a reviewer granted outside the roster (a local role, as an old
    log holds it, or one administrator's stand-in) beside an approver, or with a reviewer whose role was
    withdrawn after they proposed; and a peer agency or shell user at the provider with its node key sending
    such an answer past the node's check. A's node refuses each approval (``staff_role``, nothing approved,
    nothing sent); forced past the node, the hub parks each ``staff_role`` and C hears nothing decided. The
    control: A's certified reviewer and approver decide, and C hears the answer."""
    w = nodes
    a = w.nodes[A]
    admin = Actor(A, "admin")
    asked, hub_request_id, local = _held_at_a(w)

    # two approvers: the table lets approvers propose, the roster makes neither a reviewer
    a.app.grant_permission(admin, "approver", "review_held")
    reason = _refused_at_a(w, local, "apr", "apr2")
    assert "apr holds approver, apr2 holds approver" in reason
    # a reviewer the roster never certified (granted as on a log from before reviewers were recorded)
    enrol(a, admin, "old", ["counter"])
    member = a.app.staff(A, "old")
    member.grant_role(Role.REVIEWER, by="admin")
    a.app.save_as(A, member)
    assert "old holds neither" in _refused_at_a(w, local, "old", "apr")
    # a reviewer whose role is withdrawn after they proposed
    decisions.propose(a.app, a.engine, Actor(A, "rev"), local, "provide", "unknown")
    version = a.app.provision_request(local).proposal_version
    a.app.revoke_role(admin, "rev", "reviewer")
    with pytest.raises(PermissionDenied) as withdrawn:
        decisions.approve(a.app, a.engine, Actor(A, "apr"), local, version or 0)
    assert withdrawn.value.code == Code.STAFF_ROLE and "rev holds neither" in str(withdrawn.value)
    w.settle()
    assert w.bridges[C].query(asked)["status"] == "in_progress" and _hub_parked(w) == []

    for first, second in (("apr", "apr2"), ("old", "apr"), ("rev", "apr")):
        _forced_past_a(w, hub_request_id, first, second)
    hub_refused = _hub_parked(w)
    assert [code for code, _ in hub_refused] == [Code.STAFF_ROLE] * 3
    assert "apr holds approver, apr2 holds approver" in hub_refused[0][1]
    assert "old holds neither" in hub_refused[1][1] and "rev holds neither" in hub_refused[2][1]
    assert w.bridges[C].query(asked)["status"] == "in_progress"

    # the legacy reviewer is certified by revoking the local role and granting it again (two administrators)
    a.app.revoke_role(admin, "old", "reviewer")
    grant_approved(a, admin, "old", "reviewer")
    roster = a.app.roster(A)
    assert roster is not None and roster.holds("old", "reviewer")

    # the control: a reviewer certified again (two administrators) proposes, an approver approves
    grant_approved(a, admin, "rev", "reviewer")
    decisions.propose(a.app, a.engine, Actor(A, "rev"), local, "provide", "unknown")
    version = a.app.provision_request(local).proposal_version
    assert decisions.approve(a.app, a.engine, Actor(A, "apr"), local, version or 0) == "provided_manually"
    run_batches(a.app, a.app.clock() + timedelta(days=2))
    w.settle()
    assert w.bridges[C].query(asked)["status"] == "answered"
    assert len(_hub_parked(w)) == 3


def test_a_reviewer_is_granted_by_two_administrators_and_certified_in_the_roster(nodes: HubNodes) -> None:
    """Threat: an administrator or insider enrolling a sock reviewer alone — to read held requests and probe
    notices (they name the querying agency, possibly where a victim now lives) and to propose staff answers. A
    reviewer's grant waits for a second administrator; only then does A's roster (and the hub's copy) certify
    it, and a withdrawal reaches the hub as ``RolesWithdrawn``."""
    w = nodes
    a = w.nodes[A]
    admin = Actor(A, "admin")
    pending = a.app.enrol(admin, "sock", "sock", ["reviewer"])
    assert [g.role for g in pending] == ["reviewer"]
    assert a.app.staff(A, "sock").roles == []
    roster = a.app.roster(A)
    assert roster is not None and not roster.holds("sock", "reviewer") and roster.holds("rev", "reviewer")
    w.settle()
    assert HubRosters(w.hub.store.engine)[A].holds("rev", "reviewer")
    a.app.approve_grant(Actor(A, "admin2"), pending[0].id)
    roster = a.app.roster(A)
    assert roster is not None and roster.holds("sock", "reviewer")
    a.app.revoke_role(admin, "rev", "reviewer")
    w.settle()
    at_hub = HubRosters(w.hub.store.engine)[A]
    assert at_hub.holds("sock", "reviewer") and not at_hub.holds("rev", "reviewer")
