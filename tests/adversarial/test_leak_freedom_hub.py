"""The leak-freedom model on the hub topology (issue 19): a generated history per seed (``hub_model``) over three
agency nodes in hub mode and the hub, in-memory broker. A, B and C protect people (``NON_DISCLOSURE``, sometimes
with ``NO_AUTO_RESPONSE``) and release them, record number changes (a link that reaches the hub late included:
pushes are random), record moves and take over on handovers, list a child on a victim's case (a companion);
B and C ask A about anyone; holders advise on their consultations, A's reviewer and approver decide, the hub's
clock passes the consultation's deadline; cards sign in at the portal — all with the parties' loops turned in a
random order, crashes (a bridge or the hub's loop replaced by a new one that knows only its database) and lost
commit acknowledgements (an inbox's position set back, everything after it handed over again); and wrong links
undone and second number changes by the link's maker, proxies registered, approved by a holder's two people,
withdrawn and cancelled (by the registering agency, by another holder of the person from its own node, and a peer
holding nothing refused by its node). A fixed epilogue then plays each rule once so every seed proves each (a record
made before the flag, a late link, a decided and an escalated consultation, a handover, the last holder's release; a
proxy refused past B's flag until B approves, refused again once withdrawn, let in once released, refused once
cancelled; a proxy A registered cancelled by B, protecting the person, refused after B's release (C's refused); a
protected person's second number change; a wrong link undone; an erasure of a protected person).

The checks, against the model's ground truth and the hub's own sequence (no clock compared):

* **the staff mark**: a query the hub routed at sequence ``s`` is marked for staff exactly when some holder's
  ``NON_DISCLOSURE`` or ``NO_AUTO_RESPONSE`` was open before ``s`` on any number the hub had linked to the
  person's before ``s`` (its holders, and only they, consulted) — so while any holder holds, across a link and
  after a handover, it is never auto-answered, and only once no holder remains is it answered automatically; a
  number a wrong link joined brings each holding begun before the link was undone, until released;
* **never automatic at A**: a staff-marked query is held at A with no ``AutoProvided`` in A's log, ever; the
  querier hears ``in_progress`` with no data until the hub relays a four-eyes decision, and then that decision;
* **the consultation**: a decision the hub relayed names two different staff keys of A, on ``advised`` only
  when every holder consulted advised, on ``escalated`` only when the hub escalated; every staff request past
  its deadline without all advice is escalated (``no_advice``) and an escalation alone answers nothing; a
  decision the hub refused as taken before late advice comes with one ``decide_again`` and exactly one
  ``Reopened`` at the provider (long seeds 103 and 104 play it), whose staff may then decide again;
* **sticky hiding at the portal**: after every turn of the hub, a record once hidden from a card's page is never
  shown on it again; at the end each card's page shows exactly the records whose hub sequence is at or above the
  end of the person's latest ``NON_DISCLOSURE`` interval across all their numbers (an open one never ends), and
  across the numbers a wrong link once joined to theirs (the intervals begun before the undo);
* **exactly once**: every flag change executed at a node filed once, every link once, every query routed once,
  applied at A once, and every answer (the first, and a relayed decision) applied at the querier once; every
  wrong link undone at the hub once (the staff mark above follows links filed *and undone* in the sequence);
* **number changes**: the hub joins every number of a person that no wrong link parted — a second change keeps
  the first number (retired) and its protection on the third, so a query about her newest number is held while a
  holder protects her first (a real bug, fixed: ``consumers.linkage_bridge.sends_unlink``);
* **proxies**: a card's page lets in (``proxies``, the portal's codes) only a proxy registered for one of the
  person's numbers and not cancelled, and while any holder's flag applies at the hub only one every such holder
  approved and has not withdrawn;
* **erasures**: what an agency erased is shredded at the hub, on no page, and nothing is un-hidden (the sticky
  check above after the erasure; the page's note stays while a record is hidden, erased or not).

``test_the_model_catches_a_broken_product`` breaks one of these rules of the product at a time (the page lets a
registered proxy past a holder's flag; the hub ignores a cancellation; the bridge does not send another agency's
cancellation; the hub ignores an unlink; the bridge
sends a second change's unlink; an erasure takes the person's flag changes with it) and shows the model fails,
naming it. The unlinks' own cases (a flag set through a wrong link, records hidden while linked) are
``test_leak_freedom_hub_unlinks.py``.

A few seeds of 45 steps run in CI; ``FLAGLEDGER_HUB_MODEL_SEEDS=N`` runs N more under ``long``, each of
``FLAGLEDGER_HUB_MODEL_STEPS`` steps (default 200).

Threats: the perpetrator asking at B or C about X (any order of events, a number change the hub learns late or a
second one, a move, a child listed on the case, any crash or redelivery must not let an automatic answer through
while X is protected, nor a hidden record back onto X's portal page after release or an erasure); the
perpetrator signing in at the portal as X's proxy (unregistered, cancelled, or past a holder who did not
approve); a holder's or the provider's staff (the consultation answers only with two people's signatures, never by
the deadline); the broker and the network (redelivery, lost acknowledgements); an administrator restarting
processes.
"""

