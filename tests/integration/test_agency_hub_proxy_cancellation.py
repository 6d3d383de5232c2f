"""A proxy cancelled by another agency than the one that registered it, from that agency's node through its bridge
and the hub to the portal (issue 19, docs/linkage.md) — agency nodes and the hub on SQLite and on PostgreSQL, the
portal its own database, on the in-memory transport.

The story: X lived at A with Q, who was registered at A as X's proxy. X fled; B, the municipality where she now
lives, protects her and learns that Q is the perpetrator. A node in hub mode holds only its own events, so B's
node cannot find A's registration: its staff cancel it all the same, the node records the cancellation and its
bridge sends it, and the hub — which has the registration — takes it from B because B holds a protection on X.
Threats, per test: the perpetrator as X's proxy (reading her page again once the protection ends, or at A's counter
where A's staff still see the registration in force); a peer agency that neither registered the proxy nor holds X,
cancelling the proxy X chose, or forging the hub's word that a registration was cancelled.
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.cli.main import main
from ledger.errors import Code, PermissionDenied
from ledger.hub.inbox import parked
from ledger.hub.tables import hub_proxy_registrations
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.proxy_registrations import ProxyCancelled
from ledger.linkage.sealing import seal
from ledger.linkage.transport import Topics
from ledger.runtime.bootstrap import Node
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_parked
from projections import views
from projections.portal import portal_proxies
from tests.integration import test_agency_hub_proxy as approvals
from tests.integration.test_agency_hub_proxy import Story
from tests.integration.test_agency_hub_proxy_registration import a_person_with_a_record, registrations_at_hub
from tests.integration.test_api_console import signed_in
from tests.support.hub_nodes import release_flag, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

story = approvals.story  # the fixture: A, B, C's nodes in hub mode, the hub, the portal it feeds


def perpetrator_registered_at_a(story: Story) -> tuple[str, str, str]:
    """X with a record; P (her sister) and Q registered at A as X's proxies, Q reading X's page (the registration
    works); then B protects X. Returns the numbers of X, P and Q."""
    x, p, q = a_person_with_a_record(story)
    story.world.nodes[A].app.register_proxy(Actor(A, "req"), x, p)
    story.world.nodes[A].app.register_proxy(Actor(A, "req"), x, q)
    story.settle()
    assert registrations_at_hub(story) == [(A, True), (A, True)]
    assert story.page(x, "proxy", q) == story.page(x) and story.page(x, "proxy", q).records
    set_flag(story.world.nodes[B], B, x, "NON_DISCLOSURE")
    story.settle()
    assert story.refused(x, "proxy", q) == Code.PROXY_REFUSED  # unapproved while protected: the cancellation's
    return x, p, q  # worth shows once the protection ends


def test_the_victims_new_municipality_cancels_the_perpetrators_proxy(story: Story) -> None:
    """Threat: the perpetrator Q as X's proxy, registered where they lived together. B (holding X) cancels it at
    its own node: recorded there (not A's registration, which B's node never saw), sent once, taken by the hub
    under B's name. Once B's protection ends Q is still refused, while P — registered as Q was, not cancelled —
    reads X's page again (the control). A new bridge owes nothing; B's log verifies, and its auditors' timeline
    of X shows who cancelled."""
    x, p, q = perpetrator_registered_at_a(story)
    b = story.world.nodes[B]
    assert b.app.cancel_proxy(Actor(B, "req"), x, q, "Q is the perpetrator (intake advice)") == "sent"
    story.settle()
    assert parked(story.world.hub.store.engine) == []
    assert sorted(registrations_at_hub(story)) == [(A, True), (B, False)]
    assert story.world.bridge(B).push().acts == []  # what was sent is recorded: a new bridge owes nothing

    release_flag(b, B, x, "NON_DISCLOSURE")
    story.settle()
    assert story.page(x, "proxy", p) == story.page(x)  # the protection ended: P, still registered, reads again
    assert story.refused(x, "proxy", q) == Code.PROXY_REFUSED  # but Q is no one's proxy now
    assert verify_log(b.app, workers=1).ok
    audited = [(e.event, e.actor) for e in views.subject_timeline(b, Actor(B, "aud"), x, "audit")]
    assert ("PeerProxyCancellation.Cancelled", "req") in audited  # B's auditors see who cancelled it


def test_a_peer_that_does_not_hold_the_person_cannot_cancel(story: Story) -> None:
    """Threat: a peer agency cancelling the proxy X chose (P, registered at A, no flag on X). C neither registered
    P nor holds X: its app refuses (``wrong_agency``) and saves nothing, so its bridge sends nothing; sent straight
    on C's linkage end, past its app, the hub parks it (``wrong_agency``) and P still reads X's page. Once B
    protects X, B's node takes the same cancellation and the hub does too; B, its protection released, is a peer
    again: its app refuses."""
    x, p, _ = a_person_with_a_record(story)
    story.world.nodes[A].app.register_proxy(Actor(A, "req"), x, p)
    story.settle()
    assert story.page(x, "proxy", p) == story.page(x)

    c = story.world.nodes[C].app
    with pytest.raises(PermissionDenied) as refused:
        c.cancel_proxy(Actor(C, "req"), x, p, "no reason of X's")
    assert refused.value.code == Code.WRONG_AGENCY
    assert "proxy_registration" not in story.world.bridges[C].push().acts  # nothing saved to send
    story.world.bridges[C].end.register_proxy(x, p, "cancel")  # a shell user at C, past the app
    story.settle()
    [held] = parked(story.world.hub.store.engine)
    assert held.claimed_sender == C and held.code == Code.WRONG_AGENCY
    assert registrations_at_hub(story) == [(A, True)]
    assert story.page(x, "proxy", p) == story.page(x)  # P still reads

    b = story.world.nodes[B]
    set_flag(b, B, x, "NON_DISCLOSURE")
    assert b.app.cancel_proxy(Actor(B, "req"), x, p, "X asked B to end it") == "sent"
    story.settle()
    assert registrations_at_hub(story) == [(B, False)] and len(parked(story.world.hub.store.engine)) == 1
    release_flag(b, B, x, "NON_DISCLOSURE")
    with pytest.raises(PermissionDenied):
        b.app.cancel_proxy(Actor(B, "req"), x, p)


def test_the_command_line_sends_the_cancellation(story: Story, capsys: pytest.CaptureFixture[str]) -> None:
    """Threat: the perpetrator Q as X's proxy. B's requester cancels A's registration with ``proxy cancel`` on
    B's node: it says the cancellation was sent (not made in B's log), and once the bridge ran the hub holds it
    cancelled by B."""
    x, _, q = perpetrator_registered_at_a(story)
    d = str(story.world.nodes[B].config.data_dir)
    args = ["--data-dir", d, "proxy", "cancel", "--as", f"{B}/req", "--subject", x, "--proxy", q]
    assert main([*args, "--reason", "Q is the perpetrator"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["cancelled"] is True and said["how"] == "sent" and x not in json.dumps(said)
    story.settle()
    r = hub_proxy_registrations.c
    with story.world.hub.store.engine.connect() as conn:
        rows = sorted((a, bool(on)) for a, on in conn.execute(select(r.agency, r.active)))
    assert rows == [(A, True), (B, False)]


def test_a_cancellation_under_the_persons_new_number_reaches_the_old_registration(story: Story) -> None:
    """Threat: the perpetrator Q as X's proxy, registered at A under X's old number. X's number changed (B linked
    it) and B protects her under the new one: B cancels Q naming her new number, and the hub cancels the
    registration made under the old one — once B releases, Q is refused on her new card and her old, while P
    (registered with Q, not cancelled) reads again (the control)."""
    x, p, q = perpetrator_registered_at_a(story)
    x2 = individual_number()
    b = story.world.nodes[B]
    b.app.approve_link(Actor(B, "apr"), b.app.request_link(Actor(B, "req"), x, x2, "個人番号の変更"))
    set_flag(b, B, x2, "NON_DISCLOSURE")
    story.refused(x2, "self")  # her new card signs in
    story.settle()
    assert b.app.cancel_proxy(Actor(B, "req"), x2, q, "Q is the perpetrator") == "sent"
    story.settle()
    assert parked(story.world.hub.store.engine) == []
    release_flag(b, B, x, "NON_DISCLOSURE")
    release_flag(b, B, x2, "NON_DISCLOSURE")
    story.settle()
    assert story.page(x2, "proxy", p) == story.page(x2)  # the control: P reads her page under the new card
    assert story.refused(x2, "proxy", q) == Code.PROXY_REFUSED
    assert story.refused(x, "proxy", q) in (Code.PROXY_REFUSED, Code.CARD_REVOKED)


def test_the_console_sends_the_cancellation_for_a_holders_requester(story: Story) -> None:
    """Threat: the perpetrator Q as X's proxy; a peer agency or a counter clerk taking away the proxy X chose. On
    B's console a counter clerk is refused (403) and C's requester (C holds nothing on X) too; B's requester
    cancels A's registration, told it was recorded and goes through the hub; the hub holds it cancelled by B."""
    x, _, q = perpetrator_registered_at_a(story)
    data = {"subject": x, "proxy": q, "reason": "Q is the perpetrator"}
    clerk, clerk_csrf = signed_in(story.world.nodes[B], B, "counter")
    assert clerk.post("/console/proxies/cancel", data={**data, "csrf": clerk_csrf}).status_code == 403
    peer, peer_csrf = signed_in(story.world.nodes[C], C, "req")
    refused = peer.post("/console/proxies/cancel", data={**data, "csrf": peer_csrf})
    assert refused.status_code == 403 and "wrong_agency" in refused.text
    req, csrf = signed_in(story.world.nodes[B], B, "req")
    r = req.post("/console/proxies/cancel", data={**data, "csrf": csrf})
    assert r.status_code == 200 and "取消しを記録しました" in r.text and x not in r.text
    story.settle()
    assert parked(story.world.hub.store.engine) == []
    assert sorted(registrations_at_hub(story)) == [(A, True), (B, False)]


