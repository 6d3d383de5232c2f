"""The generator of ``test_leak_freedom_hub.py``: a history over three agency nodes in hub mode and the hub
(``tests.support.hub_nodes``, in-memory broker), with the parties' loops turning in a random order between the
acts, crashes and lost commit acknowledgements. Every act goes through the node's own application and bridge
(four eyes included), as ``tests/integration/test_agency_hub_*.py`` do; a refusal the product owes (a release
while a handover is pending, a link refused at a node that is not the residence) is counted, never hidden.

The model keeps the ground truth the checks compare the hub with: every flag change an agency's chain executed,
which numbers are one person (the links its nodes approved; a wrong link undone parts them, a second change keeps
the first number, retired), who was asked what, which portal cards signed in, which proxies are registered and
which holders approved them, what each agency erased.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from uuid import UUID

from sqlalchemy import select

from consumers import linkage_decisions as decisions
from consumers.linkage_receipt import NOBODY, NOBODY_SENT
from ledger.app import Actor
from ledger.app.answers import run_batches
from ledger.errors import Code, FlagLedgerError
from ledger.hub.consultations import WINDOW
from ledger.hub.rosters import HubRosters
from ledger.hub.service import HubService
from ledger.linkage.codes import Registration, portal_code
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import seal
from ledger.linkage.transport import MemoryTransport, Topics
from ledger.runtime.tables import linkage_routed
from tests.support.approvals import approve_fully
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
AGENCIES = (A, B, C)
# refusals the product owes a random history; anything else raised is a failure of the test
OWED = {Code.HANDOVER_PENDING, Code.NOT_RESIDENCE}


@dataclass
class Model:
    w: HubNodes
    rng: random.Random
    person: dict[str, int] = field(default_factory=dict)  # number → the person it names (ground truth)
    chain: dict[int, list[str]] = field(default_factory=dict)  # person → their numbers, oldest first
    held: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (agency, number) → flags it holds
    ever_held: set[tuple[str, str]] = field(default_factory=set)
    changes: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)  # (agency, number, flag, action)
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (agency, old, new): the links in force
    made: list[tuple[str, str, str]] = field(default_factory=list)  # every link made, undone or not
    unlinks: list[tuple[str, str, str, bool]] = field(default_factory=list)  # (agency, old, new, second change)
    parted: set[str] = field(default_factory=set)  # numbers of a person a wrong link's undo parted
    retired: set[str] = field(default_factory=set)  # first numbers a second change retired for good
    proxies: dict[tuple[str, str], str] = field(default_factory=dict)  # (number, proxy) → registering agency
    approvals: dict[tuple[str, str, str], UUID] = field(default_factory=dict)  # (holder, number, proxy) in force
    erased: list[tuple[str, str]] = field(default_factory=list)  # (agency, number) its administrators erased
    asked: dict[str, tuple[str, str]] = field(default_factory=dict)  # querier's request id → (querier, number)
    decided: set[str] = field(default_factory=set)  # providers' local request ids decided by two staff
    cards: dict[str, str] = field(default_factory=dict)  # portal code → number signed in with
    proxy_cards: dict[str, str] = field(default_factory=dict)  # the same, of proxies signed in as proxies
    advised: dict[tuple[str, str], str] = field(default_factory=dict)  # (holder, hub request) → advice
    refused: Counter[str] = field(default_factory=Counter)  # refusals the product owed, by code
    day: int = 0

    # -- people ------------------------------------------------------------------------------------------------
    def new_person(self) -> str:
        number = individual_number(self.rng)
        pid = len(self.chain)
        self.chain[pid], self.person[number] = [number], pid
        self.w.bridges[A].file_person(number)
        return number

    def numbers_of(self, number: str) -> list[str]:
        """The person's numbers, the truth: a second change keeps the retired one (it is still her)."""
        return self.chain[self.person[number]]

    def joined(self, number: str) -> set[str]:
        """The numbers the links in force join to ``number`` (what the hub joins, once it has them all)."""
        found, grew = {number}, True
        while grew:
            grew = False
            for _, o, n in self.links:
                if (o in found) != (n in found):
                    found |= {o, n}
                    grew = True
        return found

    def any_number(self) -> str:
        return self.rng.choice(sorted(self.person)) if self.person else self.new_person()

    # -- acts, each through the agency's own four eyes -----------------------------------------------------------
    def _chain(self, agency: str, number: str, flags: list[str], kind: str = "set", case: UUID | None = None) -> bool:
        app = self.w.nodes[agency].app
        try:
            rid = app.request_flags(
                Actor(agency, "req"), number, flags, kind=kind, case_id=case, explanation="model: at the counter"
            )
            approve_fully(app, agency, rid)
            app.execute_request(Actor(agency, "op"), rid)
        except FlagLedgerError as exc:
            if exc.code not in OWED:
                raise
            self.refused[exc.code] += 1
            return False
        self._executed(agency, number, flags, kind)
        return True

    def _executed(self, agency: str, number: str, flags: list[str], kind: str) -> None:
        key = (agency, number)
        for flag in flags:
            self.changes[agency, number, flag, "set" if kind == "set" else "release"] += 1
        if kind == "set":
            self.held.setdefault(key, set()).update(flags)
            self.ever_held.add(key)
        else:
            self.held[key] -= set(flags)

    def protect(self, agency: str, number: str) -> None:
        flags = [
            f for f in ([ND, NAR] if self.rng.random() < 0.3 else [ND]) if f not in self.held.get((agency, number), ())
        ]
        if flags:
            self._chain(agency, number, flags)

    def release(self, agency: str, number: str) -> bool:
        flags = sorted(self.held.get((agency, number), ()))
        return bool(flags) and self._chain(agency, number, flags, kind="release")

    def companion(self) -> None:
        """B opens a case for a victim, protects her on it, and lists her child with the same flags."""
        victim, child = self.new_person(), individual_number(self.rng)
        b = self.w.nodes[B].app
        case = b.open_case(Actor(B, "req"), victim, perpetrators=[individual_number(self.rng)])
        self._chain(B, victim, [ND, NAR], case=case)
        rid = b.propose_companion(Actor(B, "req"), case, child)
        b.approve_request(Actor(B, "apr"), rid)
        b.execute_request(Actor(B, "op"), rid)
        self.chain[len(self.chain)] = [child]
        self.person[child] = len(self.chain) - 1
        self._executed(B, child, [ND, NAR], "set")

    def link(self, agency: str, old: str) -> str | None:
        """``agency`` records the person's number change (four eyes) to a new number — once per person: a second
        change goes through the first link's maker (``renumber``)."""
        if len(self.joined(old)) > 1 or old in self.retired or len(self.numbers_of(old)) > 1:
            return None
        new = individual_number(self.rng)
        if not self._link(agency, old, new):
            return None
        pid = self.person[old]
        self.chain[pid].append(new)
        self.person[new] = pid
        return new

    def _link(self, agency: str, old: str, new: str) -> bool:
        app = self.w.nodes[agency].app
        try:
            app.approve_link(Actor(agency, "apr"), app.request_link(Actor(agency, "req"), old, new, "個人番号の変更"))
        except FlagLedgerError as exc:
            if exc.code not in OWED:
                raise
            self.refused[exc.code] += 1
            return False
        self.links.append((agency, old, new))
        self.made.append((agency, old, new))
        return True

    def _unlink(self, agency: str, old: str, new: str, second: bool) -> None:
        app = self.w.nodes[agency].app
        why = "二度目の個人番号の変更" if second else "誤った紐付け"
        app.approve_link(Actor(agency, "apr"), app.request_unlink(Actor(agency, "req"), old, why, second_change=second))
        self.unlinks.append((agency, old, new, second))
        if not second:  # a second change's link stays at the hub: the chain keeps every protection on every number
            self.links.remove((agency, old, new))
            self.parted |= set(self.numbers_of(old)) | set(self.numbers_of(new))

    def unlink(self, old: str | None = None) -> None:
        """The maker of a link undoes it as wrong (four eyes; ``old``: the link from this number): the new number
        is somebody else's from now on."""
        undoable = [(a, o, n) for a, o, n in self.links if o not in self.retired and old in (None, o)]
        if not undoable:
            return
        agency, old, new = self.rng.choice(undoable)
        self._unlink(agency, old, new, second=False)
        numbers = self.chain[self.person[old]]
        moved = numbers[numbers.index(new) :]
        del numbers[numbers.index(new) :]
        self.chain[len(self.chain)] = moved
        for n in moved:
            self.person[n] = len(self.chain) - 1

    def renumber(self, old: str | None = None) -> str | None:
        """The person's number changes a second time: the first link's maker undoes it as a second change
        (every protection kept, the first number retired) and links the second number to a third (``old``: the
        link from this number)."""
        undoable = [(a, o, n) for a, o, n in self.links if o not in self.retired and old in (None, o)]
        latest = [(a, o, n) for a, o, n in undoable if self.numbers_of(n)[-1] == n]
        if not latest:
            return None
        agency, old, new = self.rng.choice(latest)
        self._unlink(agency, old, new, second=True)
        self.retired.add(old)
        newer = individual_number(self.rng)
        if not self._link(agency, new, newer):
            return None
        self.chain[self.person[new]].append(newer)
        self.person[newer] = self.person[new]
        return newer

    def erase(self, agency: str, number: str) -> None:
        """``agency``'s two administrators erase the person (issue 22): the hub shreds the records ``agency`` sent
        it about them, across their numbers; nothing else changes."""
        app = self.w.nodes[agency].app
        request = app.request_erasure(Actor(agency, "admin"), number, "model: the retention period ended")
        app.approve_erasure(Actor(agency, "admin2"), request)
        self.erased.append((agency, number))

    # -- Mynaportal proxies ----------------------------------------------------------------------------------------
    def register_proxy(self, agency: str, number: str) -> str | None:
        """``agency``'s counter registers a proxy (a new person, who signs in at the portal with their own card)
        for the person — the hub takes it only from a holder while a flag applies (parked otherwise)."""
        proxy = individual_number(self.rng)
        self.w.nodes[agency].app.register_proxy(Actor(agency, "req"), number, proxy)
        self.chain[len(self.chain)] = [proxy]  # a person too (who may be asked about, protected, …)
        self.person[proxy] = len(self.chain) - 1
        self.proxies[number, proxy] = agency
        self.sign_in(proxy, proxy=True)
        return proxy

    def cancel_proxy(self, pair: tuple[str, str] | None = None, by: str | None = None) -> bool:
        """A registered proxy (``pair``: this one) cancelled by the agency that registered it, or by another
        (``by``; at random sometimes): a holder of the person, or a peer, whose node refuses it (``wrong_agency``)
        unless it holds a flag on the person's number now — taken, its bridge sends it and the hub cancels the
        registration wherever it was made. Whether it was taken."""
        if not self.proxies:
            return False
        (number, proxy), agency = (pair, self.proxies[pair]) if pair else self.rng.choice(sorted(self.proxies.items()))
        if by is None and self.rng.random() < 0.3:
            by = self.rng.choice(AGENCIES)  # a peer, or the registering agency itself
        who = by or agency
        try:
            self.w.nodes[who].app.cancel_proxy(Actor(who, "req"), number, proxy, "model: cancelled")
        except FlagLedgerError as exc:
            if exc.code != Code.WRONG_AGENCY or who == agency:
                raise
            assert not self.held.get((who, number)), "a holder's node refused its cancellation"
            self.refused["proxy_cancel_wrong_agency"] += 1
            return False
        assert who == agency or self.held.get((who, number)), "a peer's node took another agency's cancellation"
        del self.proxies[number, proxy]
        return True

    def approve_proxy(self, holder: str, number: str, proxy: str) -> bool:
        """``holder``'s requester proposes and its approver approves the proxy (each signing with their own
        staff key); refused by the holder's node unless it holds a flag on the person now."""
        app = self.w.nodes[holder].app
        try:
            aid = app.propose_proxy_approval(Actor(holder, "req"), number, proxy, "model: the person asked")
            app.approve_proxy_approval(Actor(holder, "apr"), aid)
        except FlagLedgerError as exc:
            if exc.code not in (Code.WRONG_AGENCY, Code.CONFLICT):
                raise
            self.refused[f"proxy_{exc.code}"] += 1
            return False
        self.approvals[holder, number, proxy] = aid
        return True

    def withdraw_proxy(self, key: tuple[str, str, str] | None = None) -> None:
        """A holder's two people withdraw an approval in force (``key``: this one)."""
        if self.approvals:
            (holder, number, proxy), aid = (
                (key, self.approvals[key]) if key else self.rng.choice(sorted(self.approvals.items()))
            )
            app = self.w.nodes[holder].app
            app.propose_proxy_withdrawal(Actor(holder, "req"), aid, "model: consent withdrawn")
            app.withdraw_proxy_approval(Actor(holder, "apr"), aid)
            del self.approvals[holder, number, proxy]

    def proxy_act(self) -> None:
        """One of: register a proxy, approve one as a holder, withdraw an approval, cancel a registration (by the
        registering agency, a peer, or another holder of the person)."""
        others = [
            (k, h) for k, a in sorted(self.proxies.items()) for h in AGENCIES if h != a and self.held.get((h, k[0]))
        ]
        if others and self.rng.random() < 0.4:  # another holder of the person: rare in a history, so sought out
            self.cancel_proxy(*self.rng.choice(others))
            return
        roll = self.rng.random()
        if roll < 0.35 or not self.proxies:
            holdings = sorted(k for k, v in self.held.items() if v)
            if holdings and self.rng.random() < 0.6:  # a holder registers (the usual case while protected)
                self.register_proxy(*self.rng.choice(holdings))
            else:
                self.register_proxy(self.rng.choice(AGENCIES), self.any_number())
        elif roll < 0.7:
            number, proxy = self.rng.choice(sorted(self.proxies))
            holders = sorted(a for a in AGENCIES if self.held.get((a, number)))
            self.approve_proxy(self.rng.choice(holders or list(AGENCIES)), number, proxy)
        elif roll < 0.85:
            self.withdraw_proxy()
        else:
            self.cancel_proxy()

    def move(self) -> None:
        """A municipality holding a flag on someone records their move to another; the new one may file them."""
        holdings = sorted(k for k, v in self.held.items() if v)
        if not holdings:
            return
        agency, number = self.rng.choice(holdings)
        to = self.rng.choice([x for x in AGENCIES if x != agency])
        self.day += 1
        moved = date(2026, 1, 1) + timedelta(days=self.day)
        app = self.w.nodes[agency].app
        recorded = app.record_move(Actor(agency, "req"), number, to_agency=to, moved_on=moved) is not None
        if recorded and self.rng.random() < 0.5:
            self.w.bridges[to].file_person(self.rng.choice(self.numbers_of(number)))

    def take_over(self, agency: str) -> None:
        """``agency`` sets, with its own four eyes, the flags each handover asks of it."""
        app = self.w.nodes[agency].app
        by_subject = {app.subject(n): n for n in sorted(self.person)}
        for asked in app.handovers_for(agency):
            number = by_subject.get(asked["subject"])
            if number is not None:
                self._chain(agency, number, [f for f in asked["flags_to_take_over"] if f in (ND, NAR)] or [ND])

    def ask(self, number: str, querier: str = C, provider: str = A) -> str:
        """``querier``'s counter asks ``provider`` about the person (whose node has filed them: a resident)."""
        self.w.bridges[provider].file_person(number)
        rid = self.w.bridges[querier].ask(
            Actor(querier, "counter"), provider, number, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO
        )
        self.asked[rid] = (querier, number)
        return rid

    def sign_in(self, number: str, proxy: bool = False) -> None:
        """Someone signs in at the portal with the card of ``number``: the portal registers its code for it at
        the hub, as ``ledger.portal.service.sign_in`` owes it (the portal's loop sends it). ``proxy``: a proxy
        with their own card, to read another's page (their own page is not checked: it costs every hub turn)."""
        keys = self.w.portal_keys
        assert keys is not None
        code = portal_code(keys.secret, number)
        if code not in self.cards and code not in self.proxy_cards:
            payload = Registration(PORTAL, code, number).encode()
            hub_key = self.w.hub.directory.sealing_key(HUB)
            sealed = seal(keys.signer, hub_key, HUB, uuid.uuid4().hex, "registration", payload)
            MemoryTransport(self.w.broker, PORTAL).send(HUB, sealed)
            (self.proxy_cards if proxy else self.cards)[code] = number

    # -- the consultation --------------------------------------------------------------------------------------
    def advise(self, holder: str, every: bool = False) -> None:
        """``holder``'s reviewer advises on some of its consultations (``every``: all)."""
        node = self.w.nodes[holder]
        for c in self.w.bridges[holder].consultations():
            key = (holder, str(c["request_id"]))
            if key not in self.advised and (every or self.rng.random() < 0.7):
                self.advised[key] = self.rng.choice(("do_not_disclose", "may_disclose"))
                decisions.advise(node.app, node.engine, Actor(holder, "rev"), key[1], self.advised[key])

    def decide(self, provider: str = A, local: str | None = None) -> None:
        """The provider's reviewer and approver decide one held routed request the holders advised on (or that
        escalated, or that the hub reopened; ``local``: that one), each signing with their own staff key; its
        batch releases it."""
        a = self.w.nodes[provider]
        ready = [c for c in decisions.cases(a.engine) if c["basis"] and c["answered"] not in (NOBODY, NOBODY_SENT)]
        ready = [c for c in ready if c["request_id"] and local in (None, c["request_id"])]
        # held: not decided yet, or reopened (the hub refused a decision taken before late advice: decide again)
        ready = [c for c in ready if a.app.provision_request(UUID(c["request_id"])).status == "held"]
        if not ready:
            return
        case = self.rng.choice(ready)
        local = UUID(case["request_id"])
        decision = self.rng.choice(("provide", "refuse"))
        decisions.propose(a.app, a.engine, Actor(provider, "rev"), local, decision, "unknown")
        version = a.app.provision_request(local).proposal_version
        assert version is not None
        decisions.approve(a.app, a.engine, Actor(provider, "apr"), local, version)
        self.decided.add(case["request_id"])
        run_batches(a.app, a.app.clock() + timedelta(days=2))

    def deadline(self) -> None:
        """The hub's clock passes the consultation's window: silent holders are escalated, never answered."""
        later = self.w.hub.now() + WINDOW + timedelta(minutes=1)
        self.w.hub.now = lambda: later

    # -- processes -----------------------------------------------------------------------------------------------
    def restart_hub(self) -> None:
        """The hub's loop replaced: a new process on the same database (its rosters read from there), resuming
        from the committed offset."""
        old = self.w.hub
        self.w.hub = HubService(
            old.store,
            MemoryTransport(self.w.broker, HUB),
            old.keys,
            old.directory,
            old.now,
            rosters=HubRosters(old.store.engine),
        )

    def lose_acks(self) -> None:
        """A random inbox's committed position set back (the broker lost the acknowledgement), its reader
        restarted."""
        party = self.rng.choice([HUB, *AGENCIES])
        inbox = Topics().inbox(party)
        self.w.broker.committed[inbox] = self.rng.randint(0, self.w.broker.committed.get(inbox, 0))
        self.restart_hub() if party == HUB else self.w.bridge(party)

    def routed_at(self, provider: str) -> dict[str, tuple[str, str]]:
        """The provider's routed requests: the hub's id → (its local request id, how it was answered)."""
        with self.w.nodes[provider].engine.connect() as conn:
            lr = linkage_routed.c
            rows = conn.execute(select(lr.hub_request_id, lr.local_request_id, lr.answered))
            return {str(r.hub_request_id): (str(r.local_request_id), str(r.answered)) for r in rows}