from __future__ import annotations

import os
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import delete, func, select

from consumers import linkage_bridge, linkage_proxy_registrations
from consumers.linkage_receipt import NOBODY, NOBODY_SENT
from ledger.app import Actor
from ledger.hub import links, portal_feed, proxy_registrations, service
from ledger.hub.log import Also, HubStore, open_hub_store
from ledger.hub.portal_feed import page_for
from ledger.hub.routing import holdings
from ledger.hub.sealed_records import sealed_page
from ledger.hub.tables import (
    hub_applied,
    hub_consultations,
    hub_decisions,
    hub_escalations,
    hub_flag_changes,
    hub_links,
    hub_parked,
    hub_requests,
    hub_sealed_records,
)
from ledger.linkage.codes import hub_person, persons_of, portal_code
from ledger.linkage.erasure_messages import ErasureMessage
from ledger.linkage.messages import LinkMessage, UnlinkMessage, decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.proxy_registrations import ProxyRegistrationMessage
from ledger.linkage.sealing import unseal
from ledger.linkage.transport import Topics
from ledger.runtime.tables import linkage_applied, linkage_queries
from tests.adversarial.hub_model import AGENCIES, NAR, ND, Model, history
from tests.conftest import NodeFactory
from tests.support.hub_nodes import HubNodes, hub_nodes
from tests.support.hub_world import A, B, C

CI_SEEDS = (1, 2, 3)
STEPS = 45  # in CI; the long seeds' histories are LONG_STEPS
LONG_STEPS = int(os.environ.get("FLAGLEDGER_HUB_MODEL_STEPS", "200"))
INF = float("inf")


def _parked(code: str, reason: str) -> str:
    """What the hub may park in a history, by the product's rules (docs/linkage.md): a move not from where the
    person last moved to; advice that comes after the request was decided; a decision taken on the escalation
    when the last holder's advice reached the hub after the escalation, before the decision ("decide again" —
    only with the hub's ``decide_again`` to the provider and the request reopened there: the checks below).
    Anything else fails."""
    if code == "conflict" and "was decided before" in reason:
        return "late_advice"
    if code == "staff_decision_required" and "decide again on the advice recorded" in reason:
        return "stale_decision"
    if code == "wrong_agency" and "only a holder registers a proxy now" in reason:
        return "proxy_not_holder"
    return code


def card_pages(m: Model) -> dict[str, tuple[set[str], set[str]]]:
    """Each card's page at the hub now: (record ids shown, record ids of the person left out)."""
    store = m.w.hub.store
    out = {}
    for code in m.cards:
        person = store.codes.person(PORTAL, code)
        if person is None:
            continue  # the card's registration has not reached the hub yet
        shown = {e.record_id for e in sealed_page(store.engine, store.codes, code).records}
        r = hub_sealed_records.c
        with store.engine.connect() as conn:
            ids = set(conn.execute(select(r.record_id).where(r.person.in_(persons_of(store.codes, person)))).scalars())
        out[code] = (shown, ids - shown)
    return out


