"""The hub's loop with bare agency ends (A, B, C on the in-memory transport) and one staff request waiting at the
provider A for two signatures: what the tests of the hub's staff rosters and of the signers' roles
(tests/integration/test_hub_rosters.py, test_hub_staff_roles.py) start from. The hub's database on SQLite or
PostgreSQL (``backend``); its rosters a real :class:`HubRosters` on it."""

from __future__ import annotations

from ledger.app.credentials import StaffSigner
from ledger.hub.log import HubStore
from ledger.hub.rosters import HubRosters
from ledger.linkage.consultation import StaffAnswer, StaffDesk
from ledger.linkage.messages import RoutedQuery
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE
from tests.support.hub_store import hub_store
from tests.support.hub_world import START, A, B, C, Cast, World
from tests.support.people import individual_number
from tests.support.staff_keys import approval

__all__ = ["hub_store", "roster_world", "staff_answer", "staff_request"]


def roster_world(store: HubStore) -> World:
    """A, B and C around the hub on ``store``, which checks staff answers against the rosters it keeps there."""
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
    assert len(w.inbox(B)) == 1  # B consulted
    w.agencies[B].advise(routed.request_id, "may_disclose")
    w.settle()
    for i in w.inbox(A):
        desk.take(i.message)
    return mine, routed.request_id, desk


def staff_answer(desk: StaffDesk, request_id: str, first: StaffSigner, second: StaffSigner) -> StaffAnswer:
    """A's answer to ``request_id`` ("answered", as B advised), the decision signed by ``first`` and ``second``."""
    statement = desk.statement(request_id, "answered", "課税所得 0")
    one, two = approval(first, statement), approval(second, statement)
    return StaffAnswer(
        request_id, "answered", "課税所得 0", "may_disclose", "advised", one.key_id, one.signature, two.key_id,
        two.signature,
    )  # fmt: skip