def _through_hub(node: Node, x: str, proxy: str) -> int:
    """How many ``CancelledThroughHub`` events the node's log holds on its registration of ``proxy`` for ``x``."""
    stream = node.app.ids.proxy(A, node.app.subject(x), node.app.subject(proxy))
    events = node.app.events.get(stream)
    return sum(1 for e in events if type(e).__qualname__ == "ProxyRegistration.CancelledThroughHub")


def _in_force(node: Node, x: str, proxy: str) -> tuple[bool, bool]:
    """(the registration's aggregate, the node's proxy view): whether each says the proxy is registered now."""
    reg = node.app.find_proxy_registration(x, proxy)
    s, p = node.app.subject(x), node.app.subject(proxy)
    with node.engine.connect() as conn:
        row = conn.execute(
            select(portal_proxies.c.active).where((portal_proxies.c.subject == s) & (portal_proxies.c.proxy == p))
        ).scalar_one()
    return reg is not None and reg.active, bool(row)


def test_the_registering_municipality_is_told_its_registration_was_cancelled(story: Story) -> None:
    """Threat: the perpetrator Q at A's counter, where Q was registered as X's proxy — A's staff must not see Q's
    registration in force once B (holding X) cancelled it at the hub. The hub tells A (sealed, answer-sized, under
    A's own codes, naming neither B nor why); A's node records ``CancelledThroughHub`` once (a second settle, a
    fresh bridge: nothing more), its view and its app hold Q cancelled while P stays registered (the control); A's
    auditors' timeline shows the cancellation with no actor and no B; A's log verifies."""
    x, p, q = perpetrator_registered_at_a(story)
    a = story.world.nodes[A]
    assert _in_force(a, x, q) == (True, True) and _through_hub(a, x, q) == 0
    inbox = Topics().inbox(A)
    before = len(story.world.broker.topics.get(inbox, []))
    assert story.world.nodes[B].app.cancel_proxy(Actor(B, "req"), x, q, "Q is the perpetrator") == "sent"
    story.settle()
    assert parked(story.world.hub.store.engine) == []
    told = story.world.broker.topics[inbox][before:]
    assert told and all(len(m) == len(told[0]) for m in told)  # sealed at an answer's size like all the hub sends
    assert _in_force(a, x, q) == (False, False)  # without the hub's word: (True, True), the perpetrator in force
    assert _in_force(a, x, p) == (True, True)  # P, not cancelled, stays registered
    assert _through_hub(a, x, q) == 1
    story.settle()
    story.world.bridge(A).pull(timeout_ms=20)
    assert _through_hub(a, x, q) == 1
    with a.engine.connect() as conn:
        assert conn.execute(select(linkage_parked)).all() == []
    seen = [e for e in views.subject_timeline(a, Actor(A, "aud"), x, "audit") if "CancelledThroughHub" in e.event]
    assert len(seen) == 1 and seen[0].actor is None
    assert B not in json.dumps(seen[0].detail, default=str) and "perpetrator" not in json.dumps(seen[0].detail)
    assert verify_log(a.app, workers=1).ok
    with pytest.raises(PermissionDenied):  # A cannot cancel it again in its own log as if it were in force
        a.app.cancel_proxy(Actor(A, "req"), x, q)