class Sticky:
    """Once hidden from a card's page, a record is never shown on it again (checked after every hub turn)."""

    def __init__(self, m: Model) -> None:
        self.m = m
        self.hidden: dict[str, set[str]] = defaultdict(set)

    def __call__(self) -> None:
        for code, (shown, left_out) in card_pages(self.m).items():
            back = self.hidden[code] & shown
            assert not back, f"a hidden record shown again on the portal: {sorted(back)}"
            self.hidden[code] |= left_out


def settle(m: Model, sticky: Sticky, without: tuple[str, ...] = ()) -> None:
    """Every party's loop until nothing moves (``without``: these agencies' bridges do not turn)."""
    for _ in range(60):
        moved = False
        for code in AGENCIES:
            if code not in without:
                pushed = m.w.bridges[code].push()
                moved |= bool(pushed.acts or pushed.registrations)
        done = m.w.hub.step(timeout_ms=0)
        moved |= bool(done.applied or done.parked or done.replays or done.sent)
        if done.applied:  # pages change only with what the hub applies
            sticky()
        for code in AGENCIES:
            if code not in without:
                pulled = m.w.bridges[code].pull(timeout_ms=0)
                moved |= bool(pulled.applied or pulled.parked)
        if not moved:
            return


def link_spans(w: HubNodes) -> dict[tuple[str, str], tuple[int, float]]:
    """(old person, new person) → the hub sequences the link was filed at and undone at (INF: in force), read
    from the hub's inbox (opened with the hub's key) and the hub's applied ids. A pair is linked once at most."""
    keys = w.hub.directory.sender_keys(w.nodes[A].app.clock())
    filed: dict[tuple[str, str], int] = {}
    undone: dict[tuple[str, str], int] = {}
    with w.hub.store.engine.connect() as conn:
        for value in w.broker.topics.get(Topics().inbox(HUB), []):
            opened = unseal(w.hub.keys.sealing, HUB, value, keys)
            if opened.kind not in (LinkMessage.kind, UnlinkMessage.kind):
                continue
            t = hub_applied.c
            seq = conn.execute(
                select(t.seq).where((t.sender == opened.sender) & (t.event_id == opened.event_id))
            ).scalar()
            link = decode(LinkMessage if opened.kind == LinkMessage.kind else UnlinkMessage, opened.payload)
            old, new = (w.hub.store.codes.person(opened.sender, c) for c in (link.old_code, link.new_code))
            if seq is not None and old is not None and new is not None:
                into = filed if opened.kind == LinkMessage.kind else undone
                into[old, new] = min(int(seq), into.get((old, new), int(seq)))
    return {pair: (seq, undone.get(pair, INF)) for pair, seq in filed.items()}


def chain_at(person: str, links: dict[tuple[str, str], tuple[int, float]], before: float) -> set[str]:
    """The person ids the hub had joined to ``person`` by links filed, and not undone, before ``before``."""
    edges = [(o, n) for (o, n), (s, e) in links.items() if s < before <= e]
    found, grew = {person}, True
    while grew:
        grew = False
        for o, n in edges:
            if (o in found) != (n in found):
                found |= {o, n}
                grew = True
    return found


def ever_joined(person: str, links: dict[tuple[str, str], tuple[int, float]], before: float) -> dict[str, float]:
    """Person id → the latest hub sequence, up to ``before``, at which the hub had it joined to ``person``: the
    chain just before each undo (a chain only grows between undos) and at ``before`` itself."""
    found: dict[str, float] = {}
    for at in sorted({before, *(e for _, e in links.values() if e < before)}):
        for p in chain_at(person, links, at):
            found[p] = at
    return found


