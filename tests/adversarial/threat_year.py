"""A protected person's year as rules of the leak-freedom models (issue 21, docs/year.md), mixed into
:class:`tests.adversarial.threat.LeakMachine` and so into the three-node model too.

The rules: X's move recorded at either end or reported by the residence registry (K's too, when K is
protected); an emergency (provisional) flag set alone by a designated operator on X and every Y, its
co-approval by an approver, or its escalation when a business day passes; the support-measure term applied for,
extended, lapsed (proposed and approved by two people); time passing with the year's step run on every node;
K — X's child, fleeing with her, Y's child and registered proxy at A — attached to a case at a holder through its
own approved flag request, queried about (A asks where K lives: case 2 for the child), and released (refused
exactly when K moved to a municipality that does not hold K yet and no risk was named).

What it adds to the checks (after every step; the three-node model checks the holders after each ``sync``):

* the ledger holds X's, every Y's and K's flags exactly where the model says — no term lapse, escalation,
  provisional flag or passing of time lifts one, and no history leaves K unprotected without a release of K's own;
* every query about a protected K is held (on a node that heard everything), like one about X, and its probe
  notice names exactly K's holders;
* no view Y can reach — K's records and self-information through K's card and Y's proxy registration, a
  disclosure or printout of K asked by Y as proxy, A's counter about K — names a municipality X and K lived in;
* an operator cannot execute a release that still waits for its extra (last holder) approval: refused, nothing
  recorded; a provisional flag not co-approved is escalated exactly when the next business day has come.

Threat: the perpetrator (through the child and as its guardian), an insider releasing or letting lapse alone.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from ledger import clock
from ledger.app import FlagLedger
from ledger.domain.terms import next_business_day
from ledger.errors import Code, StateConflict

MOVE_ENDS = ("new", "old", "registry")  # 転入 at the new municipality, 転出 at the old one, the registry's report
STATS: collections.Counter[str] = collections.Counter()  # what the year's rules did, for a run's report line
MAX_DAYS = 120  # a history's clock runs at most this far ahead (staff keys stay valid)


@dataclass
class Emergency:
    agency: str
    holding: Any  # the model's Holding the flag made: a co-approval counts only while it is the one in force


class YearSteps:
    """Mixed into LeakMachine: needs its ``at``, ``who``, ``holdings``, ``pending``, ``residence`` and numbers."""

    def init_year(self: Any) -> None:
        self.k = ""  # X's child K ("": X fled alone)
        self.k_held: set[str] = set()
        self.k_cases: set[str] = set()  # agencies where K was attached to X's case
        self.k_ever = False
        self.k_after_release: set[str] = set()  # requests about K made after K's full release, while unprotected
        self.emergencies: dict[UUID, Emergency] = {}  # provisional requests not co-approved yet
        self.terms: dict[str, tuple[str, str]] = {}  # agency → (X's number it was recorded with, open | lapsed)
        self.offset = timedelta(0)
        self.set_clocks()

    def apps(self: Any) -> list[FlagLedger]:
        return [self.app]

    def set_clocks(self: Any) -> None:
        off = self.offset
        for app in self.apps():
            app.clock = lambda off=off: clock.now() + off

    def protected(self: Any, about: str) -> bool:
        """Whether a query about ``about`` must be held (NO_AUTO_RESPONSE held somewhere)."""
        if about == "K":
            return bool(self.k_held)
        return about == "X" and self.in_force

    def holders_of(self: Any, about: str) -> list[str]:
        return sorted(self.k_held if about == "K" else self.holdings)

    def note_scope(self: Any, rid: str, about: str) -> None:
        """A record made after the person's full release, while nobody protects them, is out of scope."""
        if about == "K":
            if self.k_ever and not self.k_held:
                self.k_after_release.add(rid)
        elif self.ever_protected and not self.in_force:
            self.after_release.add(rid)

    def in_scope(self: Any, rid: str) -> bool:
        r = self.requests.get(rid)
        if r is not None and r.about == "K":
            return self.k_ever and rid not in self.k_after_release
        return rid not in self.after_release

    def chain(self: Any, at: str, rid: UUID) -> str:
        """Approve through ``at``'s chain (one more for a last holder's release) and execute; the refusal's code.
        While an approval is missing the operator is refused and nothing is recorded."""
        app = self.at(at)
        for staff in ("apr", "apr2", "apr3"):
            if app.approve_request(self.who(at, staff), rid) == "approved":
                break
            self.operator_refused_while_pending(at, rid)
        try:
            app.execute_request(self.who(at, "op"), rid)
        except StateConflict as exc:
            return str(exc.code)
        return ""

    def operator_refused_while_pending(self: Any, at: str, rid: UUID) -> None:
        app = self.at(at)
        before = app.max_position()
        try:
            app.execute_request(self.who(at, "op"), rid)
        except StateConflict:
            assert app.max_position() == before, "a refused execution recorded something"
            STATS["refused while pending"] += 1
        else:
            raise AssertionError(f"{at} executed a request still waiting for an approval: {app.flag_request(rid)}")

    # -- moves, at either end ---------------------------------------------------------------------------
    def record_moves(self: Any, to: str, end: str) -> None:
        """X's move (and K's, while K is protected) entered at the new or the old municipality, or reported by the
        residence registry to the new one. Each end's node records it only if it knows a flag on the person."""
        old = self.residence
        today = self.at(to).clock().date()
        people = ([self.x] if self.in_force else []) + ([self.k] if self.k and self.k_held else [])
        STATS[f"move recorded ({end} end)"] += len(people)
        for number in people:
            if end == "old":
                self.at(old).record_move(self.who(old, "req"), number, to_agency=to, moved_on=today)
            elif end == "registry":
                self.at(to).receive_residence_change(to, number, to_agency=to, from_agency=old, moved_on=today)
            else:
                self.at(to).record_move(self.who(to, "req"), number, to_agency=to, moved_on=today)

    # -- emergency flags ----------------------------------------------------------------------------------
    @precondition(lambda self: bool(self.x_numbers))
    @rule(at=st.sampled_from(("residence", "131016", "131024", "131032", "131041", "131059")))
    def emergency_flags(self: Any, at: str) -> None:
        """At night a designated operator sets NO_AUTO_RESPONSE + NON_DISCLOSURE on X and NON_DISCLOSURE on every
        Y alone, in force at once (緊急の仮設定)."""
        from tests.adversarial.threat import X_FLAGS, Y_FLAGS, Holding

        self._step()
        at = self.residence if at == "residence" else at
        if at in self.holdings or at in self.pending:
            return
        app, op = self.at(at), self.who(at, "op")
        rids = [app.set_provisional(op, self.x, X_FLAGS, explanation="夜間の緊急相談")]
        for k in range(len(self.y_numbers)):
            rids.append(app.set_provisional(op, self.y(k), Y_FLAGS, explanation="夜間の緊急相談"))
        if not self.in_force:
            self.after_release.clear()
        holding = Holding(self.x, [self.y(k) for k in range(len(self.y_numbers))], self.review_day)
        self.holdings[at] = holding
        self.ever_protected = True
        for rid in rids:
            self.emergencies[rid] = Emergency(at, holding)
        STATS["emergency"] += 1

    @precondition(lambda self: bool(self.emergencies))
    @rule(pick=st.integers(0, 9))
    def co_approve_emergency(self: Any, pick: int) -> None:
        """Another person, an approver, co-approves the emergency flag (the setter could not)."""
        self._step()
        rid = sorted(self.emergencies, key=str)[pick % len(self.emergencies)]
        e = self.emergencies.pop(rid)
        if self.holdings.get(e.agency) is not e.holding:
            return  # released since: nothing left to co-approve
        app = self.at(e.agency)
        app.co_approve_provisional(self.who(e.agency, "apr"), rid, "確認")
        STATS["co-approved"] += 1
        assert app.flag_request(rid).co_approved_by == "apr"

    # -- the support-measure term -----------------------------------------------------------------------
    @precondition(lambda self: bool(self.holdings))
    @rule(pick=st.integers(0, 4), back=st.sampled_from([0, 100, 340, 400]))
    def term_applied(self: Any, pick: int, back: int) -> None:
        """X's application (申出) at a holder, made ``back`` days ago (400: the term is overdue already)."""
        self._step()
        at = sorted(self.holdings)[pick % len(self.holdings)]
        if at in self.terms:
            return
        app = self.at(at)
        app.record_application(self.who(at, "req"), self.x, app.clock().date() - timedelta(days=back))
        self.terms[at] = (self.x, "open")
        STATS["term"] += 1

    @precondition(lambda self: any(state == "open" for _, state in self.terms.values()))
    @rule(pick=st.integers(0, 4), lapse=st.booleans())
    def term_extended_or_lapsed(self: Any, pick: int, lapse: bool) -> None:
        """X asks for an extension (延長申出), or the term lapses: proposed by a requester, approved by an approver.
        Neither touches a flag."""
        self._step()
        open_ = sorted(a for a, (_, state) in self.terms.items() if state == "open")
        at = open_[pick % len(open_)]
        number, _ = self.terms[at]
        app = self.at(at)
        if lapse:
            app.propose_lapse(self.who(at, "req"), number, "延長申出なし")
            app.approve_lapse(self.who(at, "apr"), number)
            self.terms[at] = (number, "lapsed")
            STATS["lapsed"] += 1
            assert not app.term(at, number).open
        else:
            ends = app.request_extension(self.who(at, "req"), number, app.clock().date())
            assert ends > app.clock().date().isoformat()
            STATS["extended"] += 1

    @precondition(lambda self: bool(self.x_numbers) and self.offset < timedelta(days=MAX_DAYS))
    @rule(days=st.sampled_from([0, 1, 3, 8, 31]), hours=st.integers(0, 23))
    def time_passes(self: Any, days: int, hours: int) -> None:
        """The clock moves on and the year's step runs on every node: reminders, escalations, overdue terms."""
        self._step()
        self.offset += timedelta(days=days, hours=hours)
        self.set_clocks()
        started = self.app.clock()
        for app in self.apps():
            app.year_step()
        ended = self.app.clock()
        for rid, e in self.emergencies.items():
            if self.holdings.get(e.agency) is not e.holding:
                continue
            app = self.at(e.agency)
            request = app.flag_request(rid)
            created = request.created_on
            deadline = next_business_day(created if created.tzinfo else created.replace(tzinfo=UTC))
            # the clock runs on while the step runs: a deadline falling inside it allows either outcome
            due = started >= deadline
            allowed = [["administrator"] if due else []] if due == (ended >= deadline) else [[], ["administrator"]]
            assert request.escalated_to in allowed, (
                f"emergency flag {rid} at {e.agency}: escalated to {request.escalated_to}, due {due}"
            )
            assert request.status == "executed", "an emergency flag was lifted by the clock"
            STATS["escalated" if due else "not yet due"] += 1

    # -- the companion K ----------------------------------------------------------------------------------
    @precondition(lambda self: bool(self.k) and any(a not in self.k_cases for a in self.holdings))
    @rule(pick=st.integers(0, 4))
    def attach_companion(self: Any, pick: int) -> None:
        """A holder opens X's case and proposes K on it; the request is approved and executed: K holds X's flags
        there."""

        self._step()
        ready = sorted(a for a in self.holdings if a not in self.k_cases)
        self.attach_companion_at(ready[pick % len(ready)])

    def attach_companion_at(self: Any, at: str) -> None:
        from tests.adversarial.threat import X_FLAGS

        app, held = self.at(at), self.holdings[at]
        case = app.open_case(self.who(at, "req"), held.x_number, perpetrators=[held.y_numbers[0]])
        rid = app.propose_companion(self.who(at, "req"), case, self.k)
        assert sorted(app.flag_request(rid).flags) == sorted(X_FLAGS)
        assert self.chain(at, rid) == ""
        self.k_cases.add(at)
        if not self.k_held:
            self.k_after_release.clear()
        self.k_held.add(at)
        self.k_ever = True
        STATS["companion attached"] += 1
        if self.residence != "131016":
            self.a_asks_where_the_child_lives()  # at once: Y is quick to apply for the child

    @precondition(lambda self: bool(self.k_held))
    @rule(pick=st.integers(0, 4), risk=st.booleans())
    def release_companion(self: Any, pick: int, risk: bool) -> None:
        """A holder releases K's flags (a companion's are released by their own request): refused exactly when K
        moved to a municipality not holding K yet, unless a decision naming the risk was approved."""
        from tests.adversarial.threat import X_FLAGS

        self._step()
        at = sorted(self.k_held)[pick % len(self.k_held)]
        app = self.at(at)
        rid = app.request_flags(self.who(at, "req"), self.k, X_FLAGS, kind="release", explanation="説明済み")
        request = app.flag_request(rid)
        holders = app.holders_anywhere(request.subject)
        last = any(set(holders.get(f, ())) <= {at} for f in request.flags)
        chain = app.agency(at).approvals_required
        assert request.approvals_required == chain + last, (
            f"K's release at {at} (last holder: {last}) carries {request.approvals_required} approvals, chain {chain}"
        )
        gap = self._handover_gap(at, request)
        if gap and risk:
            did = app.propose_release_risk(self.who(at, "req"), request.subject, request.flags, "K moved on")
            app.approve_release_risk(self.who(at, "apr"), did)
        refused = self.chain(at, rid)
        expected = Code.HANDOVER_PENDING if gap and not risk else ""
        assert refused == expected, f"K's release at {at}: refused {refused!r}, expected {expected!r}"
        STATS[f"companion release {'refused' if refused else 'done'}{' (risk named)' if gap and risk else ''}"] += 1
        if not refused:
            self.k_held.discard(at)

    @precondition(lambda self: bool(self.k) and self.residence != "131016")
    @rule()
    def a_asks_where_the_child_lives(self: Any) -> None:
        """Y applies at A for the child; A asks K's municipality (case 2, for a companion)."""
        self._step()
        self._query("131016", self.residence, "K", self.k, "地方税関係情報")
        STATS[f"query about K, held {self.protected('K')}"] += 1

    # -- checks ---------------------------------------------------------------------------------------------
    def check_holders(self: Any, app: FlagLedger, where: str) -> None:
        """``app``'s nationwide state names exactly the model's holders of X's, every Y's and K's flags."""
        from tests.adversarial.threat import NAR, ND

        people = [(self.x, "X", [NAR, ND], self.holdings)]
        people += [(self.y(k), f"Y{k}", [ND], self.holdings) for k in range(len(self.y_numbers))]
        if self.k:
            people.append((self.k, "K", [NAR, ND], self.k_held))
        for number, about, flags, holders in people:
            state = app.holders_anywhere(app.subject(number))
            for flag in flags:
                assert sorted(state.get(flag, [])) == sorted(holders), (
                    f"{where}: {about}'s {flag} held by {state.get(flag)}, the model says {sorted(holders)}"
                )

    def companion_views(self: Any) -> list[tuple[str, str, str]]:
        """(what, viewer, subject) of every portal view of K that Y reaches: K's card, and Y as K's proxy."""
        if not self.k or not self.k_ever:
            return []
        return [("K's records by card", self.k, self.k), ("K's records as Y0 (proxy)", self.y_numbers[0][0], self.k)]


def year_line() -> str:
    """The year's rules in a run's report line (a run that exercised none of them proves nothing about them)."""
    return "year: " + ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()))
