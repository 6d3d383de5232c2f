"""A protected person's year (issue 21, docs/year.md): the support-measure term with its reminders, escalations
and approved lapse; emergency (provisional) flags; the clock-driven step that records what is due; the queue of
what waits for an agency's staff. Moves and handover: :mod:`ledger.app.handover`.

Nothing here lifts a flag: the step records reminders and escalations for people; only a release request, with
its own approvals, ends a holding.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from ledger.app.credentials import StaffProof, WebAuthnProof
from ledger.app.handover import HandoverCommands
from ledger.app.values import Actor
from ledger.domain.flags import FlagRequest, Protection
from ledger.domain.staff_acts import (
    APPROVED,
    EXECUTED,
    REQUESTED,
    act_statement,
    details_digest,
    note_digest,
    request_digest,
)
from ledger.domain.terms import ADMINISTRATOR, APPROVER, SupportTerm, next_business_day, one_year_after
from ledger.domain.types import Action, Flag, Reason, RequestKind, calendar_day, parse_enum
from ledger.errors import InputError, NotFoundError, PermissionDenied, StateConflict

Proof = StaffProof | WebAuthnProof


class YearCommands(HandoverCommands):
    """Support-measure terms, emergency flags, the year's step and queue."""

    # -- the support-measure term (申出, 延長申出, lapse) ----------------------------------------------------
    def term(self, agency: str, subject: str) -> SupportTerm | None:
        if not self.ids.hosts(agency):
            raise NotFoundError("only the terms of agencies hosted here are found by person")
        return self.find(SupportTerm, self.ids.term(agency, self.subject(subject)))

    def _own_term(self, actor: Actor, subject: str) -> SupportTerm:
        term = self.term(actor.agency, subject)
        if term is None:
            raise NotFoundError(f"agency {actor.agency} has recorded no support-measure application for this person")
        return term

    def record_application(self, actor: Actor, subject: str, applied_on: date) -> UUID:
        """The person's 申出 at this municipality: the term runs one year from ``applied_on``."""
        self.authorise(actor, Action.REQUEST_FLAG)
        calendar_day(applied_on, "applied_on")
        if applied_on > self.clock().date():
            raise InputError("the application date cannot be in the future", field="applied_on")
        subj = self.subject(subject)
        if self.find(SupportTerm, self.ids.term(actor.agency, subj)) is not None:
            raise StateConflict("a term is already recorded for this person here: record an extension request")
        term = SupportTerm(
            id=self.ids.term(actor.agency, subj),
            agency=actor.agency,
            subject=subj,
            applied_on=applied_on.isoformat(),
            ends_on=one_year_after(applied_on).isoformat(),
            recorded_by=actor.staff,
        )
        self.save_as(actor.agency, term)
        return term.id

    def request_extension(self, actor: Actor, subject: str, requested_on: date) -> str:
        """The person's 延長申出, recorded as its own event; the term's new end is returned. Renewing the flags'
        review date is a renew request through the chain, as before."""
        self.authorise(actor, Action.REQUEST_FLAG)
        calendar_day(requested_on, "requested_on")
        term = self._own_term(actor, subject)
        term.request_extension(requested_on.isoformat(), actor.staff)
        self.save_as(actor.agency, term)
        return term.ends_on

    def propose_lapse(self, actor: Actor, subject: str, note: str) -> None:
        self.authorise(actor, Action.REQUEST_FLAG)
        if not note.strip():
            raise InputError("say why the term lapses (no extension request, the person's own wish, …)", field="note")
        term = self._own_term(actor, subject)
        term.propose_lapse(actor.staff, note)
        self.save_as(actor.agency, term)

    def approve_lapse(self, actor: Actor, subject: str, note: str = "") -> None:
        """The lapse as an approved event. It lifts no flag: releasing is a release request of its own."""
        self.authorise(actor, Action.APPROVE_FLAG)
        term = self._own_term(actor, subject)
        term.approve_lapse(actor.staff, note)
        self.save_as(actor.agency, term)

    # -- emergency (provisional) flags ------------------------------------------------------------------------
    def set_provisional(
        self,
        actor: Actor,
        subject: str,
        flags: Sequence[str],
        *,
        reason: str = Reason.DV.value,
        explanation: str = "",
        proof: Proof | None = None,
    ) -> UUID:
        """A designated person (``set_provisional``) sets flags alone, in force at once, signed and recorded as
        provisional; another person co-approves within a business day, or the step escalates. Never lifted
        automatically."""
        self.authorise(actor, Action.SET_PROVISIONAL)
        parse_enum(Reason, reason, "reason")
        fl = sorted({parse_enum(Flag, f, "flag").value for f in flags})
        if not fl:
            raise InputError("name at least one flag (NON_DISCLOSURE, NO_AUTO_RESPONSE)")
        if not explanation.strip():
            raise InputError("say why it cannot wait for the approval chain", field="explanation")
        subj = self.subject(subject)
        pid = self.ids.protection(actor.agency, subj)
        protection = self.find(Protection, pid) or Protection(id=pid, agency=actor.agency, subject=subj)
        already = [f for f in fl if protection.active(f)]
        if already:
            raise StateConflict(f"{', '.join(already)} already set by {actor.agency}")
        rid = uuid4()
        review = (self.clock().date() + timedelta(days=365)).isoformat()
        details = details_digest(reason, explanation, None, None)
        digest = request_digest(actor.agency, str(rid), RequestKind.SET.value, subj, fl, review, 0, details)
        request = FlagRequest(
            id=rid,
            agency=actor.agency,
            kind=RequestKind.SET.value,
            subject=subj,
            flags=fl,
            reason=reason,
            review_date=review,
            requested_by=actor.staff,
            approvals_required=0,
            case_id=None,
            explanation=explanation,
            body_request_id=None,
            staff_signature=self.sign_act(actor, self._statement(actor, rid, digest, REQUESTED), proof),
            provisional=True,
        )
        request.execute_provisional(actor.staff, self.sign_act(actor, self._statement(actor, rid, digest, EXECUTED)))
        self._check_signed(request, final=True)
        protection.set_flags(fl, rid, actor.staff, reason, review, request.evidence())
        self.save_as(actor.agency, request, protection)
        return rid

    def _statement(self, actor: Actor, rid: UUID, digest: str, act: str, note: str = "") -> bytes:
        return act_statement(actor.agency, act, str(rid), digest, actor.staff, note_digest(note))

    def co_approve_provisional(
        self, actor: Actor, request_id: UUID, note: str = "", *, proof: Proof | None = None
    ) -> None:
        """Signed by the approver's unlocked key, or ``proof`` over ``act_statement_for(…, APPROVED, note)``."""
        self.authorise(actor, Action.APPROVE_FLAG)
        request = self._own(self.flag_request(request_id), actor, "flag request")
        statement = self._statement(actor, request.id, request.digest(), APPROVED, note)
        request.co_approve(actor.staff, note, self.sign_act(actor, statement, proof))
        self.save_as(actor.agency, request)

    # -- the clock's step ------------------------------------------------------------------------------------
    def year_step(self, agency: str | None = None) -> list[dict[str, str]]:
        """Record what the clock says is due for the hosted agencies (or ``agency``): term reminders at 30 and 7
        days, overdue escalations (approver, then administrator), emergency flags not co-approved within a
        business day (to the administrator). Each once; run by the node loop and `flagledger year step`."""
        now = self.clock()
        today = now.date()
        hosted = {agency} if agency else set(self.hosted)
        done: list[dict[str, str]] = []
        for term in self._year_items(SupportTerm, "Applied", "term"):
            if term.agency not in hosted:
                continue
            due = term.due(today)
            for what, value in due:
                if what == "reminder":
                    term.remind(value, today.isoformat())
                else:
                    term.escalate(value, today.isoformat())
                done.append({"agency": term.agency, "subject": term.subject, "what": what, "value": value})
            if due:
                self.save_as(term.agency, term)
        for request in self._year_items(FlagRequest, "Requested", "provisional"):
            if request.agency not in hosted or not request.provisional or request.co_approved_by is not None:
                continue
            if request.escalated_to or request.status != "executed":
                continue
            if now >= next_business_day(_aware(request.created_on)):
                request.escalate(ADMINISTRATOR, today.isoformat())
                self.save_as(request.agency, request)
                done.append(
                    {
                        "agency": request.agency,
                        "subject": request.subject,
                        "what": "provisional_overdue",
                        "value": ADMINISTRATOR,
                    }
                )
        return done

    # -- the year's queue -----------------------------------------------------------------------------------
    def year_queue(self, actor: Actor) -> dict[str, Any]:
        """What waits for ``actor``'s agency this year: handovers to take over, releases that would leave no
        holder (on people it holds), term reminders and escalations (approver level for approvers and
        requesters, administrator level for administrators), emergency flags awaiting co-approval."""
        roles = set(self._active_member(actor).roles)
        if not roles & {"requester", "approver", "operator", "administrator"}:
            raise PermissionDenied(f"{actor} has no part in protection decisions at {actor.agency}")
        a = actor.agency
        levels = {APPROVER} if roles & {"requester", "approver", "operator"} else set()
        if "administrator" in roles:
            levels.add(ADMINISTRATOR)
        terms: list[dict[str, Any]] = []
        for term in self._year_items(SupportTerm, "Applied", "term", a):
            if not term.open:
                continue
            escalated = [e.split("/")[1] for e in term.escalated if e.startswith(term.ends_on + "/")]
            reminded = [r.split("/")[1] for r in term.reminded if r.startswith(term.ends_on + "/")]
            if (escalated and set(escalated) & levels) or (reminded and levels - {ADMINISTRATOR}):
                terms.append(
                    {
                        "term_id": str(term.id),
                        "subject": term.subject,
                        "ends_on": term.ends_on,
                        "reminded": reminded,
                        "escalated_to": escalated,
                        "lapse_proposed": term.lapse_proposed_by is not None,
                    }
                )
        provisional = [
            {
                "request_id": str(r.id),
                "subject": r.subject,
                "flags": r.flags,
                "set_by": r.requested_by,
                "escalated_to": list(r.escalated_to),
            }
            for r in self._year_items(FlagRequest, "Requested", "provisional", a)
            if r.provisional and r.co_approved_by is None and r.status == "executed"
        ]
        return {
            "agency": a,
            "handovers": self.handovers_for(a),
            "last_holder_warnings": self.last_holder_warnings(a),
            "moves_refused": self.moves_refused(a),  # hub mode: no handover under way for these
            "terms": terms,
            "provisional": provisional,
        }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


__all__ = ["YearCommands"]
