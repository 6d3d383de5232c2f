"""The hub checks the roles of a staff answer's two signers, not only their keys (issue #19, "verified" means
verified for authority too): one of them must hold approver in the provider's roster as the hub keeps it — the
role that decides a held request — and neither may be an administrator; the rule every reader of a roster applies
(``ledger.log.staff_roles.decision_role_problem``). Through the hub's loop on the in-memory transport, the roster
sent as its real events (``RoleCertified``, ``RolesWithdrawn``) and folded by the ledger's rule; the hub's
database on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.app.credentials import StaffSigner
from ledger.errors import Code
from ledger.hub.inbox import parked
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.rosters import HubRosters
from ledger.linkage.consultation import StaffAnswer, StaffDesk
from ledger.linkage.messages import AnswerMessage, RoutedQuery
from ledger.linkage.staff_rosters import roster_events
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from tests.support.hub_world import START, A, B, C, Cast, World
from tests.support.people import individual_number
from tests.support.roster_events import role_certified, roster_stream
from tests.support.staff_keys import approval, staff_signer

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
ADMIN, ADMIN2 = staff_signer(A, "admin"), staff_signer(A, "admin2")
REV, APR, APR2 = staff_signer(A, "rev"), staff_signer(A, "apr"), staff_signer(A, "apr2")
SOCK, SOCK2 = staff_signer(A, "sock"), staff_signer(A, "sock2")  # accounts one administrator enrolled


@pytest.fixture
def store(backend: str | None, tmp_path: Path) -> Iterator[HubStore]:
    opened = open_hub_store(backend or f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    try:
        yield opened
    finally:
        opened.close()


def world(store: HubStore) -> World:
    broker = MemoryBroker()
    return World.open(
        Cast.of(A, B, C), store, lambda p: MemoryTransport(broker, p), lambda: START, HubRosters(store.engine)
    )


def staff_request(w: World) -> tuple[str, str, StaffDesk]:
    """X protected by B; C asks A; B advises. (C's request id, A's routed id, A's desk filed with the advice.)"""
    x = individual_number()
    w.agencies[B].flag(x, "NON_DISCLOSURE", "set")
    w.agencies[A].file_person(x)
    mine = w.agencies[C].query(x, A, PROCEDURE, ITEM, INFO)
    w.settle()
    desk = StaffDesk(A, {})
    [routed] = [i.message for i in w.inbox(A)]
    assert isinstance(routed, RoutedQuery) and routed.answer == "staff" and desk.take(routed)
    w.agencies[B].advise(routed.request_id, "may_disclose")
    w.settle()
    for i in w.inbox(A):
        desk.take(i.message)
    return mine, routed.request_id, desk


def decide(w: World, desk: StaffDesk, request_id: str, first: StaffSigner, second: StaffSigner) -> None:
    statement = desk.statement(request_id, "answered", "課税所得 0")
    one, two = approval(first, statement), approval(second, statement)
    answer = StaffAnswer(
        request_id, "answered", "課税所得 0", "may_disclose", "advised", one.key_id, one.signature, two.key_id,
        two.signature,
    )  # fmt: skip
    w.agencies[A].answer_decided(answer)
    w.settle()


def refused(w: World) -> list[tuple[str, str]]:
    return [(p.code, p.reason) for p in parked(w.hub.store.engine)]


def test_a_staff_answer_needs_an_approver_and_no_administrator(store: HubStore) -> None:
    """Threat: an administrator or insider at the provider enrolling sock accounts — keys the roster certifies,
    with no approver's authority — or deciding with an administrator's own key; and a peer agency holding the
    provider's stolen node key, sending a role grant one administrator signed alone. Each such staff answer is
    parked at the hub with a reason naming the missing role, and never relayed; the reviewer's proposal approved
    by an approver is relayed (the control)."""
    w = world(store)
    mine, request_id, desk = staff_request(w)
    roles = {"rev": "requester", "apr": "approver"}  # the reviewer's role is local: requester stands in here
    stream = roster_stream(ADMIN, REV, APR, SOCK, SOCK2, roles=roles, second=ADMIN2)
    stream = [e for e in stream if not (e[0] == "RoleCertified" and e[1]["certified"]["staff"].startswith("sock"))]
    w.agencies[A].send_roster(stream)

    decide(w, desk, request_id, SOCK, SOCK2)  # two certified people, neither an approver
    decide(w, desk, request_id, REV, ADMIN2)  # an administrator signing a half
    assert [code for code, _ in refused(w)] == [Code.STAFF_ROLE, Code.STAFF_ROLE]
    assert "neither sock nor sock2 holds approver" in refused(w)[0][1]
    assert "administrator may not" in refused(w)[1][1]
    assert w.inbox(C) == []

    alone = role_certified(ADMIN, None, "sock", "approver")  # one administrator's signature: certifies nothing
    w.agencies[A].send_roster(roster_events([("RoleCertified", alone)]), position=len(stream))
    decide(w, desk, request_id, REV, SOCK)
    assert [code for code, _ in refused(w)] == [Code.STAFF_ROLE] * 3 and w.inbox(C) == []
    assert not HubRosters(store.engine)[A].holds("sock", "approver")

    decide(w, desk, request_id, REV, APR)
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(mine, "answered", "課税所得 0")]
    assert len(refused(w)) == 3


def test_a_role_withdrawn_before_the_answer_reaches_the_hub_does_not_count(store: HubStore) -> None:
    """Threat: an insider deciding with the key of an approver whose role an administrator withdrew (a person
    moved off the desk, still enrolled): the hub checks the roster at the point it holds when the answer comes,
    so the answer is parked; a fresh approver's is relayed."""
    w = world(store)
    mine, request_id, desk = staff_request(w)
    stream = roster_stream(ADMIN, REV, APR, APR2, roles={"rev": "requester"}, second=ADMIN2)
    withdrawn = ("RolesWithdrawn", {"staff": "apr2", "roles": ["approver"]})
    w.agencies[A].send_roster([*stream, *roster_events([withdrawn])])
    decide(w, desk, request_id, REV, APR2)
    [(code, reason)] = refused(w)
    assert code == Code.STAFF_ROLE and "neither rev nor apr2 holds approver" in reason and w.inbox(C) == []
    decide(w, desk, request_id, APR2, APR)  # apr2 keeps their key: a certified person, apr the approver
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(mine, "answered", "課税所得 0")]


def test_a_roster_that_records_no_roles_decides_nothing(store: HubStore) -> None:
    """Threat: a shell user at the provider opening a roster whose root records no roles (as before roles
    travelled), so that any two certified keys would decide: the hub proves no authority from it, parks the
    answer (``staff_role``) and relays nothing."""
    w = world(store)
    _, request_id, desk = staff_request(w)
    w.agencies[A].send_roster(roster_stream(ADMIN, REV, APR, roles=False))
    decide(w, desk, request_id, REV, APR)
    assert not HubRosters(store.engine)[A].roles_recorded
    [(code, reason)] = refused(w)
    assert code == Code.STAFF_ROLE and "records no roles" in reason and w.inbox(C) == []
