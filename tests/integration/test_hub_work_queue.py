"""The work queue of agency nodes in linkage hub mode (issue 19, docs/linkage.md): the hub's consultations of a
holder, the cases of a provider's routed requests and the hub's escalations, in ``view queue`` (the command
line), ``GET /api/v1/queue`` and the staff console — three nodes and a hub on the in-memory transport.

Threats: the perpetrator asking at C about X, who fled to B (a reviewer at the provider must never see a holder;
the holder never sees the querier), and the counter clerk a perpetrator talks to (sees neither consultations nor
escalations); an administrator is told a deadline passed with nothing about the person.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers import linkage_decisions as decisions
from consumers.linkage_queue import work_queue
from ledger.app import Actor
from ledger.hub.consultations import WINDOW
from ledger.hub.log import open_hub_store
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_routed
from tests.conftest import NodeFactory
from tests.integration.test_api_console import signed_in
from tests.support.api import auth, client
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number


@pytest.fixture
def world(make_node: NodeFactory, tmp_path: Path) -> Iterator[HubNodes]:
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (A, B, C))
    yield w
    w.close()
    store.close()


def names(text: str, agency: str) -> bool:
    """Whether ``text`` names ``agency``: its code standing alone, not six digits inside a hex id or a time."""
    return re.search(rf"(?<![0-9a-fA-F.]){agency}(?![0-9a-fA-F])", text) is not None


def test_consultations_cases_and_escalations_are_queued_without_naming_a_holder(world: HubNodes) -> None:
    """Perpetrator at C asking A about X, protected by B: B's reviewer finds the hub's consultation in B's queue
    (provider A, B's own subject, no advice yet) and nothing naming C; B's counter clerk sees none. When B stays
    silent past the hub's deadline, A's administrator finds the escalation in A's queue — the request id and
    the reason only: no person, no querier, no holder — and A's reviewer the case (basis ``escalated``) with
    the held request, naming no holder; A's counter clerk sees neither. After B's advice nothing waits at B."""
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    a, b = world.nodes[A], world.nodes[B]
    with a.engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed)).all()
    local = routed.local_request_id

    at_b = work_queue(b, Actor(B, "rev"))
    (asked,) = at_b.consultations
    assert (asked.provider, asked.subject, asked.advice, asked.procedure) == (A, b.app.subject(x), None, PROCEDURE)
    assert at_b.consultations_waiting == 1
    assert not names(json.dumps(asdict(at_b)), C)  # the querier is never in a consultation
    clerk_b = work_queue(b, Actor(B, "counter"))
    assert clerk_b.consultations == () and clerk_b.consultations_waiting == 0

    assert work_queue(a, Actor(A, "admin")).escalations == ()  # before the deadline: nothing to chase
    later = a.app.clock() + WINDOW + timedelta(minutes=1)
    world.hub.now = lambda: later  # B stays silent past the hub's deadline
    world.settle()

    admin = work_queue(a, Actor(A, "admin"))
    (late,) = admin.escalations
    assert late.request_id == local and late.reason
    shown = json.dumps(asdict(late))
    assert not names(shown, B) and not names(shown, C) and code_of(a.app.subject(x)) not in shown
    assert a.app.subject(x) not in shown and x not in shown
    reviewer = work_queue(a, Actor(A, "rev"))
    (case,) = reviewer.cases
    assert (case.request_id, case.basis, case.escalations) == (local, "escalated", (late.reason,))
    assert local in [h.request_id for h in reviewer.held]
    assert not names(json.dumps(asdict(reviewer.cases[0])), B)
    assert reviewer.escalations == ()  # a reviewer is no administrator: the case is where they see it
    clerk_a = work_queue(a, Actor(A, "counter"))
    assert clerk_a.cases == () and clerk_a.escalations == ()

    decisions.advise(b.app, b.engine, Actor(B, "rev"), asked.request_id, "do_not_disclose")
    after = work_queue(b, Actor(B, "rev"))
    assert after.consultations_waiting == 0 and after.consultations[0].advice == "do_not_disclose"


def test_the_command_line_the_api_and_the_console_show_the_linkage_queue(
    world: HubNodes, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same through each surface (perpetrator at C; a holder's counter staff): ``view queue`` and
    ``GET /api/v1/queue`` list B's consultation for B's reviewer (no querier) and A's escalation for A's
    administrator (no holder); the console's notice page lists the consultation and the administrator's home
    the escalation; B's counter gets none on the API."""
    from tests.support.staff import run_in_process

    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    a, b = world.nodes[A], world.nodes[B]
    later = a.app.clock() + WINDOW + timedelta(minutes=1)
    world.hub.now = lambda: later
    world.settle()
    with a.engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed)).all()
    local = routed.local_request_id

    rc, out, err = run_in_process(["--data-dir", str(b.config.data_dir), "view", "queue", "--as", f"{B}/rev"], capsys)
    assert rc == 0, err
    printed = json.loads(out.strip().splitlines()[-1])
    assert [c["provider"] for c in printed["consultations"]] == [A] and not names(json.dumps(printed), C)
    rc, out, err = run_in_process(["--data-dir", str(a.config.data_dir), "view", "queue", "--as", f"{A}/admin"], capsys)
    assert rc == 0, err
    printed = json.loads(out.strip().splitlines()[-1])
    assert [e["request_id"] for e in printed["escalations"]] == [local]
    assert not names(json.dumps(printed["escalations"]), B)

    api_b = client(b)
    body = api_b.get("/api/v1/queue", headers=auth(b, B, "rev")).json()
    assert [c["provider"] for c in body["consultations"]] == [A] and not names(json.dumps(body), C)
    clerk = api_b.get("/api/v1/queue", headers=auth(b, B, "counter")).json()
    assert clerk["consultations"] == [] and clerk["consultations_waiting"] == 0
    body = client(a).get("/api/v1/queue", headers=auth(a, A, "admin")).json()
    assert [e["request_id"] for e in body["escalations"]] == [local]

    rev, _ = signed_in(b, B, "rev")
    page = rev.get("/console/probes").text
    assert 'id="consultations"' in page and "未回答" in page and not names(page, C)
    admin, _ = signed_in(a, A, "admin")
    home = admin.get("/console/").text
    assert 'id="escalations"' in home and local in home and not names(home.split('id="escalations"')[1], B)
