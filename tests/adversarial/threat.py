"""The threat of DOMAIN.md as a hypothesis state machine, and the leak check run after every step.

One node hosts municipalities A–E. X (the victim) and Y (one or two perpetrators) live in A; Y may be X's
registered Mynaportal proxy and holds X's card. X flees A→B→C… (any municipality but A), numbers change,
agencies query each other in both directions (case 1: X's municipality asks A about Y; case 2: Y applies at
A and A asks X's municipality about X; case 3: X's municipality asks A about X's own earlier data), held
requests are decided, and any municipality — A included — protects (NO_AUTO_RESPONSE + NON_DISCLOSURE on X,
NON_DISCLOSURE on every Y, as the seed prescribes), renews or releases through the real approval chain
(request → approvals → designated operator). Every command is a real ``FlagLedger`` command and every view is
read through :mod:`projections.views`, the functions Mynaportal, the counter and the work queues use.

What "protection approved" covers (the scope of the invariant)
---------------------------------------------------------------
* The invariant is armed once some municipality has *executed* a protection (requested, approved by the
  chain, applied by the operator): before that the seed's leaks are the known, accepted risk.
* **Secret**: every municipality X has lived in since fleeing A. **Visitable**: every other municipality
  (A at least): Y may stand at their counters, and staff there may look at their work queues.
* **In-scope records**: every provision request about X or a Y, except those made after the last release
  while no municipality protected X any more. The product keeps every record hidden that was created before
  the end of the last NON_DISCLOSURE interval (the sticky rule), so a record made after a full release may
  legitimately show where X lives now; when protection is applied again, those records are back in scope
  (they were created before the new, open interval ends).
* The views checked, after every step: Y's own provision records (with each of Y's numbers); X's provision
  records and self-information through X's card (each of X's numbers: the card is the old one, and we also
  assume the worst, that Y got the new one) and through Y's proxy registration (active or cancelled); the
  counter view (answers, nationwide protection screen) and the work queue that staff at each visitable
  municipality can open, about X and each Y; and every querier answer of every request. None may name a
  secret municipality through an in-scope record (a self-information holding is in scope unless an
  out-of-scope answered record accounts for it); the nationwide protection screen may never name one.
* A protected person's year (moves at either end, emergency flags, the term, time passing, the child K attached
  to X's case) is mixed in from :mod:`tests.adversarial.threat_year`, with its own checks (see there).
* Also after every request: a held request's ``QuerierAnswer`` equals any other unanswered one (same
  fields, status and wording); every request about a protected person produces a ``ProbeNotice`` naming
  exactly the municipalities that hold flags on that person.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ledger.app import Actor, FlagLedger, QuerierAnswer
from ledger.errors import Code, PermissionDenied, StateConflict
from ledger.runtime.bootstrap import AgencySpec, Node
from projections import views
from projections.views_disclosure import counter_printout, disclosure_document
from tests.adversarial.threat_year import MOVE_ENDS, YearSteps
from tests.support.answers import release_decided
from tests.support.links import link
from tests.support.people import individual_number

A, B, C, D, E = "131016", "131024", "131032", "131041", "131059"
MUNICIPALITIES = (A, B, C, D, E)
AGENCIES = tuple(
    AgencySpec(code, f"{name}市", "municipality") for code, name in zip(MUNICIPALITIES, "ABCDE", strict=True)
)
TWO_APPROVALS = (B, D)  # these municipalities run a two-step approval chain
# each information kind asked under a law catalogue row that permits it to a municipality (item 74 permits only
# local-tax information; resident-register information comes under 57, 児童扶養手当: docs/bodies.md)
BASIS = {"地方税関係情報": (74, "児童手当"), "住民票関係情報": (57, "児童扶養手当")}
ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
X_FLAGS, Y_FLAGS = [NAR, ND], [ND]
PROBE_TOPIC = "ledger.domain.provision:ProbeNotice.Sent"

# fields that hold identifiers or times, never an agency code (a hex id may contain six digits by chance)
ID_FIELDS = frozenset(
    {
        "request_id",
        "subject",
        "created_at",
        "asked_at",
        "received_at",
        "requested_at",
        "sent_at",
        "since",
        "liaison",
        "body_request_id",
        "review_date",
        "at",
    }
)


def prepare_node(node: Node) -> None:
    """Staff cast at every municipality, and the longer approval chains."""
    from tests.conftest import enrol_standard_staff
    from tests.support.staff import enrol

    enrol_standard_staff(node)
    for code in set(TWO_APPROVALS) & node.app.hosted:
        node.app.set_approval_policy(Actor(code, "admin"), 2)
        enrol(node, Actor(code, "admin"), "apr3", ["approver"])  # a last holder's release: three approvals


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (field path, string) inside a view, skipping identifier and time fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            if f.name not in ID_FIELDS:
                yield from strings(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def probe_notices(app: FlagLedger, before: int) -> dict[str, list[str]]:
    """request id → holders named, for every ProbeNotice in ``app``'s log after position ``before``."""
    notices: dict[str, list[str]] = {}
    for _, _, env in app.envelopes(start=before + 1):
        if env.header.topic == PROBE_TOPIC:
            ev: Any = app.signed_mapper.decode(env)
            notices[str(ev.request_id)] = list(ev.holders)
    return notices


