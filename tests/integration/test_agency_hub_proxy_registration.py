"""A Mynaportal proxy's registration and cancellation, from the agency node's app through its bridge and the hub to
the portal (issue 19, docs/linkage.md) — agency nodes and the hub on SQLite and on PostgreSQL, the portal its own
database, on the in-memory transport (the story of tests/integration/test_agency_hub_proxy.py).

A proxy reads the person's page only signed in with their own card, and only while registered (and, while a flag
applies, approved by every holder: that file). The bridge sends each registration and cancellation once it is
committed, exactly once; the hub keeps it under the portal's codes. Threats, per test: the perpetrator posing as
the person's proxy; a peer agency registering a proxy for a person it does not know, or past a holder's flag.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from ledger.app import Actor
from ledger.errors import Code
from ledger.hub.inbox import parked
from ledger.hub.tables import hub_proxy_registrations
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.proxy_registrations import ProxyRegistrationMessage
from tests.integration import test_agency_hub_proxy as approvals
from tests.integration.test_agency_hub_proxy import Story
from tests.support.hub_nodes import set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

story = approvals.story  # the fixture: A, B, C's nodes in hub mode, the hub, the portal it feeds


def registrations_at_hub(story: Story) -> list[tuple[str, bool]]:
    r = hub_proxy_registrations.c
    with story.world.hub.store.engine.connect() as conn:
        return [(str(a), bool(on)) for a, on in conn.execute(select(r.agency, r.active))]


def registration_seq(story: Story) -> int:
    with story.world.hub.store.engine.connect() as conn:
        return int(conn.execute(select(hub_proxy_registrations.c.seq)).scalar_one())


def a_person_with_a_record(story: Story) -> tuple[str, str, str]:
    """X with a record (C asked A about her), no flag; P (X's proxy-to-be) and Q (the perpetrator) signed in at the
    portal with their own cards. Returns the numbers of X, P and Q."""
    x, p, q = individual_number(), individual_number(), individual_number()
    story.world.bridges[A].file_person(x)
    story.world.settle()
    story.world.bridges[C].ask(
        Actor(C, "counter"), A, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    story.world.settle()
    for number in (x, p, q):
        story.refused(number, "self")  # each card signs in once: its registration is owed, no page yet
    story.settle()
    assert [r.querier for r in story.page(x).records] == [C]
    return x, p, q


def test_a_registered_proxy_reads_with_their_own_card_until_cancelled(story: Story) -> None:
    """Threat: the perpetrator posing as X's proxy. Unregistered, P is refused; once A (X's municipality)
    registers P, P with P's own card reads what X reads, while Q with Q's card and a "proxy" with X's card alone
    stay refused. Sent exactly once: a new bridge sends nothing, a resend after a crash is dropped by the hub as
    a replay. A's cancellation refuses P again."""
    x, p, q = a_person_with_a_record(story)
    assert story.refused(x, "proxy", p) == Code.PROXY_REFUSED  # unregistered
    a = story.world.nodes[A].app
    a.register_proxy(Actor(A, "req"), x, p)
    story.settle()
    assert parked(story.world.hub.store.engine) == [] and registrations_at_hub(story) == [(A, True)]
    assert story.page(x, "proxy", p) == story.page(x) and story.page(x, "proxy", p).records
    assert story.refused(x, "proxy", q) == Code.PROXY_REFUSED
    assert story.refused(x, "proxy") == Code.PROXY_REFUSED  # the victim's card, no card of the proxy's own

    assert story.world.bridge(A).push().acts == []  # what was sent is recorded: a new bridge owes nothing
    bridge = story.world.bridges[A]
    bridge._set_position(0)  # a crash after the broker took the messages, before the node recorded them sent
    seq = registration_seq(story)
    assert "proxy_registration" in bridge.push().acts
    step = story.world.hub.step(timeout_ms=20)
    # applied again it would be written at a new sequence: the hub dropped it (its sealed record, sealed afresh,
    # is filed once by its record id, and counts as applied)
    assert step.replays >= 1 and registration_seq(story) == seq and registrations_at_hub(story) == [(A, True)]

    a.cancel_proxy(Actor(A, "req"), x, p, "X cancelled it")
    story.settle()
    assert registrations_at_hub(story) == [(A, False)]
    assert story.refused(x, "proxy", p) == Code.PROXY_REFUSED


def test_a_peer_that_does_not_know_the_person_is_parked(story: Story) -> None:
    """Threat: a peer agency registering the perpetrator Q as X's proxy. From C with a code it never registered
    at the hub (C never typed X's number), the hub parks it (``not_found``); while B's flag applies, A — which
    knows X but holds nothing — registering Q through its own node is parked (``wrong_agency``). Q stays
    refused. Nor may A, holding nothing, cancel P whom B registered (parked ``wrong_agency``: another agency's
    cancellation is the holder's, tests/integration/test_agency_hub_proxy_cancellation.py)."""
    x, p, q = a_person_with_a_record(story)
    end = story.world.bridges[B].end  # B files X first, so B's code for X exists at the hub; C's does not
    end.file_person(x)
    c = story.world.bridges[C].end
    forged = ProxyRegistrationMessage(uuid.uuid4().hex, c.code(individual_number()), c.file_person(q), "register")
    c.send(forged, ANSWER_SIZE)
    story.settle()
    [held] = parked(story.world.hub.store.engine)
    assert held.claimed_sender == C and held.code == Code.NOT_FOUND
    assert registrations_at_hub(story) == [] and story.refused(x, "proxy", q) == Code.PROXY_REFUSED

    set_flag(story.world.nodes[B], B, x, "NON_DISCLOSURE")
    story.settle()  # B's flag at the hub first (one registered before it still needs B's approval to read)
    story.world.nodes[A].app.register_proxy(Actor(A, "req"), x, q)  # A's node takes it; the hub does not
    story.settle()
    codes = [h.code for h in parked(story.world.hub.store.engine)]
    assert codes == [Code.NOT_FOUND, Code.WRONG_AGENCY], codes
    assert registrations_at_hub(story) == [] and story.refused(x, "proxy", q) == Code.PROXY_REFUSED

    story.world.nodes[B].app.register_proxy(Actor(B, "req"), x, p)  # the holder registers P
    story.settle()
    assert registrations_at_hub(story) == [(B, True)]
    assert story.refused(x, "proxy", p) == Code.PROXY_REFUSED  # registered, but B has not approved P
    story.world.bridges[A].end.register_proxy(x, p, "cancel")  # X's other municipality, holding nothing
    story.settle()
    assert [h.code for h in parked(story.world.hub.store.engine)][2:] == [Code.WRONG_AGENCY]
    assert registrations_at_hub(story) == [(B, True)]
    with story.world.hub.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(hub_proxy_registrations)).scalar_one() == 1
