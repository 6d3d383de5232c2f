"""Decide again (issue 19, docs/linkage.md "Limits of the consultation", found by the hub leak-freedom model): the
holder's advice reaches the hub after the deadline's escalation but before the provider's staff decision made on
that escalation. The hub refuses the decision (the late advice may say "do not provide") and tells the provider
once (``escalation`` ``decide_again``); A's node reopens the held request (``ProvisionRequest.Reopened``), its
reviewer and approver decide again on the advice now relayed, and C hears that decision.

Three nodes — A the provider, B the holder, C the querier — and an in-process hub on the in-memory transport, each
on its own SQLite file or PostgreSQL database. Threats, per test: the perpetrator asking at C (never an automatic
answer, never one made on grounds the holder overruled, and not stuck at ``in_progress`` for good), the broker
operator (re-injecting the hub's message), a peer agency forging the hub's ``decide_again``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import func, select

from consumers import linkage_decisions as decisions
from consumers.linkage_queue import work_queue
from ledger.app import Actor
from ledger.app.answers import run_batches
from ledger.errors import PermissionDenied
from ledger.hub.consultations import WINDOW
from ledger.hub.tables import hub_decisions, hub_escalations, hub_parked
from ledger.linkage.agency import open_from_hub
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.consultation import DECIDE_AGAIN, Escalation
from ledger.linkage.sealing import seal
from ledger.linkage.transport import MemoryTransport, Topics
from ledger.runtime.tables import linkage_parked, linkage_routed
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_world, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

REOPENED = "ProvisionRequest.Reopened"


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    with hub_world(make_node, backend, tmp_path, (A, B, C)) as w:
        yield w


def _decide(w: HubNodes, local: UUID, decision: str) -> None:
    """A's reviewer proposes and its approver approves, each with their own staff key; the batch releases it."""
    a = w.nodes[A]
    decisions.propose(a.app, a.engine, Actor(A, "rev"), local, decision, "unknown")
    version = a.app.provision_request(local).proposal_version
    assert version is not None
    decisions.approve(a.app, a.engine, Actor(A, "apr"), local, version)
    run_batches(a.app, a.app.clock() + timedelta(days=2))


def _late_advice(w: HubNodes, settle: bool = True) -> tuple[str, UUID, str]:
    """C asks A about a person B protects; B stays silent past the deadline (A is told ``no_advice``); A's staff
    decide on that escalation (``provide``), but before A's node sends the decision B's ``do_not_disclose``
    reaches the hub. Then everything settles (without ``settle``: A sends the decision, the hub refuses it, and
    A has read nothing yet). C's request id, A's local request id, the hub's request id."""
    x = individual_number()
    set_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
    w.bridges[A].file_person(x)
    w.settle()
    asked = w.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    w.settle()
    later = w.hub.now() + WINDOW + timedelta(minutes=1)
    w.hub.now = lambda: later
    w.settle()
    a = w.nodes[A]
    with a.engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed)).all()
    local = UUID(routed.local_request_id)
    (case,) = decisions.cases(a.engine)
    assert (case["basis"], case["escalations"]) == ("escalated", ["no_advice"])
    (consultation,) = w.bridges[B].consultations()
    b = w.nodes[B]
    decisions.advise(b.app, b.engine, Actor(B, "rev"), consultation["request_id"], "do_not_disclose")
    w.bridges[B].push()
    w.hub.step(timeout_ms=20)  # the advice is recorded and relayed; A has not read the relay yet
    _decide(w, local, "provide")  # on the escalation, as A's staff see it
    if settle:
        w.settle()
    else:
        w.bridges[A].push()
        w.hub.step(timeout_ms=20)
    return asked, local, routed.hub_request_id


def _reopens(w: HubNodes, local: UUID) -> int:
    """How many ``Reopened`` events A's log holds for the request."""
    return sum(1 for e in w.nodes[A].app.events.get(local) if type(e).__qualname__ == REOPENED)