def spans(changes: list, persons: dict[str, float], flags: tuple[str, ...], before: float) -> list[tuple]:
    """(holder, person, start, end) of every interval of ``flags`` on ``persons`` from the changes before
    ``before`` (end INF: open) that counts for the person: begun while its person id was joined to theirs
    (before ``persons[id]``) — the rule after an unlink (docs/linkage.md, "Unlinks")."""
    opened: dict[tuple, int] = {}
    found: list[tuple] = []
    for c in sorted(changes, key=lambda c: c.seq):
        if c.seq >= before or c.person not in persons or c.flag not in flags:
            continue
        key = (c.holder, c.person, c.flag)
        if c.action == "set":
            opened.setdefault(key, c.seq)
        elif key in opened:
            found.append((c.holder, c.person, opened.pop(key), c.seq))
    found += [(h, p, start, INF) for (h, p, _), start in opened.items()]
    return [(h, p, start, end) for h, p, start, end in found if start < persons[p]]


def check(m: Model, sticky: Sticky) -> dict[str, int]:
    w, store = m.w, m.w.hub.store
    secret = w.hub_keys.secret
    hp = {n: hub_person(secret, n) for n in m.person}
    with store.engine.connect() as conn:
        changes = conn.execute(select(hub_flag_changes)).all()
        routed = conn.execute(select(hub_requests)).all()
        consulted = conn.execute(select(hub_consultations)).all()
        escalated = {(r.request_id, r.reason) for r in conn.execute(select(hub_escalations))}
        decided = {r.request_id: r for r in conn.execute(select(hub_decisions))}
        linked = {(r.old, r.new) for r in conn.execute(select(hub_links))}
        parked = Counter(_parked(str(r.code), str(r.reason)) for r in conn.execute(select(hub_parked)))
    # exactly once: flag changes and links as the nodes executed them, queries as asked
    filed = Counter((c.holder, c.person, c.flag, c.action) for c in changes)
    assert filed == Counter({(a, hp[n], f, act): k for (a, n, f, act), k in m.changes.items()}), "flag changes"
    for number in sorted(set(m.person) - m.parted):  # a second change keeps her earlier numbers (and flags)
        joined = {hp[n] for n in m.numbers_of(number)}
        assert joined <= set(persons_of(store.codes, hp[number])), "one of a person's numbers parted at the hub"
    assert linked == {(hp[o], hp[n]) for _, o, n in m.links}, "a number change lost, filed twice or not undone"
    links = link_spans(w)
    assert set(links) == {(hp[o], hp[n]) for _, o, n in m.made}, "a link made at a node not filed at the hub"
    assert {p for p, (_, end) in links.items() if end == INF} == linked, "an unlink lost or filed twice"
    assert sorted(r.querier_request for r in routed) == sorted(m.asked), "a query lost or routed twice"
    local = {k: (p, *v) for p in AGENCIES for k, v in m.routed_at(p).items()}
    assert sorted(local) == sorted(r.request_id for r in routed), "a routed query lost or applied twice"
    assert all(local[r.request_id][0] == r.provider for r in routed)
    allowed = {"not_residence", "late_advice", "stale_decision", "proxy_not_holder"}
    assert set(parked) <= allowed, f"the hub parked {parked}"
    # a decision refused as stale is never left unsaid: the hub told the provider to decide again (once each)
    again = {rid for rid, reason in escalated if reason == "decide_again"}
    assert bool(parked["stale_decision"]) == bool(again), "a stale decision refused without decide_again"
    heard: dict[str, tuple[str, str]] = {}
    answers = 0
    for querier in AGENCIES:
        with w.nodes[querier].engine.connect() as conn:
            q = linkage_queries.c
            heard |= {
                str(x.request_id): (x.status, x.data) for x in conn.execute(select(q.request_id, q.status, q.data))
            }
            answers += conn.execute(
                select(func.count()).select_from(linkage_applied).where(linkage_applied.c.kind == "answer")
            ).scalar_one()
    assert answers == len(m.asked) + len(decided), "an answer lost or applied twice at the querier"
    advice = defaultdict(dict)
    for c in consulted:
        advice[c.request_id][c.holder] = c
    now = int(w.hub.now().timestamp())
    counts = Counter[str]()
    for r in routed:
        ever = ever_joined(r.person, links, r.seq)  # and numbers a wrong link joined, until undone
        holders = {h for h, _, _, end in spans(changes, ever, (ND, NAR), r.seq) if end == INF}
        assert r.staff == bool(holders), f"routed {'staff' if r.staff else 'auto'} with holders {holders}"
        _, local_id, how = local[r.request_id]
        app = w.nodes[r.provider].app
        said = heard[r.querier_request]
        if r.staff:
            counts["staff"] += 1
            assert set(advice[r.request_id]) == holders, "the holders consulted are not those holding"
            rows = advice[r.request_id].values()
            if any(x.deadline < now for x in rows) and not all(x.advice for x in rows):
                assert (r.request_id, "no_advice") in escalated, "silent holders past the deadline, not escalated"
                counts["escalated"] += 1
        if how in (NOBODY, NOBODY_SENT):  # routed before the provider's registration reached it: nobody to ask
            assert said == ("in_progress", "")
            continue
        request = app.provision_request(UUID(local_id))
        events = [type(e).__qualname__ for e in app.events.get(request.id)]
        if r.staff:
            assert "ProvisionRequest.AutoProvided" not in events, "a query marked for staff answered automatically"
            reopened = events.count("ProvisionRequest.Reopened")
            assert reopened == (r.request_id in again), "decide_again not applied at the provider exactly once"
            counts["reopened"] += reopened
            d = decided.get(r.request_id)
            if d is None:
                assert said == ("in_progress", ""), "the querier heard more than in_progress without a decision"
                assert request.status == "held" or local_id in m.decided
            else:
                counts["decided"] += 1
                assert said == (d.status, ""), "the querier heard another answer than the staff's decision"
                assert d.first_key != d.second_key and {d.first_key[:7], d.second_key[:7]} == {f"{r.provider}:"}
                if d.basis == "advised":
                    assert all(x.advice for x in rows), "decided as advised before every holder advised"
                else:
                    assert (r.request_id, "no_advice") in escalated, "decided as escalated with no escalation"
        elif not any((r.provider, n) in m.ever_held for n in m.numbers_of(number_of(m, r.querier_request))):
            counts["auto"] += 1
            assert request.status == "provided" and said[0] == "answered"
    # the portal: each card's page shows exactly what the hub's sequence leaves visible, across the numbers
    sticky()
    counts |= check_proxies(m)
    for code, number in m.cards.items():
        persons = {hp[n] for n in m.joined(number)}
        assert set(persons_of(store.codes, hp[number])) == persons
        ever = ever_joined(hp[number], links, INF)  # what a wrong link joined hid stays hidden
        end = max((e for *_, e in spans(changes, ever, (ND,), INF)), default=None)
        r = hub_sealed_records.c
        with store.engine.connect() as conn:
            records = conn.execute(select(r.seq, r.record_id, r.contents).where(r.person.in_(persons))).all()
        # an erased record (its contents shredded) is on no page; hidden or not, it counts for the note
        expected = {x.record_id for x in records if (end is None or x.seq >= end) and x.contents}
        shown, left_out = card_pages(m)[code]
        assert shown == expected, "the portal page does not follow the hub's sequence"
        note = sealed_page(store.engine, store.codes, code).note
        assert (note is not None) == any(end is not None and x.seq < end for x in records), "the note changed"
        counts["hidden"] += len(left_out)
    r = hub_sealed_records.c
    with store.engine.connect() as conn:  # what an agency erased is shredded, every record of it at the hub
        for agency, number in m.erased:
            mine = r.person.in_([hp[n] for n in m.numbers_of(number)]) & (r.provider == agency)
            kept = conn.execute(
                select(func.count()).select_from(hub_sealed_records).where(mine & (func.length(r.contents) > 0))
            ).scalar_one()
            assert kept == 0, "an erased record's contents still at the hub"
            counts["erased"] += 1
    return dict(counts)


