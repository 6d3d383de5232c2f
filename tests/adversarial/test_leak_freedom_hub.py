"""The leak-freedom model on the hub topology (issue 19): a generated history per seed over three agency nodes in
hub mode and the hub (``tests.support.hub_nodes``, in-memory broker): B protects people, A files them and others,
C asks A about them, and the parties' loops turn in a random order — interleaved with crashes (a bridge or the
hub's loop replaced by a new one that knows only its database and the committed offsets) and lost commit
acknowledgements (an inbox's committed position set back, everything after it handed over again).

After the history, once everything settled, the checks:

* **leak-freedom**: every query the hub routed after it had filed the person's ``NON_DISCLOSURE`` (by the hub's
  own sequence, no clock compared) was marked for staff, held at A — A's log holds no ``AutoProvided`` for it,
  so it was never answered automatically at any point — and C heard ``in_progress`` with no data; a query routed
  before the protection reached the hub is the only kind answered automatically (the protection is in force at
  the hub from its filing on: docs/linkage.md);
* **exactly once**: every flag change filed once, every query routed once, applied at A once and answered to C
  once.

A few seeds run in CI; ``FLAGLEDGER_HUB_MODEL_SEEDS=N`` runs N more under ``long``.

Threats: the perpetrator asking at C about X (any order of events, any crash or redelivery must not let the
answer through once the hub knows X is protected); the broker and the network (redelivery); an administrator
restarting processes.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import func, select

from consumers.linkage_receipt import NOBODY, NOBODY_SENT
from ledger.app import Actor
from ledger.hub.log import open_hub_store
from ledger.hub.service import HubService
from ledger.hub.tables import hub_flag_changes, hub_requests
from ledger.linkage.names import HUB
from ledger.linkage.transport import MemoryTransport, Topics
from ledger.runtime.tables import linkage_applied, linkage_queries, linkage_routed
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

CI_SEEDS = (1, 2, 3)
STEPS = 45


def restart_hub(w: HubNodes) -> None:
    """The hub's loop replaced: a new process on the same database, resuming from the committed offset."""
    old = w.hub
    w.hub = HubService(old.store, MemoryTransport(w.broker, HUB), old.keys, old.directory, old.now, rosters=None)


def lose_acks(w: HubNodes, rng: random.Random) -> None:
    """A random inbox's committed position set back (the broker lost the acknowledgement), its reader restarted."""
    party = rng.choice([HUB, A, B, C])
    inbox = Topics().inbox(party)
    w.broker.committed[inbox] = rng.randint(0, w.broker.committed.get(inbox, 0))
    if party == HUB:
        restart_hub(w)
    else:
        w.bridge(party)


def history(w: HubNodes, rng: random.Random, steps: int) -> tuple[list[str], dict[str, str]]:
    """A generated history; returns the people B protected and C's request ids → the person's number."""
    people: list[str] = []
    protected: list[str] = []
    asked: dict[str, str] = {}
    for _ in range(steps):
        op = rng.choice(("new", "protect", "ask", "ask", "push", "push", "hub", "hub", "pull", "pull", "crash", "ack"))
        if op == "new" or not people:
            people.append(individual_number(rng))
            w.bridges[A].file_person(people[-1])
        elif op == "protect":
            unprotected = [p for p in people if p not in protected]
            if unprotected:
                x = rng.choice(unprotected)
                set_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
                protected.append(x)
        elif op == "ask":
            x = rng.choice(people)
            w.bridges[A].file_person(x)
            rid = w.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
            asked[rid] = x
        elif op == "push":
            w.bridges[rng.choice((A, B, C))].push()
        elif op == "hub":
            w.hub.step(timeout_ms=0, max_records=rng.randint(1, 5))
        elif op == "pull":
            w.bridges[rng.choice((A, B, C))].pull(timeout_ms=0)
        elif op == "crash":
            party = rng.choice((HUB, A, B, C))
            restart_hub(w) if party == HUB else w.bridge(party)
        else:
            lose_acks(w, rng)
    w.settle(rounds=60)
    # and the perpetrator asks once more about everyone protected, now that the hub has settled (at least one)
    if not protected:
        protected.append(individual_number(rng))
        set_flag(w.nodes[B], B, protected[-1], "NON_DISCLOSURE")
        w.settle(rounds=60)
    for x in protected:
        w.bridges[A].file_person(x)
        rid = w.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
        asked[rid] = x
    w.settle(rounds=60)
    return protected, asked


@pytest.mark.parametrize(
    "seed",
    [*CI_SEEDS]
    + [
        pytest.param(100 + n, marks=pytest.mark.long)
        for n in range(int(os.environ.get("FLAGLEDGER_HUB_MODEL_SEEDS", "0")))
    ],
)
def test_hub_topology_never_answers_a_protected_person_automatically(
    seed: int, make_node: NodeFactory, tmp_path: Path
) -> None:
    """The perpetrator at C, the broker and network, an administrator restarting (see the module)."""
    rng = random.Random(seed)
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (A, B, C))
    try:
        protected, asked = history(w, rng, STEPS)
        with store.engine.connect() as conn:
            f, r = hub_flag_changes.c, hub_requests.c
            filed = conn.execute(select(f.person, f.seq)).all()
            routed = conn.execute(select(r.request_id, r.querier_request, r.person, r.seq, r.staff)).all()
        assert len(filed) == len(protected), "a flag change lost or filed twice"
        assert sorted(x.querier_request for x in routed) == sorted(asked), "a query lost or routed twice"
        protected_from = {p: s for p, s in filed}  # sets only: in force from its filing on
        with w.nodes[A].engine.connect() as conn:
            lr = linkage_routed.c
            rows = conn.execute(select(lr.hub_request_id, lr.local_request_id, lr.answered))
            local = {x.hub_request_id: x for x in rows}
        assert len(local) == len(routed)
        with w.nodes[C].engine.connect() as conn:
            q = linkage_queries.c
            heard = {x.request_id: (x.status, x.data) for x in conn.execute(select(q.request_id, q.status, q.data))}
            answers = conn.execute(
                select(func.count()).select_from(linkage_applied).where(linkage_applied.c.kind == "answer")
            ).scalar_one()
        assert answers == len(asked), "an answer lost or applied twice at C"
        app = w.nodes[A].app
        in_force = 0
        for x in routed:
            if local[x.request_id].answered in (NOBODY, NOBODY_SENT):
                # routed before A's registration of the person reached the hub: nobody at A to ask, "in progress"
                assert heard[x.querier_request] == ("in_progress", "")
                continue
            request = app.provision_request(UUID(local[x.request_id].local_request_id))
            names = [type(e).__qualname__ for e in app.events.get(request.id)]
            if x.person in protected_from and protected_from[x.person] < x.seq:
                in_force += 1
                assert x.staff, "routed as an automatic answer after the hub filed the protection"
                assert request.status == "held" and "ProvisionRequest.AutoProvided" not in names
                assert heard[x.querier_request] == ("in_progress", "")
            else:
                assert not x.staff and request.status == "provided"
        assert in_force >= len(protected), "the last queries met no protection in force: the history proves nothing"
    finally:
        w.close()
        store.close()
