"""Leak-freedom for a companion: generated histories of X fleeing with her child K from A, where Y — the
perpetrator, K's parent and K's registered proxy — lives (issue 21, docs/year.md "Companions, guardians").

Each history mixes: moves (recorded at the new municipality while K is protected, a handover request), cases
opened anywhere with or without K attached through its own approved flag request, later attachment, a guardian
bar on Y, the perpetrator's NON_DISCLOSURE request from the year queue's prompt, releases of K's flags (refused
before the new municipality holds, exactly when the model predicts it), and queries about K (A asks where K
lives: case 2 for the child) and about Y (where X lives asks A: case 1). After every step:

* the ledger holds K's flags exactly where the model says it does — no history leaves an attached companion
  unprotected without an approved release of K's own;
* every query about K made while K is protected was held;
* no view Y can reach (K's records and self-information through the proxy, Y's own records) names a municipality
  X and K lived in since fleeing, through a record made while K (or, for Y's records, Y) was protected;
* while a bar is in force and K is protected, Y's proxy access to K is refused.

Threat: the perpetrator (as the children's guardian and proxy, and through a query's querier on their own portal).
"""

from __future__ import annotations

import collections
import os
import random
from collections.abc import Iterator
from typing import ClassVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.app import Actor
from ledger.errors import Code, StateConflict
from ledger.runtime.bootstrap import Node, init_node
from projections import views
from tests.adversarial.threat import AGENCIES, MUNICIPALITIES, X_FLAGS, named, prepare_node
from tests.support.people import individual_number

A = MUNICIPALITIES[0]
STATS: collections.Counter[str] = collections.Counter()  # what the histories did (printed with -s)
HISTORIES = int(os.environ.get("FLAGLEDGER_COMPANION_HISTORIES", "25"))  # about 10 s