def check_proxies(m: Model) -> Counter[str]:
    """Whom each card's page lets in as proxy (the portal's codes the hub sends in the page, ``proxies``): only
    a proxy the model registered for one of the person's numbers and has not cancelled, and — while any holder's
    flag applies to the person at the hub — one every such holder approved (in force, not withdrawn)."""
    store, keys = m.w.hub.store, m.w.portal_keys
    assert keys is not None
    counts = Counter[str]()
    for code, number in m.cards.items():
        person = store.codes.person(PORTAL, code)
        if person is None:
            continue
        numbers = m.joined(number)
        listed = set(page_for(store, code, 0).proxies)
        registered = {portal_code(keys.secret, p) for (n, p) in m.proxies if n in numbers}
        assert listed <= registered, "a proxy let in who is not registered for the person (or was cancelled)"
        holders = holdings(store.engine, store.codes, person)
        for holder in holders:
            mine = {portal_code(keys.secret, p) for (h, n, p) in m.approvals if h == holder and n in numbers}
            assert listed <= mine, f"a proxy let in while {holder} protects the person without its approval"
        counts["proxy_in"] += len(listed)
        counts["proxy_refused"] += len(registered - listed)
    return counts


def number_of(m: Model, querier_request: str) -> str:
    return m.asked[querier_request][1]


