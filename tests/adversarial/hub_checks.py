"""The checks of ``test_leak_freedom_hub.py`` against the model's ground truth (``hub_model.py``) and the hub's
own sequence (``hub_sequence.py``): each card's page (and the sticky check after every hub turn), what the hub
may park, the staff mark, the consultation, exactly once, proxies let in, erasures. The module docstring of
``test_leak_freedom_hub.py`` states each rule."""

from __future__ import annotations

from collections import Counter, defaultdict
from uuid import UUID

from sqlalchemy import func, select

from consumers.linkage_receipt import NOBODY, NOBODY_SENT
from ledger.hub.links import joined
from ledger.hub.portal_feed import page_for
from ledger.hub.portal_view import intervals_of
from ledger.hub.routing import holdings
from ledger.hub.sealed_records import sealed_page
from ledger.hub.tables import (
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
from ledger.linkage.names import PORTAL
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_applied, linkage_queries
from tests.adversarial.hub_model import AGENCIES, NAR, ND, Model
from tests.adversarial.hub_sequence import INF, ever_joined, link_spans, spans


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


_MADE = ("ledger.domain.provision:ProvisionRequest.AutoProvided", "ledger.domain.provision:ProvisionRequest.Held")


class Made:
    """The provision records each provider made while the person's ``NON_DISCLOSURE`` was in force at the hub — an
    interval open in its sequence at that instant (looked at after every step: a record is made by a step of
    the provider, the hub's state unchanged by it). Never on a page, however late the record reaches the hub: the
    model's pushes and pulls turn at random, so a record leaves its provider after the release often enough (a
    record late to the hub, docs/linkage.md; the hub's arrival alone would show it)."""

    def __init__(self, m: Model) -> None:
        self.m = m
        self.seen = dict.fromkeys(AGENCIES, 0)  # each node's log read up to
        self.protected: set[str] = set()  # record ids

    def __call__(self) -> None:
        store = self.m.w.hub.store
        for agency in AGENCIES:
            node = self.m.w.nodes[agency]
            rows = node.app.recorder.select_notifications(start=self.seen[agency] + 1, limit=1000, topics=list(_MADE))
            for n in rows:
                self.seen[agency] = n.id
                request = node.app.provision_request(UUID(str(n.originator_id)))
                person = store.codes.person(agency, code_of(request.subject))
                if request.agency != agency or person is None:
                    continue  # not filed at the hub yet: the hub routed it nothing, and hides by nothing
                found = intervals_of(store.engine, persons_of(store.codes, person), joined(store.engine, person))
                if any(i.end is None for i in found):
                    self.protected.add(request.id.hex)

    def check(self) -> int:
        """Asserts no card's page shows one; returns how many were made."""
        for shown, _ in card_pages(self.m).values():
            back = self.protected & shown
            assert not back, f"a record made under non-disclosure shown on the portal: {sorted(back)}"
        return len(self.protected)


class Sticky:
    """Once hidden from a card's page, a record is never shown on it again (checked after every hub turn)."""

    def __init__(self, m: Model) -> None:
        self.m = m
        self.hidden: dict[str, set[str]] = defaultdict(set)
        self.made = Made(m)  # called after every step (hub_history.history)

    def __call__(self) -> None:
        self.made.check()
        for code, (shown, left_out) in card_pages(self.m).items():
            back = self.hidden[code] & shown
            assert not back, f"a hidden record shown again on the portal: {sorted(back)}"
            self.hidden[code] |= left_out


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
    counts["made_protected"] = sticky.made.check()
    counts |= check_proxies(m)
    for code, number in m.cards.items():
        persons = {hp[n] for n in m.joined(number)}
        assert set(persons_of(store.codes, hp[number])) == persons
        ever = ever_joined(hp[number], links, INF)  # what a wrong link joined hid stays hidden
        end = max((e for *_, e in spans(changes, ever, (ND,), INF)), default=None)
        r = hub_sealed_records.c
        with store.engine.connect() as conn:
            # where a record is hidden from: the lower of its provider's stamp and its arrival (a record late to
            # the hub, ledger.linkage.hub_seq), never above its arrival
            at = func.coalesce(r.position, r.seq).label("at")
            records = conn.execute(select(r.seq, at, r.record_id, r.contents).where(r.person.in_(persons))).all()
        assert all(x.at <= x.seq for x in records), "a record hidden from past its arrival"
        # an erased record (its contents shredded) is on no page; hidden or not, it counts for the note
        expected = {x.record_id for x in records if (end is None or x.at >= end) and x.contents}
        shown, left_out = card_pages(m)[code]
        assert shown == expected, "the portal page does not follow the hub's sequence"
        note = sealed_page(store.engine, store.codes, code).note
        assert (note is not None) == any(end is not None and x.at < end for x in records), "the note changed"
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