def test_advice_after_the_escalation_reopens_the_request_and_the_second_decision_reaches_the_querier(
    world: HubNodes,
) -> None:
    """Perpetrator asking at C about X, who fled to B. A's decision ``provide`` on the escalation is refused at the
    hub (parked ``staff_decision_required``, never relayed: B said ``do_not_disclose``), A is told once to
    decide again, its request is held again in its staff's queue with the advice relayed (the decide_again named
    among its escalations) across a restart of A's bridge, and the second decision — ``refuse``, on ``advised``
    — is the one C hears."""
    asked, local, hub_request = _late_advice(world)
    a = world.nodes[A]
    assert world.bridges[C].query(asked)["status"] == "in_progress"  # the refused decision reached no one
    with world.hub.store.engine.connect() as conn:
        parked = [(r.code, r.reason) for r in conn.execute(select(hub_parked))]
        raised = [r.reason for r in conn.execute(select(hub_escalations).order_by(hub_escalations.c.seq))]
        assert conn.execute(select(func.count()).select_from(hub_decisions)).scalar_one() == 0
    assert [c for c, _ in parked] == ["staff_decision_required"] and "decide again" in parked[0][1]
    assert raised == ["no_advice", DECIDE_AGAIN]

    request = a.app.provision_request(local)
    assert (request.status, request.reopened, request.proposal) == ("held", True, None)
    assert _reopens(world, local) == 1
    (case,) = decisions.cases(a.engine)
    assert (case["advice"], case["basis"], case["reopened"]) == ("do_not_disclose", "advised", True)
    assert case["escalations"] == ["no_advice", DECIDE_AGAIN]
    queue = work_queue(a, Actor(A, "rev"))
    assert [(c.request_id, c.advice, c.basis) for c in queue.cases] == [(str(local), "do_not_disclose", "advised")]

    world.bridge(A)  # A's bridge restarted: what it knows of the reopened request is in its databases
    world.settle()
    assert (a.app.provision_request(local).status, decisions.cases(a.engine)[0]["answered"]) == ("held", "in_progress")
    _decide(world, local, "refuse")
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "not_provided"
    with world.hub.store.engine.connect() as conn:
        (decided,) = conn.execute(select(hub_decisions)).all()
        assert len(conn.execute(select(hub_parked)).all()) == 1  # nothing refused since
    assert (decided.request_id, decided.status, decided.advice, decided.basis) == (
        hub_request,
        "not_provided",
        "do_not_disclose",
        "advised",
    )
    assert a.app.provision_request(local).status == "refused"


def test_the_hubs_decide_again_redelivered_reopens_once(world: HubNodes) -> None:
    """Broker operator re-injecting the hub's ``decide_again`` into A's inbox after A decided again: dropped by
    its event id — the request stays decided, one ``Reopened`` in A's log, C's answer unchanged. Applied twice
    directly, the reopen records nothing the second time (a decided request is reopened only once)."""
    asked, local, _ = _late_advice(world)
    a = world.nodes[A]
    bridge = world.bridges[A]
    inbox = Topics().inbox(A)
    keys = world.hub.directory.sender_keys(a.app.clock())
    raw = [m for m in world.broker.read(inbox, 0, 10_000, 0) if _is_decide_again(bridge, m, keys)]
    assert len(raw) == 1  # the hub sent it once
    _decide(world, local, "refuse")
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "not_provided"

    world.broker.append(inbox, raw[0])
    pulled = bridge.pull(timeout_ms=20)
    assert pulled.replays == 1 and pulled.applied == []
    assert a.app.provision_request(local).status == "refused"
    message = open_from_hub(bridge.keys, raw[0], keys).message
    assert isinstance(message, Escalation)
    with a.engine.begin() as conn:
        assert decisions.reopen(a.app, conn, A, message) is False
    assert a.app.provision_request(local).status == "refused"
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "not_provided"
    assert _reopens(world, local) == 1