def epilogue(m: Model, sticky: Sticky) -> None:
    """Each rule once, in a fixed order, on a new person X (so every seed proves it)."""
    w = m.w
    x1 = m.new_person()
    m.sign_in(x1)
    settle(m, sticky)
    before = m.ask(x1)  # answered automatically: its record is made before the flag
    settle(m, sticky)
    assert m.w.bridges[C].query(before)["status"] == "answered"
    assert m._chain(B, x1, [ND])
    settle(m, sticky)
    held = m.ask(x1)
    settle(m, sticky)
    # X's number changes at B; the link reaches the hub late: A, C and the portal work under the new number first
    x2 = m.link(B, x1)
    assert x2 is not None
    w.bridges[A].file_person(x2)
    m.sign_in(x2)
    late = m.ask(x2)
    settle(m, sticky, without=(B,))
    shown_before = card_pages(m)[next(c for c, n in m.cards.items() if n == x2)][0]
    assert shown_before, "the record under the new number is shown before the hub knows the link"
    settle(m, sticky)
    assert not card_pages(m)[next(c for c, n in m.cards.items() if n == x2)][0] & shown_before
    assert w.bridges[C].query(late)["status"] == "answered"  # the hub could not know: the one inherent window
    # the holder advises, A's two staff decide: the querier hears the decision, never an automatic answer
    m.advise(B, every=True)
    settle(m, sticky)
    with w.hub.store.engine.connect() as conn:
        hub_id = conn.execute(select(hub_requests.c.request_id).where(hub_requests.c.querier_request == held))
        local = m.routed_at(A)[str(hub_id.scalar_one())][0]
    m.decide(A, local)
    settle(m, sticky)
    assert local in m.decided and w.bridges[C].query(held)["status"] in ("answered", "not_provided")
    # X moves on from B to C, C takes over; only then B releases; a query about the old number is still staff's
    assert w.nodes[B].app.record_move(Actor(B, "req"), x1, to_agency=C, moved_on=date(2027, 1, 1))
    w.bridges[C].file_person(x1)
    w.bridges[C].file_person(x2)
    settle(m, sticky)
    assert not m.release(B, x1) and m.refused["handover_pending"] >= 1  # C does not hold yet
    m.take_over(C)
    settle(m, sticky)
    assert m.release(B, x1)
    settle(m, sticky)
    silent = m.ask(x1, B)
    settle(m, sticky)
    m.deadline()  # C, the holder now, stays silent: escalated, never answered
    settle(m, sticky)
    assert w.bridges[B].query(silent)["status"] == "in_progress"
    for n in (x1, x2):  # C, the last holder, releases: no holder remains for any of X's numbers
        m.release(C, n)
    settle(m, sticky)
    after = m.ask(x1)
    settle(m, sticky)
    assert w.bridges[C].query(after)["status"] == "answered"
    proxies(m, sticky)
    other_cancels(m, sticky)
    second_changes(m, sticky)
    erasure(m, sticky)


