"""The fixed epilogue of ``test_leak_freedom_hub.py``: each rule played once on new people after the random
history (so every seed proves each), in parts a deliberate break of the product can run alone; and ``settle``,
every party's loop until nothing moves."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from ledger.app import Actor
from ledger.hub.portal_feed import page_for
from ledger.hub.sealed_records import sealed_page
from ledger.hub.tables import hub_requests
from ledger.linkage.codes import portal_code
from tests.adversarial.hub_checks import Sticky, card_pages, check_proxies
from tests.adversarial.hub_model import AGENCIES, ND, Model
from tests.support.hub_world import A, B, C


def settle(m: Model, sticky: Sticky, without: tuple[str, ...] = (), cut: tuple[str, ...] = ()) -> None:
    """Every party's loop until nothing moves (``without``: these agencies' bridges do not turn; ``cut``: these
    read the hub's messages and send nothing, what they send waits)."""
    for _ in range(60):
        moved = False
        for code in AGENCIES:
            if code not in without and code not in cut:
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
        sticky.made()  # the records made in these pulls (the hub's state unchanged since its step)
        if not moved:
            return


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
    former_residence(m, sticky)
    erasure(m, sticky)
    late_record(m, sticky)


def late_record(m: Model, sticky: Sticky) -> None:
    """A record late to the hub (docs/linkage.md): B protects V; C's query about V is held at A, which makes its
    record cut off from sending (it still reads the hub); B releases; A reconnects, and its record reaches the hub
    after the release — made under protection, it stays hidden (``Made``; the hub's arrival alone would show
    it)."""
    v = m.new_person()
    m.sign_in(v)
    m.w.bridges[A].file_person(v)
    settle(m, sticky)
    assert m._chain(B, v, [ND])
    settle(m, sticky)
    m.ask(v)
    settle(m, sticky, cut=(A,))  # routed to A, held there, its record made: not sent
    assert m.release(B, v)
    settle(m, sticky, cut=(A,))
    settle(m, sticky)  # A reconnected
    [code] = [c for c, n in m.cards.items() if n == v]
    shown, left_out = card_pages(m)[code]
    assert not shown and len(left_out) == 1, "the record made under protection, late to the hub, is hidden"


def former_residence(m: Model, sticky: Sticky) -> None:
    """V, protected by B and C, moves B → C, recorded only at C (転入) and filed at the hub; B's node, which never
    heard of it, approves a link of V's number: the hub parks it (issue 21), the numbers stay two people."""
    v = m.new_person()
    assert m._chain(B, v, [ND]) and m._chain(C, v, [ND])
    assert m.w.nodes[C].app.record_move(Actor(C, "req"), v, to_agency=C, from_agency=B, moved_on=date(2027, 2, 1))
    m.in_flight = "move"
    settle(m, sticky)
    refused = m.refused["not_residence"]
    assert m.link(B, v) is None and m.refused["not_residence"] == refused + 1
    settle(m, sticky)


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