class CompanionMachine(RuleBasedStateMachine):
    node: ClassVar[Node | None] = None

    def __init__(self) -> None:
        super().__init__()
        assert CompanionMachine.node is not None
        self.n = CompanionMachine.node
        self.app = self.n.app
        self.rng = random.Random(int.from_bytes(os.urandom(8), "big"))
        self.x = self.k = self.y = ""
        self.residence = A
        self.lived: set[str] = set()
        self.cases: dict[str, UUID] = {}  # agency → the case opened there
        self.proposed: set[str] = set()  # agencies whose case lists K
        self.k_held: set[str] = set()  # agencies holding K's flags, as the model says
        self.k_moved_to: str | None = None  # the latest move of K recorded (only while K was protected)
        self.y_nd: set[str] = set()
        self.bar = False
        self.protected_when_made: dict[str, bool] = {}  # request id → its subject was protected when it was made

    def act(self, agency: str, staff: str) -> Actor:
        return Actor(agency, staff)

    def chain(self, agency: str, rid: UUID) -> str:
        """Approve (the agency's chain, one more for a last holder's release) and execute; the refusal's code."""
        for who in ("apr", "apr2", "apr3"):
            if self.app.approve_request(self.act(agency, who), rid) == "approved":
                break
        try:
            self.app.execute_request(self.act(agency, "op"), rid)
        except StateConflict as exc:
            return str(exc.code)
        return ""

    # -- set-up and moves -------------------------------------------------------------------------------
    @initialize(to=st.sampled_from(MUNICIPALITIES[1:]), protect=st.booleans(), child=st.booleans())
    def family_in_a_then_flight(self, to: str, protect: bool, child: bool) -> None:
        """X, K and Y in A (Y K's proxy); X flees with K; perhaps the new municipality protects at once."""
        rng = self.rng
        self.x, self.k, self.y = individual_number(rng), individual_number(rng), individual_number(rng)
        self.app.register_proxy(self.act(A, "req"), self.k, self.y)  # Y, K's parent, is K's proxy
        self.flee(to)
        if protect:
            self.protect_x("residence", child)

    @rule(to=st.sampled_from(MUNICIPALITIES[1:]))
    def flee(self, to: str) -> None:
        if to == self.residence:
            return
        self.residence = to
        self.lived.add(to)
        today = self.app.clock().date()
        self.app.record_move(self.act(to, "req"), self.x, to_agency=to, moved_on=today)
        if self.app.record_move(self.act(to, "req"), self.k, to_agency=to, moved_on=today) is not None:
            self.k_moved_to = to

    # -- protection -------------------------------------------------------------------------------------
    @rule(at=st.sampled_from(("residence", *MUNICIPALITIES[1:])), child=st.booleans())
    def protect_x(self, at: str, child: bool) -> None:
        at = self.residence if at == "residence" else at
        STATS["protect"] += 1
        if at in self.cases:
            return
        case = self.app.open_case(self.act(at, "req"), self.x, perpetrators=[self.y])
        self.cases[at] = case
        assert self.chain(at, self.app.request_flags(self.act(at, "req"), self.x, X_FLAGS, case_id=case)) == ""
        if child:
            self.attach_child_at(at)

    def attach_child_at(self, at: str) -> None:
        rid = self.app.propose_companion(self.act(at, "req"), self.cases[at], self.k)
        self.proposed.add(at)
        assert self.chain(at, rid) == ""
        self.k_held.add(at)
        STATS["attached"] += 1
        assert self.app.case(self.cases[at]).attached_companions == [self.app.subject(self.k)]
        if self.residence != A:
            self.a_asks_where_the_child_lives()  # at once: held, whoever else holds or not

    @precondition(lambda self: any(a not in self.proposed for a in self.cases))
    @rule(pick=st.integers(0, 4))
    def attach_child(self, pick: int) -> None:
        open_ = sorted(a for a in self.cases if a not in self.proposed)
        self.attach_child_at(open_[pick % len(open_)])

    @precondition(lambda self: bool(self.cases))
    @rule(pick=st.integers(0, 4))
    def cover_the_perpetrator(self, pick: int) -> None:
        """The year queue prompts NON_DISCLOSURE on Y; the requester opens it, the chain sets it."""
        at = sorted(self.cases)[pick % len(self.cases)]
        prompted = [
            p for p in self.app.year_queue(self.act(at, "req"))["perpetrators"] if p["case_id"] == str(self.cases[at])
        ]
        assert bool(prompted) == (at not in self.y_nd)
        for rid in self.app.request_perpetrator_flags(self.act(at, "req"), self.cases[at]):
            assert self.chain(at, rid) == ""
            self.y_nd.add(at)
            STATS["perpetrator covered"] += 1

    @precondition(lambda self: bool(self.k_held) and not self.bar)
    @rule()
    def bar_the_guardian(self) -> None:
        at = sorted(self.k_held)[0]
        bar = self.app.propose_guardian_bar(self.act(at, "req"), self.k, self.y, "parent")
        self.app.approve_guardian_bar(self.act(at, "apr"), bar)
        self.bar = True
        STATS["barred"] += 1

    @precondition(lambda self: bool(self.k_held))
    @rule(pick=st.integers(0, 4))
    def release_the_child(self, pick: int) -> None:
        at = sorted(self.k_held)[pick % len(self.k_held)]
        rid = self.app.request_flags(self.act(at, "req"), self.k, X_FLAGS, kind="release", explanation="説明済み")
        gap = self.k_moved_to is not None and self.k_moved_to != at and self.k_moved_to not in self.k_held
        refused = self.chain(at, rid)
        assert refused == (Code.HANDOVER_PENDING if gap else ""), f"release at {at}: {refused!r}, gap {gap}"
        STATS["release refused" if refused else "released"] += 1
        if not refused:
            self.k_held.discard(at)

    # -- queries ----------------------------------------------------------------------------------------
    def query(self, querier: str, provider: str, number: str, protected: bool) -> None:
        answer = self.app.request_provision(
            self.act(querier, "counter"),
            provider,
            number,
            legal_item=74,
            procedure="児童手当",
            info_kind="地方税関係情報",
        )
        self.protected_when_made[answer.request_id] = protected
        STATS[f"query about {'K' if number == self.k else 'Y'}, protected {protected}"] += 1
        if number == self.k:
            assert answer.status == ("in_progress" if protected else "answered"), f"a query about K: {answer.status}"

    @precondition(lambda self: self.residence != A)
    @rule()
    def a_asks_where_the_child_lives(self) -> None:
        """Y applies at A for the child; A asks K's municipality (case 2, for a companion)."""
        self.query(A, self.residence, self.k, bool(self.k_held))

    @precondition(lambda self: self.residence != A)
    @rule()
    def residence_asks_a_about_y(self) -> None:
        """X applies where she lives; it asks A about Y (case 1)."""
        self.query(self.residence, A, self.y, bool(self.y_nd))

    # -- the checks ---------------------------------------------------------------------------------------
    @invariant()
    def k_is_held_exactly_where_the_model_says(self) -> None:
        if not self.k:
            return
        holders = self.app.holders_anywhere(self.app.subject(self.k))
        assert {a for who in holders.values() for a in who} == self.k_held, f"K held by {holders}"

    @invariant()
    def nothing_y_can_reach_names_where_they_live(self) -> None:
        if not self.k:
            return
        found: list[str] = []
        as_proxy = views.portal_records(self.n, self.y, self.k)
        if self.bar and self.k_held:
            assert as_proxy == views.PortalView("none", ()), "a barred guardian reached K's records"
        for what, view in (
            ("K's records as Y", as_proxy),
            ("Y's own records", views.portal_records(self.n, self.y, self.y)),
        ):
            for rec in view.records:
                if self.protected_when_made.get(rec.request_id, False):
                    found += [f"{what}, {rec.request_id}: {hit}" for hit in named(rec, self.lived)]
        if self.k_held:
            found += [
                f"K's self-information as Y: {hit}"
                for hit in named(views.self_information(self.n, self.y, self.k), self.lived)
            ]
        assert not found, "\n".join(found)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    made = init_node(tmp_path_factory.mktemp("companions") / "node", AGENCIES)
    prepare_node(made)
    CompanionMachine.node = made
    yield made
    CompanionMachine.node = None
    made.close()


def test_no_generated_history_leaves_a_companion_answerable_or_reachable_by_the_guardian(node: Node) -> None:
    """Threat: the perpetrator (K's parent and proxy). See the module docstring for what each step checks."""
    run_state_machine_as_test(
        CompanionMachine,
        settings=settings(
            max_examples=HISTORIES,
            stateful_step_count=16,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    print(f"companion histories: {HISTORIES}, {dict(STATS)}")