def erasure(m: Model, sticky: Sticky) -> None:
    """W asked about at A (by C) and at C (by A), then protected by B: both records hidden on W's page, the
    note shown. A's administrators erase W: A's record is shredded at the hub; C's stays hidden, the note stays —
    an erasure un-hides nothing (the sticky check after every hub turn, and ``check``)."""
    w = m.new_person()
    m.sign_in(w)
    m.w.bridges[C].file_person(w)  # registered at the hub before A's query reaches it (else nobody is asked)
    m.ask(w, C, A)
    settle(m, sticky)
    m.ask(w, A, C)
    settle(m, sticky)
    assert m._chain(B, w, [ND])
    settle(m, sticky)
    [code] = [c for c, n in m.cards.items() if n == w]
    assert len(card_pages(m)[code][1]) == 2, "the control: both records hidden"
    m.erase(A, w)
    settle(m, sticky)
    shown, left_out = card_pages(m)[code]
    assert not shown and len(left_out) == 2
    assert sealed_page(m.w.hub.store.engine, m.w.hub.store.codes, code).note is not None, "the note lost"


def listed(m: Model, number: str, proxy: str) -> bool:
    """Whether the hub's page for ``number``'s card lets ``proxy`` (their own card) in."""
    keys = m.w.portal_keys
    assert keys is not None
    page = page_for(m.w.hub.store, portal_code(keys.secret, number), 0)
    return portal_code(keys.secret, proxy) in page.proxies


def proxies(m: Model, sticky: Sticky) -> None:
    """Y protected by B: a proxy B registered is refused until B's two people approve, and again once they
    withdraw; let in once B releases (registered, no flag applies); refused once cancelled."""
    y = m.new_person()
    m.sign_in(y)
    assert m._chain(B, y, [ND])
    proxy = m.register_proxy(B, y)
    settle(m, sticky)
    assert proxy is not None and not listed(m, y, proxy), "a registered proxy let in past B's flag"
    assert m.approve_proxy(B, y, proxy)
    settle(m, sticky)
    assert listed(m, y, proxy), "B's approved proxy refused"
    m.withdraw_proxy((B, y, proxy))
    settle(m, sticky)
    assert not listed(m, y, proxy), "a withdrawn approval still lets the proxy in"
    assert m.release(B, y)
    settle(m, sticky)
    assert listed(m, y, proxy), "a registered proxy refused while no flag applies"
    check_proxies(m)
    m.cancel_proxy((y, proxy), by=B)
    settle(m, sticky)


def other_cancels(m: Model, sticky: Sticky) -> None:
    """V's proxy registered at A, where she lived with him (no flag): let in. C, a peer holding nothing on V,
    cancels it: its node refuses, the proxy still let in. B protects V and cancels A's registration from its own
    node (not in B's log: its bridge sends it, the hub cancels it): once B releases, the proxy stays refused."""
    v = m.new_person()
    m.sign_in(v)
    proxy = m.register_proxy(A, v)
    settle(m, sticky)
    assert proxy is not None and listed(m, v, proxy), "the control: a registered proxy refused while no flag applies"
    assert not m.cancel_proxy((v, proxy), by=C), "a peer holding nothing cancelled another agency's proxy"
    settle(m, sticky)
    assert listed(m, v, proxy), "a peer's refused cancellation took the proxy off"
    assert m._chain(B, v, [ND])
    assert m.cancel_proxy((v, proxy), by=B)
    settle(m, sticky)
    assert m.release(B, v)
    settle(m, sticky)
    assert not listed(m, v, proxy), "another agency's cancellation ignored: the proxy let in again"


def second_changes(m: Model, sticky: Sticky) -> None:
    """Y, protected by C under her first number, changes number twice (a second change through B, the first
    link's maker): a query about her third number is held for staff; a wrong link of Z's made by C is undone."""
    y = m.new_person()
    assert m._chain(C, y, [ND])
    y2 = m.link(B, y)
    settle(m, sticky)
    third = m.renumber(y)
    assert y2 is not None and third is not None
    settle(m, sticky)
    asked = m.ask(third, B)
    settle(m, sticky)
    assert m.w.bridges[B].query(asked)["status"] == "in_progress", "her third number answered automatically"
    z = m.new_person()
    assert m.link(C, z) is not None
    settle(m, sticky)
    m.unlink(z)
    settle(m, sticky)


