"""The hub topology's work and its exactly-once check, written once for every fault of ``test_hub_*.py``.

The work (:class:`HubWork`), over a :class:`tests.support.hub_nodes.HubNodes` world of three agency nodes in hub
mode — A provides, B protects (its own four eyes), C asks — each round: B sets ``NON_DISCLOSURE`` on a new person;
A files that person and an unprotected one; C asks A about both through the hub. The test remembers what it
did, nothing else: the check reads each party's own database.

:func:`exactly_once` then asserts, at the hub and at every agency (0 lost, 0 duplicated):

* every flag change B executed is filed at the hub once (by its change id), for B, under the person's code;
* every person each agency filed is registered at the hub once under that agency's code;
* every query C asked is routed by the hub once, applied at A once (one routed row, one provision request),
  and answered to C once (one answer applied);

and leak-freedom: no query about a protected person was answered automatically at any point — A's log holds
no ``AutoProvided`` for its request (the history, not only the state), the hub marked it for staff, and C
heard ``in_progress``, never an answer with data.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from sqlalchemy import func, select

from consumers.linkage_bridge import LinkageBridge
from ledger.app import Actor
from ledger.hub.log import HubStore
from ledger.hub.tables import hub_codes, hub_flag_changes, hub_requests
from ledger.runtime.bootstrap import Node
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_applied, linkage_queries, linkage_routed
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

__all__ = ["HubWork", "Parties", "exactly_once"]


class Parties(Protocol):
    """The agencies' nodes and bridges (a ``HubNodes`` world, or agencies around a hub running as processes)."""

    nodes: dict[str, Node]
    bridges: dict[str, LinkageBridge]


AUTO = "ledger.domain.provision:ProvisionRequest.AutoProvided"


@dataclass
class HubWork:
    rng: random.Random
    protected: list[str] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)
    asked: dict[str, str] = field(default_factory=dict)  # C's request id → the person's number

    def round(self, w: Parties, people: int = 1) -> None:
        """B protects ``people`` new persons; A files them and as many unprotected; C asks A about each. (B's
        flag changes are pushed before C's queries: the hub files them first.)"""
        self.ask(w, self.protect(w, people))

    def protect(self, w: Parties, people: int = 1) -> list[str]:
        """B protects ``people`` new persons (its own four eyes); returns their numbers."""
        numbers = [individual_number(self.rng) for _ in range(people)]
        for x in numbers:
            set_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
        self.protected += numbers
        return numbers

    def ask(self, w: Parties, protected: list[str]) -> None:
        """A files each of ``protected`` and as many unprotected persons; C asks A about all of them."""
        for x in protected:
            y = individual_number(self.rng)
            self.plain.append(y)
            for number in (x, y):
                w.bridges[A].file_person(number)
                asked = w.bridges[C].ask(
                    Actor(C, "counter"), A, number, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO
                )
                self.asked[asked] = number

    def done(self, w: Parties) -> bool:
        """Every query of C answered (the protected ones ``in_progress``)."""
        with w.nodes[C].engine.connect() as conn:
            statuses = list(conn.execute(select(linkage_queries.c.status)).scalars())
        return len(statuses) == len(self.asked) and not {"queued", "sent"} & set(statuses)


def _codes(w: Parties, agency: str, numbers: list[str]) -> set[str]:
    return {code_of(w.nodes[agency].app.subject(n)) for n in numbers}


def exactly_once(w: Parties, store: HubStore, work: HubWork) -> None:
    """0 lost, 0 duplicated at the hub and at A, B, C, and no automatic answer about a protected person."""
    with store.engine.connect() as conn:
        f = hub_flag_changes.c
        changes = conn.execute(select(f.change_id, f.holder, f.flag)).all()
        codes = conn.execute(select(hub_codes.c.holder, hub_codes.c.code)).all()
        requests = conn.execute(
            select(hub_requests.c.request_id, hub_requests.c.querier_request, hub_requests.c.staff)
        ).all()
    # flag changes: one per protection B executed, no more (a resend filed twice would be a second row)
    assert len(changes) == len(work.protected), f"flag changes at the hub: {len(changes)} of {len(work.protected)}"
    assert {(h, f) for _, h, f in changes} == {(B, "NON_DISCLOSURE")}
    # registrations: each person once under each agency's code that filed them
    held = Counter(codes)
    assert all(n == 1 for n in held.values())
    expected = {
        A: _codes(w, A, work.protected + work.plain),
        B: _codes(w, B, work.protected),
        C: _codes(w, C, work.protected + work.plain),
    }
    for agency, want in expected.items():
        got = {c for h, c in codes if h == agency}
        assert want <= got, f"registrations of {agency} lost at the hub: {len(want - got)}"
    # queries: each of C's routed once
    by_querier_request = Counter(r.querier_request for r in requests)
    assert set(by_querier_request) == set(work.asked), "queries lost or unknown at the hub"
    assert max(by_querier_request.values()) == 1
    staff = {r.querier_request: r.staff for r in requests}
    protected = {rid for rid, n in work.asked.items() if n in work.protected}
    assert {rid for rid, s in staff.items() if s} == protected, "the hub's staff mark"
    # at A: each routed query applied once, one provision request each
    with w.nodes[A].engine.connect() as conn:
        routed = conn.execute(select(linkage_routed.c.hub_request_id, linkage_routed.c.local_request_id)).all()
    assert {r.hub_request_id for r in routed} == {r.request_id for r in requests}, "routed queries lost at A"
    assert len(routed) == len(requests)
    hub_of = {r.request_id: r.querier_request for r in requests}
    app = w.nodes[A].app
    for r in routed:
        request = app.provision_request(UUID(r.local_request_id))
        topics = [type(e).__qualname__ for e in app.events.get(request.id)]
        if hub_of[r.hub_request_id] in protected:
            assert request.status == "held" and "ProvisionRequest.AutoProvided" not in topics, "leak at A"
        else:
            assert request.status == "provided", request.status
    # at C: each query answered once
    with w.nodes[C].engine.connect() as conn:
        q = linkage_queries.c
        rows = conn.execute(select(q.request_id, q.status, q.data)).all()
        statuses = {r.request_id: r.status for r in rows}
        data = {r.request_id: r.data for r in rows}
        answers = conn.execute(
            select(func.count()).select_from(linkage_applied).where(linkage_applied.c.kind == "answer")
        ).scalar_one()
    assert answers == len(work.asked), f"answers applied at C: {answers} for {len(work.asked)} queries"
    for rid, number in work.asked.items():
        want = "in_progress" if number in work.protected else "answered"
        assert statuses[rid] == want, (rid, statuses[rid], want)
        if number in work.protected:
            assert not data[rid], "data about a protected person reached the querier"
