"""The hub's side of the consultation beyond delivery: holders consulted with a deadline, their advice recorded
and relayed without naming them, escalations instead of automatic answers, and the four-eyes check of a staff
request's answer before the querier hears it. The kinds and the decision's rule: ``ledger.linkage.consultation``.

* **Consulted**: routing a query the hub marks ``staff`` writes one row per holder (``hub_consultations``) with
  a deadline, ``window`` after the hub's clock, in the routing's transaction.
* **Advice**: a holder's advice is taken only on a request it was consulted on (another agency's is answered
  like an unknown request: ``not_found``), once (a different second advice, or one after the decision:
  ``conflict``). When every holder consulted has advised, the provider gets one ``advice_relay``: the combined
  advice, naming no holder and no count.
* **Deadline**: :meth:`HubConsultations.sweep` (each step of the loop) raises an ``escalation`` to the provider
  for each request whose holders did not all advise by the deadline — once; nothing is answered.
* **The answer**: a final answer (``answered``, ``not_provided``) to a ``staff`` request comes only as a
  ``staff_answer`` whose two staff signatures the provider's roster certifies (two people), on the advice the
  hub recorded and after it came or the deadline passed. A plain answer is refused — parked
  (``staff_decision_required``) and raised to the provider's staff as an escalation — and never relayed.
* **Decide again**: a decision taken on the escalation when the last holder's advice reached the hub after it
  (and was relayed) is refused too — the late advice may say ``do_not_disclose`` — and the provider is told
  once (an ``escalation`` ``decide_again`` with the advice now relayed), which reopens the request at its node
  (``consumers.linkage_decisions.reopen``) so its staff decide again. Threat: a perpetrator waiting for an
  answer gets none made on grounds the holders overruled, and never an automatic one.

Every write runs through the sequencer (fenced by the leader lease), with the applied id of the message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, NotFoundError, PermissionDenied, StateConflict
from ledger.hub.inbox import applied_seq, mark_applied, owe
from ledger.hub.log import HubStore
from ledger.hub.tables import hub_consultations, hub_decisions, hub_escalations, hub_requests
from ledger.linkage.consultation import (
    ADVISED,
    ANSWER_REFUSED,
    DECIDE_AGAIN,
    DECIDED,
    ESCALATED,
    NO_ADVICE_BY_DEADLINE,
    AdviceMessage,
    AdviceRelay,
    Escalation,
    StaffAnswer,
    check_decision,
    combine,
)
from ledger.linkage.messages import AnswerMessage, Message
from ledger.linkage.sealing import Opened
from ledger.log.staff_roster import RosterState
from ledger.storage import storage_error

__all__ = ["WINDOW", "HubConsultations"]

WINDOW = timedelta(days=3)  # how long holders have to advise before the provider's staff are told to decide

Seal = Callable[[str, Message], tuple[str, bytes]]


def _at(moment: datetime) -> int:
    return int(moment.timestamp())


class HubConsultations:
    def __init__(
        self,
        store: HubStore,
        seal: Seal,
        now: Callable[[], datetime],
        rosters: Mapping[str, RosterState],
        window: timedelta = WINDOW,
    ) -> None:
        self.store, self.seal, self.now, self.rosters, self.window = store, seal, now, rosters, window

    # -- routing -------------------------------------------------------------------------------------------
    def consult(self, conn: Connection, request_id: str, holders: list[str]) -> None:
        """In the routing's transaction: each holder consulted, with the deadline."""
        deadline = _at(self.now() + self.window)
        for holder in holders:
            conn.execute(insert(hub_consultations).values(request_id=request_id, holder=holder, deadline=deadline))

    # -- advice --------------------------------------------------------------------------------------------
    def advice(self, opened: Opened, m: AdviceMessage) -> None:
        c = hub_consultations.c

        def write(conn: Connection, seq: int) -> None:
            given = conn.execute(
                select(c.advice).where((c.request_id == m.request_id) & (c.holder == opened.sender))
            ).first()
            if given is None:
                raise NotFoundError(f"{opened.sender} was consulted on no request {m.request_id}")
            if given.advice not in (None, m.advice):
                raise StateConflict(f"{opened.sender} advised {given.advice} on this request already")
            if self._decided(conn, m.request_id):
                raise StateConflict(f"request {m.request_id} was decided before {opened.sender}'s advice came")
            if given.advice is None:
                where = (c.request_id == m.request_id) & (c.holder == opened.sender)
                conn.execute(update(hub_consultations).where(where).values(advice=m.advice))
                advice = [a for (a,) in conn.execute(select(c.advice).where(c.request_id == m.request_id))]
                if None not in advice:  # the last holder: the provider decides on all of them, named by none
                    relay = AdviceRelay(m.request_id, combine([str(a) for a in advice]))
                    owe(conn, *self.seal(self._provider(conn, m.request_id), relay))
            mark_applied(conn, opened.sender, opened.event_id, seq)

        self._append(opened.sender, opened.event_id, write)

    # -- the deadline --------------------------------------------------------------------------------------
    def sweep(self) -> int:
        """Raise an escalation for each request whose deadline passed without every holder's advice; how
        many were raised. Nothing is answered."""
        c, e = hub_consultations.c, hub_escalations.c
        raised = select(e.request_id).where(e.reason == NO_ADVICE_BY_DEADLINE)
        due = (
            select(c.request_id)
            .where(c.advice.is_(None) & (c.deadline <= _at(self.now())) & c.request_id.not_in(raised))
            .where(c.request_id.not_in(select(hub_decisions.c.request_id)))
            .distinct()
        )
        try:
            with self.store.engine.connect() as conn:
                requests = sorted(str(r) for (r,) in conn.execute(due))
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the hub's consultations", exc) from exc
        if not requests:
            return 0

        def write(conn: Connection, seq: int) -> None:
            for request_id in requests:
                self._escalate(conn, seq, request_id, NO_ADVICE_BY_DEADLINE)

        self.store.sequencer.append(lambda conn: None, write)
        return len(requests)

    def _escalate(self, conn: Connection, seq: int, request_id: str, reason: str) -> None:
        e, c = hub_escalations.c, hub_consultations.c
        if conn.execute(select(e.seq).where((e.request_id == request_id) & (e.reason == reason))).first():
            return
        conn.execute(insert(hub_escalations).values(request_id=request_id, reason=reason, seq=seq))
        given = [str(a) for (a,) in conn.execute(select(c.advice).where(c.request_id == request_id)) if a]
        owe(conn, *self.seal(self._provider(conn, request_id), Escalation(request_id, reason, combine(given))))

    # -- the answer ----------------------------------------------------------------------------------------
    def refuse_plain(self, opened: Opened, a: AnswerMessage) -> None:
        """A plain final answer to a ``staff`` request: raised to the provider's staff (once), then refused."""
        e = hub_escalations.c
        request_id = a.request_id

        def raised(conn: Connection) -> int | None:
            found = conn.execute(
                select(e.seq).where((e.request_id == request_id) & (e.reason == ANSWER_REFUSED))
            ).scalar()
            return None if found is None else int(found)

        self.store.sequencer.append(raised, lambda conn, seq: self._escalate(conn, seq, request_id, ANSWER_REFUSED))
        raise PermissionDenied(
            f"request {request_id} was marked for a staff answer: a {a.status!r} answer needs a four-eyes "
            "decision on the holders' advice (staff_answer); raised to the provider's staff",
            code=Code.STAFF_DECISION_REQUIRED,
        )

    def staff_answer(self, opened: Opened, m: StaffAnswer) -> None:
        """Check ``m``'s decision and relay its answer to the querier; a ledger error (parked) otherwise. A
        decision taken on other advice than the hub recorded (advice came after the escalation it was taken
        on) is refused and the provider told once to decide again (``decide_again``), in its own append: the
        refused one's transaction is rolled back."""
        stale: list[str] = []  # the write names the request here when it refuses the decision as stale
        try:
            self._staff_answer(opened, m, stale)
        except PermissionDenied:
            if not stale:
                raise
            e = hub_escalations.c

            def raised(conn: Connection) -> int | None:
                where = (e.request_id == m.request_id) & (e.reason == DECIDE_AGAIN)
                found = conn.execute(select(e.seq).where(where)).scalar()
                return None if found is None else int(found)

            self.store.sequencer.append(raised, lambda conn, seq: self._escalate(conn, seq, m.request_id, DECIDE_AGAIN))
            raise

    def _staff_answer(self, opened: Opened, m: StaffAnswer, stale: list[str]) -> None:
        r, c = hub_requests.c, hub_consultations.c

        def write(conn: Connection, seq: int) -> None:
            found = conn.execute(
                select(r.provider, r.querier, r.querier_request, r.staff).where(r.request_id == m.request_id)
            ).first()
            if found is None or found.provider != opened.sender:
                raise NotFoundError(f"{opened.sender} was asked no request {m.request_id} through the hub")
            first, second = m.approvals
            check_decision(self.rosters.get(opened.sender), opened.sender, m)
            if self._decided(conn, m.request_id):
                raise StateConflict(f"request {m.request_id} was decided already")
            if found.staff:
                rows = conn.execute(select(c.advice, c.deadline).where(c.request_id == m.request_id)).all()
                expected = self._basis([(None if a is None else str(a), int(d)) for a, d in rows])
                if expected != (m.advice, m.basis):
                    if expected:
                        stale.append(m.request_id)
                    raise PermissionDenied(
                        f"the decision was taken on {m.advice!r} ({m.basis}), the hub recorded "
                        f"{expected[0]!r} ({expected[1]}): decide again on the advice recorded"
                        if expected
                        else "the holders have not all advised and the deadline has not passed",
                        code=Code.STAFF_DECISION_REQUIRED,
                    )
            row = {"status": m.status, "advice": m.advice, "basis": m.basis}
            conn.execute(
                insert(hub_decisions).values(
                    request_id=m.request_id, seq=seq, first_key=first.key_id, second_key=second.key_id, **row
                )
            )
            owe(conn, *self.seal(found.querier, m.relayed(found.querier_request)))
            mark_applied(conn, opened.sender, opened.event_id, seq)

        self._append(opened.sender, opened.event_id, write)

    def _basis(self, rows: list[tuple[str | None, int]]) -> tuple[str, str] | None:
        given = [a for a, _ in rows if a is not None]
        if len(given) == len(rows):
            return combine(given), ADVISED
        if all(deadline <= _at(self.now()) for a, deadline in rows if a is None):
            return combine(given), ESCALATED
        return None

    @staticmethod
    def needs_decision(staff: bool, status: str) -> bool:
        return staff and status in DECIDED

    # -- helpers -------------------------------------------------------------------------------------------
    def _append(self, sender: str, event_id: str, write: Callable[[Connection, int], None]) -> None:
        self.store.sequencer.append(lambda conn: applied_seq(conn, sender, event_id), write)

    @staticmethod
    def _decided(conn: Connection, request_id: str) -> bool:
        d = hub_decisions.c
        return conn.execute(select(d.seq).where(d.request_id == request_id)).first() is not None

    @staticmethod
    def _provider(conn: Connection, request_id: str) -> str:
        return str(
            conn.execute(select(hub_requests.c.provider).where(hub_requests.c.request_id == request_id)).scalar_one()
        )