def named(value: Any, secret: Iterable[str]) -> list[str]:
    codes = tuple(secret)
    return [f"{p}={s!r}" for p, s in strings(value) if any(c in s for c in codes)]


@dataclass
class Request:
    rid: str
    querier: str
    provider: str
    about: str  # "X" or "Y0", "Y1"
    info_kind: str
    held: bool
    status: str = "answered"  # as the querier sees it


@dataclass
class Pending:
    kind: str  # set | release | renew
    rids: list[Any]
    approved: bool = False
    risk_named: bool = False  # an approved decision names the risk of releasing before the new residence holds


@dataclass
class Holding:
    x_number: str
    y_numbers: list[str]
    review: int  # days from today


class Leak(AssertionError):
    """A view the perpetrator can reach names where the victim lives or lived since fleeing."""


class LeakMachine(YearSteps, RuleBasedStateMachine):
    """One generated history per run; the node is shared between histories (fresh people each time)."""

    node: ClassVar[Node | None] = None
    histories: ClassVar[int] = 0
    steps: ClassVar[int] = 0
    armed_checks: ClassVar[int] = 0  # invariant checks made while protection was in scope
    protected_histories: ClassVar[int] = 0
    started: ClassVar[float] = 0.0
    restarts: ClassVar[int] = 0  # hypothesis engines restarted after FlakyStrategyDefinition (long runs)
    progress_extra: ClassVar[Callable[[], str]] = staticmethod(lambda: "")
    counter = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.setup_nodes()
        seed = int.from_bytes(os.urandom(8), "big") ^ next(LeakMachine.counter)
        self.rng = random.Random(seed)
        self.x_numbers: list[str] = []
        self.y_numbers: list[list[str]] = []
        self.proxies: list[int] = []  # perpetrators registered as X's proxy (by index)
        self.proxy_active: dict[int, bool] = {}
        self.residence = A
        self.lived: set[str] = set()
        self.requests: dict[str, Request] = {}
        self.after_release: set[str] = set()  # requests made after a full release, while unprotected
        self.ever_protected = False
        self.holdings: dict[str, Holding] = {}
        self.pending: dict[str, Pending] = {}
        self.review_day = 365
        self.counted = False
        self.init_year()
        LeakMachine.histories += 1

    # -- helpers ------------------------------------------------------------------------------------
    def setup_nodes(self) -> None:
        assert LeakMachine.node is not None, "set LeakMachine.node before running the machine"
        self.n = LeakMachine.node
        self.app = self.n.app

    def at(self, agency: str) -> FlagLedger:
        """The ledger of the node that hosts ``agency`` (one node here; a subclass spreads them)."""
        return self.app

    def before_cancel_proxy(self) -> None:
        """Hook: the multi-node model makes sure the registration reached the cancelling node."""

    def person(self) -> str:
        return individual_number(self.rng)

    def who(self, agency: str, staff: str) -> Actor:
        return Actor(agency, staff)

    @property
    def x(self) -> str:
        return self.x_numbers[-1]

    def y(self, k: int) -> str:
        return self.y_numbers[k][-1]

    @property
    def in_force(self) -> bool:
        return bool(self.holdings)

    @property
    def secret(self) -> set[str]:
        return set(self.lived)

    @property
    def visitable(self) -> list[str]:
        return [m for m in MUNICIPALITIES if m not in self.lived]

    def _step(self) -> None:
        LeakMachine.steps += 1

    # -- set-up: X and Y in A, Y possibly X's proxy ---------------------------------------------------
    @initialize(
        perpetrators=st.integers(1, 2),
        proxy=st.booleans(),
        early=st.sampled_from(["", "query", "protect"]),
        to=st.sampled_from(MUNICIPALITIES[1:]),
        child=st.booleans(),
    )
    def spouses_in_a_then_x_flees(self, perpetrators: int, proxy: bool, early: str, to: str, child: bool) -> None:
        """X and Y live in A (Y perhaps X's proxy); perhaps X has a child K with Y, Y K's registered proxy; perhaps
        A queries or protects first; X flees (with K)."""
        self.x_numbers = [self.person()]
        self.y_numbers = [[self.person()] for _ in range(perpetrators)]
        if child:
            self.k = self.person()
            self.at(A).register_proxy(self.who(A, "req"), self.k, self.y(0))
        if proxy:
            self.at(A).register_proxy(self.who(A, "req"), self.x, self.y(0))
            self.proxies.append(0)
            self.proxy_active[0] = True
        if early == "protect":
            self.protect_at_once(A, child)
        self.flee(to)
        if early == "query":
            self.case1_residence_queries_a_about_y(0)

    # -- moves and identities ---------------------------------------------------------------------------
    @rule(to=st.sampled_from(MUNICIPALITIES[1:]), end=st.sampled_from(MOVE_ENDS))
    def flee(self, to: str, end: str = "new") -> None:
        """X moves (first away from A, later on), K with her; they never go back to A, where Y lives. While they
        are protected the move is recorded at either end or reported by the registry (転出/転入, docs/year.md): a
        handover request in the new municipality's queue."""
        self._step()
        if to != self.residence:
            self.record_moves(to, end)
        self.residence = to
        self.lived.add(to)

    @precondition(lambda self: len(self.x_numbers) < 2)  # one change each: chains are refused (issue 18)
    @rule()
    def change_x_number(self) -> None:
        """X's municipality changes her individual number (the old card becomes the stolen one)."""
        self._step()
        new = self.person()
        link(self.at(self.residence), self.residence, self.x, new)
        self.x_numbers.append(new)

    @precondition(lambda self: len(self.y_numbers[0]) < 2)
    @rule()
    def change_y_number(self) -> None:
        self._step()
        new = self.person()
        link(self.at(A), A, self.y(0), new)
        self.y_numbers[0].append(new)

    @precondition(lambda self: any(self.proxy_active.values()))
    @rule()
    def cancel_proxy(self) -> None:
        """The protecting side cancels Y's proxy registration (Point 1's advice)."""
        self._step()
        self.before_cancel_proxy()
        for k, active in self.proxy_active.items():
            if active:
                self.at(self.residence).cancel_proxy(
                    self.who(self.residence, "req"), self.x_numbers[0], self.y_numbers[k][0], "intake advice"
                )
                self.proxy_active[k] = False

    # -- flags through the approval chain -----------------------------------------------------------------
    @rule(at=st.sampled_from(("residence", *MUNICIPALITIES)))
    def request_protection(self, at: str) -> None:
        """Any municipality (most often X's own) asks to protect X and Y."""
        self._step()
        at = self.residence if at == "residence" else at
        if at in self.holdings or at in self.pending:
            return
        review = self.app.clock().date() + timedelta(days=self.review_day)
        rids = [self.at(at).request_flags(self.who(at, "req"), self.x, X_FLAGS, review_date=review)]
        for k in range(len(self.y_numbers)):
            rids.append(self.at(at).request_flags(self.who(at, "req"), self.y(k), Y_FLAGS, review_date=review))
        self.pending[at] = Pending("set", rids)

    @rule(at=st.sampled_from(("residence", *MUNICIPALITIES)), child=st.booleans())
    def protect_at_once(self, at: str, child: bool = False) -> None:
        """Request, full approval chain and execution in one step (the usual path, made likely); with ``child``,
        K is attached to X's case there at once (the intake of a mother fleeing with her child)."""
        at = self.residence if at == "residence" else at
        if at in self.holdings or at in self.pending:
            return
        self.request_protection(at)
        if at in self.pending:
            self.decide_flag_request(sorted(a for a, p in self.pending.items() if not p.approved).index(at), True)
            self.execute_flag_request(sorted(a for a, p in self.pending.items() if p.approved).index(at))
        if child and self.k and at in self.holdings and at not in self.k_cases:
            self.attach_companion_at(at)

    @precondition(lambda self: bool(self.holdings))
    @rule(pick=st.integers(0, 4), release=st.booleans())
    def request_release_or_renewal(self, pick: int, release: bool) -> None:
        self._step()
        at = sorted(self.holdings)[pick % len(self.holdings)]
        held = self.holdings[at]
        if at in self.pending:
            return
        who = self.who(at, "req")
        app = self.at(at)
        if release:
            rids = [app.request_flags(who, held.x_number, X_FLAGS, kind="release", explanation="Point 6")]
            rids += [app.request_flags(who, y, Y_FLAGS, kind="release", explanation="Point 6") for y in held.y_numbers]
            self.pending[at] = Pending("release", rids)
        else:
            self.review_day += 30
            review = self.app.clock().date() + timedelta(days=self.review_day)
            rids = [app.request_flags(who, held.x_number, X_FLAGS, kind="renew", review_date=review)]
            rids += [app.request_flags(who, y, Y_FLAGS, kind="renew", review_date=review) for y in held.y_numbers]
            self.pending[at] = Pending("renew", rids)

    @precondition(lambda self: any(not p.approved for p in self.pending.values()))
    @rule(pick=st.integers(0, 4), approve=st.sampled_from([True, True, True, False]))
    def decide_flag_request(self, pick: int, approve: bool) -> None:
        """The approval chain approves (or, now and then, rejects) a pending request."""
        self._step()
        waiting = sorted(a for a, p in self.pending.items() if not p.approved)
        at = waiting[pick % len(waiting)]
        p = self.pending[at]
        if not approve:
            for rid in p.rids:
                self.at(at).reject_request(self.who(at, "apr"), rid, "not enough grounds yet")
            del self.pending[at]
            return
        for rid in p.rids:
            status = self.at(at).approve_request(self.who(at, "apr"), rid)
            if at in TWO_APPROVALS:
                assert status == "pending", "a two-step chain is not complete after one approval"
                status = self.at(at).approve_request(self.who(at, "apr2"), rid)
            if status == "pending":  # a release leaving no holder anywhere: one approval more (docs/year.md)
                assert self.at(at).flag_request(rid).kind == "release"
                self.operator_refused_while_pending(at, rid)  # never without that extra approval
                extra = "apr3" if at in TWO_APPROVALS else "apr2"
                status = self.at(at).approve_request(self.who(at, extra), rid)
            assert status == "approved"
        p.approved = True

    @precondition(lambda self: any(p.approved for p in self.pending.values()))
    @rule(pick=st.integers(0, 4))
    def execute_flag_request(self, pick: int) -> None:
        """The designated operator applies an approved request."""
        self._step()
        ready = sorted(a for a, p in self.pending.items() if p.approved)
        at = ready[pick % len(ready)]
        p = self.pending[at]
        app = self.at(at)
        short = [r for r in p.rids if p.kind == "release" and self._one_approval_short(at, app.flag_request(r))]
        if short:
            # another holder let go since this release was approved: it would now leave nobody holding with one
            # approval too few; the operator is refused (code last_holder) and nothing of the release is applied
            try:
                app.execute_request(self.who(at, "op"), short[0])
            except StateConflict as exc:
                assert exc.code == Code.LAST_HOLDER, exc
            else:
                raise AssertionError("a last holder's release with the chain's approvals only was executed")
            del self.pending[at]
            return
        if p.kind == "release" and not p.risk_named and self._handover_gap(at, app.flag_request(p.rids[0])):
            # X moved on and her new municipality does not hold yet: the old holder may not let go without an
            # approved decision naming the risk (code handover_pending); nothing of the release is applied
            try:
                app.execute_request(self.who(at, "op"), p.rids[0])
            except StateConflict as exc:
                assert exc.code == Code.HANDOVER_PENDING, exc
            else:
                raise AssertionError("a release before the new municipality holds was executed without a named risk")
            del self.pending[at]
            return
        for rid in p.rids:
            app.execute_request(self.who(at, "op"), rid)
        del self.pending[at]
        if p.kind == "set":
            if not self.in_force:
                self.after_release.clear()  # records made since the last release are hidden again
            reqs = [self.at(at).flag_request(r) for r in p.rids]
            numbers = {
                s: n for n in (*self.x_numbers, *itertools.chain(*self.y_numbers)) for s in [self.app.subject(n)]
            }
            self.holdings[at] = Holding(
                numbers[reqs[0].subject], [numbers[r.subject] for r in reqs[1:]], self.review_day
            )
            self.ever_protected = True
        elif p.kind == "release":
            del self.holdings[at]

    @precondition(lambda self: any(p.approved and p.kind == "release" for p in self.pending.values()))
    @rule(pick=st.integers(0, 4))
    def name_the_release_risk(self, pick: int) -> None:
        """The old holder's requester names the risk of letting go before the new municipality holds; an approver
        approves it (docs/year.md)."""
        self._step()
        ready = sorted(a for a, p in self.pending.items() if p.approved and p.kind == "release")
        at = ready[pick % len(ready)]
        p = self.pending[at]
        if p.risk_named:
            return
        app = self.at(at)
        x_request = app.flag_request(p.rids[0])
        did = app.propose_release_risk(self.who(at, "req"), x_request.subject, x_request.flags, "X moved on")
        app.approve_release_risk(self.who(at, "apr"), did)
        p.risk_named = True

    def _handover_gap(self, at: str, request: Any) -> bool:
        """X's latest recorded move is to a municipality other than ``at`` that does not hold these flags yet."""
        app = self.at(at)
        move = app.latest_move(request.subject)
        if move is None or move.to_agency == at:
            return False
        holders = app.holders_anywhere(request.subject)
        return not all(move.to_agency in holders.get(f, ()) for f in request.flags)

    def _one_approval_short(self, at: str, request: Any) -> bool:
        """Whether ``request`` (a release) would leave a flag with no holder anywhere yet carries only the chain's
        approvals (docs/year.md): its execution is refused."""
        app = self.at(at)
        holders = app.holders_anywhere(request.subject)
        last = any(set(holders.get(f, ())) <= {at} for f in request.flags)
        return last and request.approvals_required <= app.agency(at).approvals_required

    # -- provision requests in both directions ------------------------------------------------------------
    def _query(self, querier: str, provider: str, about: str, number: str, info_kind: str) -> None:
        before = self.app.max_position()
        item, procedure = BASIS[info_kind]
        answer = self.app.request_provision(
            self.who(querier, "counter"), provider, number, legal_item=item, procedure=procedure, info_kind=info_kind
        )
        held = self.protected(about)
        r = Request(
            answer.request_id,
            querier,
            provider,
            about,
            info_kind,
            held=held,
            status="in_progress" if held else "answered",
        )
        self.requests[r.rid] = r
        self.note_scope(r.rid, about)
        assert dataclasses.astuple(answer) == (r.rid, r.status, QUERIER_MESSAGES[r.status]), (
            f"querier answer {answer} differs from the expected {r.status} answer"
        )
        self.check_probe_notice(self.app, before, r)

    @precondition(lambda self: self.residence != A)
    @rule(k=st.integers(0, 1))
    def case1_residence_queries_a_about_y(self, k: int) -> None:
        self._step()
        k = k % len(self.y_numbers)
        self._query(self.residence, A, f"Y{k}", self.y(k), "地方税関係情報")

    @precondition(lambda self: self.residence != A)
    @rule()
    def case2_a_queries_residence_about_x(self) -> None:
        """Y applies at A for something that needs X's information; A asks where X lives now."""
        self._step()
        self._query(A, self.residence, "X", self.x, "地方税関係情報")

    @precondition(lambda self: self.residence != A)
    @rule()
    def case3_residence_queries_a_about_x(self) -> None:
        """X applies where she lives now; that municipality asks A for her data from before she fled."""
        self._step()
        self._query(self.residence, A, "X", self.x, "住民票関係情報")

    @precondition(lambda self: any(r.status == "in_progress" for r in self.requests.values()))
    @rule(pick=st.integers(0, 10), provide=st.booleans())
    def decide_held_request(self, pick: int, provide: bool) -> None:
        """The provider's reviewer proposes (after Point 5's check with the querier), an approver approves."""
        self._step()
        held = sorted(r.rid for r in self.requests.values() if r.status == "in_progress")
        r = self.requests[held[pick % len(held)]]
        decision = "provide" if provide else "refuse"
        self.at(r.provider).propose_decision(self.who(r.provider, "rev"), UUID(r.rid), decision, "known_perpetrator")
        seen = self.at(r.provider).provision_request(UUID(r.rid)).proposal_version  # what the approver is shown
        self.at(r.provider).approve_decision(self.who(r.provider, "apr"), UUID(r.rid), seen)
        assert self.at(r.provider).querier_answer(UUID(r.rid)).status == "in_progress", "not before the batch time"
        release_decided(self.at(r.provider))  # the provider's next batch time comes
        r.status = "answered" if provide else "not_provided"

    # -- the checks ----------------------------------------------------------------------------------------
    def check_probe_notice(self, app: FlagLedger, before: int, r: Request) -> None:
        """Every request about a protected person tells exactly the holding municipalities."""
        notices = probe_notices(app, before)
        holders = self.holders_of(r.about)
        if holders:
            assert r.rid in notices, f"no ProbeNotice for request {r.rid} about protected {r.about}"
            assert sorted(notices[r.rid]) == holders, (
                f"ProbeNotice about {r.about} names {notices[r.rid]}, the holders are {holders}"
            )
        else:
            assert r.rid not in notices, "a ProbeNotice about a person nobody protects"

    def _leaks(self, what: str, view: Any, allowed: set[str] | None = None) -> list[str]:
        return [f"{what}: {hit}" for hit in named(view, self.secret)]

    @invariant()
    def no_view_y_can_reach_names_where_x_lives(self) -> None:
        if not self.x_numbers or not self.ever_protected or not self.lived:
            return
        LeakMachine.armed_checks += 1
        if not self.counted:
            self.counted = True
            LeakMachine.protected_histories += 1
        found: list[str] = []
        # Y's own provision records, with each of Y's numbers
        for k, numbers in enumerate(self.y_numbers):
            for n in {numbers[0], numbers[-1]}:  # every number names the same person: first and current
                found += self.portal_leaks(f"Y{k}'s own records", views.portal_records(self.n, n, n))
        found += self.channel_leaks()
        # X's records and self-information through X's card (old and current number) and the proxy
        card_views = [(n, n) for n in {self.x_numbers[0], self.x}]
        card_views += [(self.y_numbers[k][0], self.x) for k in self.proxies]
        for viewer, subject in card_views:
            found += self.portal_leaks(f"X's records as {viewer[:4]}…", views.portal_records(self.n, viewer, subject))
            found += self.self_info_leaks(views.self_information(self.n, viewer, subject))
        for what, viewer, subject in self.companion_views():
            found += self.portal_leaks(what, views.portal_records(self.n, viewer, subject))
            found += self.self_info_leaks(views.self_information(self.n, viewer, subject), "K")
        # counters and work queues at every municipality Y can visit
        subjects = self.counter_subjects()
        # A, where Y lives and queries are made, and every other visitable municipality that holds or is
        # deciding flags (elsewhere no query is made and the protection screen names no holder at all)
        for m in [v for v in self.visitable if v == A or v in self.holdings or v in self.pending]:
            for about, number in subjects.items():
                cv = views.counter_view(self.n, self.who(m, "counter"), number)
                found += self.counter_leaks(f"{m}'s counter about {about}", cv)
            found += self.queue_leaks(m, views.work_queue(self.n, self.who(m, "counter")))
        # the querier answers
        for r in self.requests.values():
            ans = self.app.querier_answer(UUID(r.rid))
            found += self._leaks(f"querier answer {r.rid}", ans)
            assert (ans.status, ans.message) == (r.status, QUERIER_MESSAGES[r.status]), (
                f"querier answer of {r.rid}: {ans}, expected {r.status}"
            )
        if found:
            raise Leak(
                "a view the perpetrator can reach names a secret municipality "
                f"{sorted(self.secret)}:\n  " + "\n  ".join(found)
            )

    def counter_subjects(self) -> dict[str, str]:
        """Whom Y asks about at a counter: X, every Y, and K once protected."""
        subjects = {"X": self.x, **{f"Y{k}": self.y(k) for k in range(len(self.y_numbers))}}
        if self.companion_views():
            subjects["K"] = self.k
        return subjects

    @invariant()
    def flags_held_exactly_where_the_model_says(self) -> None:
        """No lapse, escalation, emergency flag or passing of time lifts or adds a flag (one node: at once)."""
        if self.x_numbers:
            self.n.projector.catch_up()
            self.check_holders(self.app, "the node")

    def portal_leaks(self, what: str, view: views.PortalView) -> list[str]:
        return [
            f"{what}, record {rec.request_id}: {hit}"
            for rec in view.records
            if self.in_scope(rec.request_id)
            for hit in named(rec, self.secret)
        ]

    def channel_leaks(self) -> list[str]:
        """Issue 21, other channels: Y's own disclosure request at A and a printout at A's counter (Y's, and X's
        asked by Y as proxy) — the portal's one filter, so the same records may be shown as on the portal."""
        found: list[str] = []
        clerk = self.who(A, "counter")
        asks = [(numbers[-1], numbers[-1], f"Y{k}") for k, numbers in enumerate(self.y_numbers)]
        asks += [(self.y_numbers[k][0], self.x, f"X (Y{k} as proxy)") for k in self.proxies]
        if self.companion_views():
            asks.append((self.y_numbers[0][0], self.k, "K (Y0 as proxy)"))
        for asker, subject, about in asks:
            for hand_out in (disclosure_document, counter_printout):
                try:
                    doc = hand_out(self.n, clerk, subject, asker)
                except PermissionDenied as exc:  # a cancelled proxy or retired card: refused, nothing shown
                    assert exc.code in (Code.NOT_ENTITLED,), exc
                    continue
                found += [
                    f"{hand_out.__name__} of {about}, record {rec.request_id}: {hit}"
                    for rec in doc.records
                    if self.in_scope(rec.request_id)
                    for hit in named(rec, self.secret)
                ]
        return found

    def self_info_leaks(self, view: views.SelfInfoView, about: str = "X") -> list[str]:
        accounted = {
            (r.provider, r.info_kind)
            for r in self.requests.values()
            if not self.in_scope(r.rid) and r.about == about and r.status == "answered"
        }
        return [
            f"{about}'s self-information: {hit}"
            for h in view.holdings
            if (h.agency, h.info_kind) not in accounted
            for hit in named(h, self.secret)
        ]

    def counter_leaks(self, what: str, cv: views.CounterView) -> list[str]:
        out = [f"{what}, protection screen: {hit}" for hit in named(cv.protection, self.secret)]
        for a in cv.answers:
            if self.in_scope(a.request_id):
                out += [f"{what}, answer {a.request_id}: {hit}" for hit in named(a, self.secret)]
            r = self.requests.get(a.request_id)
            if r is not None and r.status == "in_progress":
                assert (a.status, a.message) == ("in_progress", QuerierAnswer.IN_PROGRESS), (
                    f"{what}: a held request shows as {a.status!r} / {a.message!r}"
                )
        return out

    def queue_leaks(self, m: str, q: views.WorkQueue) -> list[str]:
        people = (*self.x_numbers, *itertools.chain(*self.y_numbers), *([self.k] if self.k else []))
        mine = {self.app.subject(n) for n in people}
        out = []
        for entry in (*q.approvals, *q.held, *q.reviews_due, *q.body_requests):
            rid = getattr(entry, "request_id", None)
            if entry.subject in mine and (rid is None or self.in_scope(rid)):
                out += [
                    f"{m}'s work queue (counter staff), {type(entry).__name__} {rid}: {hit}"
                    for hit in named(entry, self.secret)
                ]
        return out

    def teardown(self) -> None:
        """Progress of a long run, for its report (FLAGLEDGER_HISTORIES_REPORT), every 10 histories."""
        report = os.environ.get("FLAGLEDGER_HISTORIES_REPORT")
        if report and LeakMachine.histories % 10 == 0:
            with open(report + ".progress", "w") as f:
                f.write(
                    f"histories={LeakMachine.histories} with_protection_and_flight="
                    f"{LeakMachine.protected_histories} steps={LeakMachine.steps} "
                    f"armed_checks={LeakMachine.armed_checks} leaks=0 "
                    f"seconds={time.perf_counter() - LeakMachine.started:.0f} "
                    f"engine_restarts={LeakMachine.restarts} {LeakMachine.progress_extra()}\n"
                )


QUERIER_MESSAGES = {
    "answered": QuerierAnswer.ANSWERED,
    "in_progress": QuerierAnswer.IN_PROGRESS,
    "not_provided": QuerierAnswer.NOT_PROVIDED,
}
