"""The staff console decides a held request the hub routed for staff (issue 19, ledger/api/console_held.py):
on an agency node in hub mode the console's propose and approve sign the consultation's decision statement
with each person's staff key (unlocked at console sign-in), so the answer leaves as a ``staff_answer`` the hub
accepts — never a plain one parked and refused. Three nodes (A provider, B holder, C querier) and an in-process
hub on the in-memory transport (tests/support/hub_nodes.py), A's console through the ASGI client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import select

from consumers import linkage_decisions as decisions
from ledger.app import Actor
from ledger.app.answers import run_batches
from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_decisions, hub_parked
from ledger.runtime.tables import linkage_decisions, linkage_routed
from tests.conftest import NodeFactory
from tests.integration.test_api_console import login_field, signed_in
from tests.integration.test_console_security_keys import _key_step, _register
from tests.support.api import client
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number
from tests.support.soft_authenticator import SoftAuthenticator
from tests.support.staff import grant_approved, password_of


@pytest.fixture
def world(make_node: NodeFactory, tmp_path: Path) -> Iterator[HubNodes]:
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (A, B, C))
    yield w
    w.close()
    store.close()


def test_two_staff_decide_in_the_console_and_c_hears_the_decided_answer(world: HubNodes) -> None:
    """Perpetrator asking at C about X, who fled to B: never answered automatically — A's reviewer and
    approver decide in the console, each signing with their own staff key, and C hears the decided answer once
    A's batch releases it. Administrator or shell user with one person's session: the reviewer cannot approve
    their own proposal (four eyes), and before B's staff advise there is nothing to decide on."""
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    asked = world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    a = world.nodes[A]
    with a.engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed)).all()
    local = routed.local_request_id

    grant_approved(a, Actor(A, "admin"), "rev", "approver")  # one person who holds both roles
    rev, rev_csrf = signed_in(a, A, "rev")
    page = rev.get("/console/held").text
    assert local in page and "助言待ち" in page  # the case shown: the holders are still being asked
    form = {"csrf": rev_csrf, "decision": "refuse", "applicant_check": "known_perpetrator"}
    early = rev.post(f"/console/held/{local}/propose", data=form)
    assert early.status_code == 409 and "staff_decision_required" in early.text
    assert a.app.provision_request(UUID(local)).proposal is None

    (consultation,) = world.bridges[B].consultations()
    b = world.nodes[B]
    decisions.advise(b.app, b.engine, Actor(B, "rev"), consultation["request_id"], "do_not_disclose")
    world.settle()
    page = rev.get("/console/held").text
    assert "開示しない（保有機関の助言）" in page and "助言待ち" not in page

    r = rev.post(f"/console/held/{local}/propose", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/held?done=proposed"
    apr, apr_csrf = signed_in(a, A, "apr")
    version = re.search(r'name="proposal_version" value="(\d+)"', apr.get("/console/held").text)
    assert version is not None
    own = {"csrf": rev_csrf, "proposal_version": version.group(1)}
    alone = rev.post(f"/console/held/{local}/approve", data=own, follow_redirects=False)
    assert alone.status_code == 403 and "理由コード: four_eyes" in alone.text  # four eyes are two people
    assert a.app.provision_request(UUID(local)).status == "held"
    with a.engine.connect() as conn:
        acts = [(r.act, r.staff) for r in conn.execute(select(linkage_decisions))]
    assert acts == [("proposed", "rev")]  # the refused approval signed nothing

    r = apr.post(
        f"/console/held/{local}/approve",
        data={"csrf": apr_csrf, "proposal_version": version.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/held?done=decided"
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "in_progress"  # decided, not yet released
    run_batches(a.app, a.app.clock() + timedelta(days=2))
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "not_provided"
    with world.hub.store.engine.connect() as conn:
        (decided,) = conn.execute(select(hub_decisions)).all()
        assert conn.execute(select(hub_parked)).all() == []  # the staff answer was not refused
    keys = [a.app.roster(A).current_key(w) for w in ("rev", "apr")]  # type: ignore[union-attr]
    assert (decided.first_key, decided.second_key) == tuple(k.key_id for k in keys if k is not None)
    assert (decided.status, decided.advice, decided.basis) == ("not_provided", "do_not_disclose", "advised")


def test_a_person_signing_with_a_security_key_is_sent_to_the_command_line_in_hub_mode(world: HubNodes) -> None:
    """Administrator or shell user of A's server: a person whose console acts are signed by their security key
    is never signed for with a key held in the server, and a WebAuthn assertion is no decision signature the
    hub checks — so the console refuses their half of a routed request's decision, clearly, and changes
    nothing; they decide with ``flagledger provision approve`` (here its function), and C hears that answer."""
    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    asked = world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    (consultation,) = world.bridges[B].consultations()
    b = world.nodes[B]
    decisions.advise(b.app, b.engine, Actor(B, "rev"), consultation["request_id"], "may_disclose")
    world.settle()
    a = world.nodes[A]
    with a.engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed)).all()
    local = routed.local_request_id
    rev, rev_csrf = signed_in(a, A, "rev")
    form = {"csrf": rev_csrf, "decision": "provide", "applicant_check": "protected_person"}
    assert rev.post(f"/console/held/{local}/propose", data=form, follow_redirects=False).status_code == 303

    key = SoftAuthenticator()
    http, csrf = signed_in(a, A, "apr")
    assert _register(http, csrf, key).status_code == 200
    http = client(a)
    data = {"agency": A, "staff": "apr", "password": password_of(A, "apr"), "csrf": login_field(http)}
    assert http.post("/console/login", data=data, follow_redirects=False).status_code == 303
    assert _key_step(http, key).status_code == 200
    page = http.get("/console/held").text
    field = re.search(r'<meta name="csrf" content="([0-9a-f]{64})">', page)
    version = re.search(r'name="proposal_version" value="(\d+)"', page)
    assert field is not None and version is not None
    refused = http.post(
        f"/console/held/{local}/approve", data={"csrf": field.group(1), "proposal_version": version.group(1)}
    )
    assert refused.status_code == 409 and "staff_signature_required" in refused.text
    assert "flagledger provision approve" in refused.text
    assert a.app.provision_request(UUID(local)).status == "held"

    decisions.approve(a.app, a.engine, Actor(A, "apr"), UUID(local), int(version.group(1)))
    run_batches(a.app, a.app.clock() + timedelta(days=2))
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "answered"
