"""The generator of ``test_leak_freedom_hub.py``: a history over three agency nodes in hub mode and the hub
(``tests.support.hub_nodes``, in-memory broker), with the parties' loops turning in a random order between the
acts, crashes and lost commit acknowledgements. Every act goes through the node's own application and bridge
(four eyes included), as ``tests/integration/test_agency_hub_*.py`` do; a refusal the product owes (a release
while a handover is pending, a link refused at a node, or at the hub, from a municipality that is not the
residence) is counted, never hidden.

The model keeps the ground truth the checks compare the hub with: every flag change an agency's chain executed,
which numbers are one person (the links its nodes approved; a wrong link undone parts them, a second change keeps
the first number, retired), who was asked what, which portal cards signed in, which proxies are registered and
which holders approved them, what each agency erased.

The portal's acts (cards, proxies) are in ``hub_model_portal.py``, the consultation's in
``hub_model_consultation.py``, the random history in ``hub_history.py``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from uuid import UUID

from sqlalchemy import select

from ledger.app import Actor
from ledger.errors import Code, FlagLedgerError
from ledger.hub.rosters import HubRosters
from ledger.hub.service import HubService
from ledger.hub.tables import hub_moves
from ledger.linkage.codes import hub_person, persons_of
from ledger.linkage.names import HUB
from ledger.linkage.transport import MemoryTransport, Topics
from tests.adversarial.hub_history import OPS as OPS
from tests.adversarial.hub_history import history as history
from tests.adversarial.hub_history import step as step
from tests.adversarial.hub_model_consultation import ConsultationActs
from tests.adversarial.hub_model_parties import AGENCIES as AGENCIES
from tests.adversarial.hub_model_parties import NAR as NAR
from tests.adversarial.hub_model_parties import ND as ND
from tests.adversarial.hub_model_parties import OWED as OWED
from tests.adversarial.hub_model_portal import PortalActs
from tests.support.approvals import approve_fully
from tests.support.hub_nodes import HubNodes
from tests.support.hub_world import A, B
from tests.support.people import individual_number


@dataclass
class Model(PortalActs, ConsultationActs):
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
    hub_refused: set[str] = field(default_factory=set)  # old numbers of links a node made and the hub parked
    in_flight: str = ""  # "move" / "link": one may not yet be at the hub (a link and a move are never both)
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
        if len(self.joined(old)) > 1 or old in self.retired or old in self.hub_refused or len(self.numbers_of(old)) > 1:
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
        # the hub takes a link only from the residence by the moves it filed before it (its own order, issue 21):
        # a move in flight is filed first, and the link before any later move (``move``), so the truth is known
        if self.in_flight:
            self.w.settle()
            self.in_flight = ""
        residence = self._hub_residence(old)
        try:
            app.approve_link(Actor(agency, "apr"), app.request_link(Actor(agency, "req"), old, new, "個人番号の変更"))
        except FlagLedgerError as exc:
            if exc.code not in OWED:
                raise
            self.refused[exc.code] += 1
            return False
        self.in_flight = "link"
        if residence not in (None, agency):  # its node knew no move away (recorded elsewhere): parked at the hub
            self.refused[Code.NOT_RESIDENCE] += 1
            self.hub_refused.add(old)  # linked at its node, never at the hub: not linked again here
            return False
        self.links.append((agency, old, new))
        self.made.append((agency, old, new))
        return True

    def _hub_residence(self, number: str) -> str | None:
        """Where the latest move of the person's numbers the hub filed went (None: it filed none)."""
        store = self.w.hub.store
        persons = persons_of(store.codes, hub_person(self.w.hub_keys.secret, number))
        m = hub_moves.c
        with store.engine.connect() as conn:
            row = conn.execute(select(m.to_agency).where(m.person.in_(persons)).order_by(m.seq.desc())).first()
        return None if row is None else str(row.to_agency)

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

    def move(self) -> None:
        """A municipality holding a flag on someone records their move to another; the new one may file them."""
        holdings = sorted(k for k, v in self.held.items() if v)
        if not holdings:
            return
        agency, number = self.rng.choice(holdings)
        if self.in_flight == "link":  # filed before this move, as the model judged it (``_link``)
            self.w.settle()
        self.in_flight = "move"
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