def _is_decide_again(bridge: object, raw: bytes, keys: object) -> bool:
    try:
        m = open_from_hub(bridge.keys, raw, keys).message  # type: ignore[attr-defined,arg-type]
    except Exception:
        return False
    return isinstance(m, Escalation) and m.reason == DECIDE_AGAIN


def test_a_decide_again_forged_by_a_peer_is_parked_and_reopens_nothing(world: HubNodes) -> None:
    """Peer agency B forging the hub's ``decide_again`` on A's decided request (sealed to A with B's own key,
    the request's id known) and put in A's inbox past the broker's ACLs: A's node parks it with its bytes (it
    reads only the hub's messages), the request stays decided, nothing is reopened, and C keeps its answer."""
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    asked = world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    a, b = world.nodes[A], world.nodes[B]
    (consultation,) = world.bridges[B].consultations()
    decisions.advise(b.app, b.engine, Actor(B, "rev"), consultation["request_id"], "may_disclose")
    world.settle()
    with a.engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed)).all()
    local = UUID(routed.local_request_id)
    _decide(world, local, "provide")
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "answered"

    forged = Escalation(routed.hub_request_id, DECIDE_AGAIN, "do_not_disclose")
    sealed = seal(
        world.bridges[B].keys.signer,
        world.hub.directory.sealing_key(A),
        A,
        uuid.uuid4().hex,
        forged.kind,
        forged.encode(),
        ANSWER_SIZE,
    )
    with pytest.raises(PermissionDenied):  # the transport routes an agency's messages only to the hub ...
        MemoryTransport(world.broker, B).send(A, sealed)
    world.broker.append(Topics().inbox(A), sealed)  # ... so it is put in A's inbox past the ACLs
    pulled = world.bridges[A].pull(timeout_ms=20)
    # an agency in hub mode holds only the hub's keys: B's signature opens nothing (and were B's key known, an
    # agency still reads only the hub's messages: wrong_route, ledger.linkage.agency.open_from_hub)
    assert pulled.parked == ["unknown_agency"] and pulled.applied == []
    with a.engine.connect() as conn:
        (kept,) = conn.execute(select(linkage_parked)).all()
    assert kept.code == "unknown_agency" and kept.message == sealed  # parked with its bytes, never dropped
    request = a.app.provision_request(local)
    assert (request.status, request.reopened, _reopens(world, local)) == ("provided_manually", False, 0)
    assert decisions.cases(a.engine)[0]["reopened"] is False
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "answered"


def test_a_crash_after_the_reopen_was_recorded_and_before_the_message_was_applied_reopens_once(
    world: HubNodes,
) -> None:
    """A crash at A's node (an administrator restarting it, the database away) between saving ``Reopened`` and
    committing the applying transaction: the hub's message comes again, finds the request reopened — nothing
    recorded twice — and clears what the refused decision left, so the staff decide again and C hears it."""
    asked, local, _ = _late_advice(world, settle=False)
    a = world.nodes[A]
    keys = world.hub.directory.sender_keys(a.app.clock())
    inbox = Topics().inbox(A)
    (raw,) = [m for m in world.broker.read(inbox, 0, 10_000, 0) if _is_decide_again(world.bridges[A], m, keys)]
    message = open_from_hub(world.bridges[A].keys, raw, keys).message
    assert isinstance(message, Escalation)

    class Crash(Exception):
        pass

    with pytest.raises(Crash), a.engine.begin() as conn:
        assert decisions.reopen(a.app, conn, A, message) is True
        raise Crash  # the applying transaction never commits: the message is not marked applied
    assert (a.app.provision_request(local).status, _reopens(world, local)) == ("held", 1)
    assert decisions.cases(a.engine)[0]["answered"] == "answered"  # the node's tables as before the message
    world.bridge(A)  # a new process: it reads the inbox from the committed position
    world.settle()
    assert (_reopens(world, local), decisions.cases(a.engine)[0]["answered"]) == (1, "in_progress")
    assert world.bridges[C].query(asked)["status"] == "in_progress"
    _decide(world, local, "refuse")
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "not_provided"
    assert _reopens(world, local) == 1