def test_a_peer_forging_the_hubs_cancellation_is_parked(story: Story) -> None:
    """Threat: a peer agency (C) forging the hub's ``proxy_cancelled`` to make A's staff believe X's chosen proxy P
    is no longer registered. Sealed to A with C's own key, A's codes known, put in A's inbox past the broker's
    ACLs: A's node parks it with its bytes, records nothing, and P stays registered at A."""
    x, p, _ = a_person_with_a_record(story)
    a = story.world.nodes[A]
    a.app.register_proxy(Actor(A, "req"), x, p)
    story.settle()
    forged = ProxyCancelled(code_of(a.app.subject(x)), code_of(a.app.subject(p)))
    sealed = seal(
        story.world.bridges[C].keys.signer,
        story.world.hub.directory.sealing_key(A),
        A,
        uuid.uuid4().hex,
        forged.kind,
        forged.encode(),
        ANSWER_SIZE,
    )
    story.world.broker.append(Topics().inbox(A), sealed)
    pulled = story.world.bridge(A).pull(timeout_ms=20)
    assert pulled.applied == [] and len(pulled.parked) == 1
    with a.engine.connect() as conn:
        (kept,) = conn.execute(select(linkage_parked)).all()
    assert kept.message == sealed
    assert _in_force(a, x, p) == (True, True) and _through_hub(a, x, p) == 0