def run(
    make_node: NodeFactory, tmp_path: Path, seed: int, steps: int, only: Callable[[Model, Sticky], None] | None = None
) -> dict[str, int]:
    """A history of ``steps`` steps, then the epilogue (``only``: this part of it alone), checked."""
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, AGENCIES)
    m = Model(w, random.Random(seed))
    sticky = Sticky(m)
    try:
        history(m, steps, sticky)
        settle(m, sticky)
        (only or epilogue)(m, sticky)
        return check(m, sticky)
    finally:
        w.close()
        store.close()


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
    """The perpetrator at B or C and at the portal, holders' and the provider's staff, the broker and network,
    an administrator restarting (see the module)."""
    counts = run(make_node, tmp_path, seed, STEPS if seed in CI_SEEDS else LONG_STEPS)
    for what in ("staff", "auto", "decided", "escalated", "hidden"):
        assert counts.get(what, 0) >= 1, f"no {what} case: the history proves nothing of it ({counts})"


def _registered_only(store: HubStore, person: str) -> tuple[str, ...]:
    return tuple(sorted(proxy_registrations._registered(store, person)))


def _erasure_unhides(monkeypatch: pytest.MonkeyPatch) -> None:
    real = service.erase

    def erase(store: HubStore, agency: str, message: ErasureMessage, also: Also = None) -> int:
        seq = real(store, agency, message, also)
        person = store.codes.person(agency, message.code)
        with store.engine.begin() as conn:  # the person's protection history "erased" with the records
            conn.execute(delete(hub_flag_changes).where(hub_flag_changes.c.person.in_(persons_of(store.codes, person))))
        return seq

    monkeypatch.setattr(service, "erase", erase)


def _cancel_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    real = service.register_proxy

    def register(store: HubStore, agency: str, message: ProxyRegistrationMessage, also: Also = None) -> int:
        if message.action == "cancel":  # marked applied, nothing changed
            return store.sequencer.append(lambda conn: None, lambda conn, seq: also(conn, seq) if also else None)
        return real(store, agency, message, also)

    monkeypatch.setattr(service, "register_proxy", register)


_registration_message = linkage_proxy_registrations.registration_message


def _own_only(agency: str, topic: str, registration: Any, stream: UUID, version: int) -> Any:
    if topic == linkage_proxy_registrations.PEER_CANCELLED:  # recorded at the node, never sent
        return iter(())
    return _registration_message(agency, topic, registration, stream, version)


# deliberate breaks of the product, one per invariant the proxies and number changes added: the model must catch
# each (its assertion's words named), or it proves nothing of that rule
BREAKS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], Callable[[Model, Sticky], None], str]] = {
    "the page lets a registered proxy in past a holder's flag": (
        lambda mp: mp.setattr(portal_feed, "page_proxies", _registered_only),
        proxies,
        "let in past B's flag|without its approval",
    ),
    "the hub ignores a cancellation": (_cancel_ignored, proxies, "not registered for the person"),
    "the bridge does not send another agency's cancellation": (
        lambda mp: mp.setattr(linkage_proxy_registrations, "registration_message", _own_only),
        other_cancels,
        "another agency's cancellation ignored",
    ),
    "the hub ignores an unlink": (
        lambda mp: mp.setattr(links, "unlink", lambda *_: None),
        second_changes,
        "not undone",
    ),
    "the bridge sends a second change's unlink": (
        lambda mp: mp.setattr(linkage_bridge, "sends_unlink", lambda _: True),
        second_changes,
        "her third number answered automatically",
    ),
    "an erasure takes the person's flag changes with it": (_erasure_unhides, erasure, "a hidden record shown again"),
}


@pytest.mark.parametrize("broken", sorted(BREAKS))
def test_the_model_catches_a_broken_product(
    broken: str, make_node: NodeFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The perpetrator as a proxy, or asking about a protected person's newest number (see the module): with one
    rule of the product broken, the model's checks fail, naming it."""
    breaks, part, says = BREAKS[broken]
    breaks(monkeypatch)
    with pytest.raises(AssertionError, match=says):
        run(make_node, tmp_path, 1, 0, part)