OPS = (
    ("new", 3), ("protect", 4), ("release", 4), ("ask", 7), ("link", 2), ("move", 3), ("take_over", 3),
    ("companion", 1), ("file", 2), ("card", 2), ("advise", 3), ("decide", 4), ("deadline", 1),
    ("push", 6), ("hub", 8), ("pull", 6), ("crash", 2), ("ack", 2),
    ("unlink", 1), ("renumber", 1), ("proxy", 3),
)  # fmt: skip


def step(m: Model, op: str) -> None:
    """One act or one turn of a party's loop."""
    rng, w = m.rng, m.w
    if op == "new" or not m.person:
        m.new_person()
    elif op == "protect":
        m.protect(rng.choice((B, B, C, A)), m.any_number())
    elif op == "release":
        held = sorted(k for k, v in m.held.items() if v)
        if held:
            m.release(*rng.choice(held))
    elif op == "ask":
        querier, provider = rng.choice(((C, A), (C, A), (B, A), (A, C), (C, B)))
        m.ask(m.any_number(), querier, provider)
    elif op == "link":
        m.link(rng.choice(AGENCIES), m.any_number())
    elif op == "unlink":
        m.unlink()
    elif op == "renumber":
        m.renumber()
    elif op == "proxy":
        m.proxy_act()
    elif op == "move":
        m.move()
    elif op == "take_over":
        m.take_over(rng.choice(AGENCIES))
    elif op == "companion":
        m.companion()
    elif op == "file":
        w.bridges[rng.choice(AGENCIES)].file_person(m.any_number())
    elif op == "card":
        m.sign_in(m.any_number())
    elif op == "advise":
        m.advise(rng.choice(AGENCIES))
    elif op == "decide":
        m.decide(rng.choice(AGENCIES))
    elif op == "deadline":
        m.deadline()
    elif op == "push":
        w.bridges[rng.choice(AGENCIES)].push()
    elif op == "hub":
        w.hub.step(timeout_ms=0, max_records=rng.randint(1, 5))
    elif op == "pull":
        w.bridges[rng.choice(AGENCIES)].pull(timeout_ms=0)
    elif op == "crash":
        party = rng.choice((HUB, *AGENCIES))
        m.restart_hub() if party == HUB else w.bridge(party)
    else:
        m.lose_acks()


def history(m: Model, steps: int, after_each_hub_step: object = None) -> None:
    names, weights = zip(*OPS, strict=True)
    for _ in range(steps):
        op = m.rng.choices(names, weights)[0]
        step(m, op)
        if op in ("hub", "crash", "ack") and callable(after_each_hub_step):
            after_each_hub_step()
