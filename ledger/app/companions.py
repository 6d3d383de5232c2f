"""Companions and perpetrators on a case (issue 21, docs/year.md).

* **Companions (同伴者)**: a child who fled with the victim is proposed on the victim's case with a flag request
  on the child — the victim's flags held here, or the ones named. That request is the approval of the
  attachment: approved by another person, executed by an operator, signed as every flag change, and checked by
  every peer like any other. Executing it attaches the companion (``ProtectionCase.CompanionAttached``, saved
  with it). The child is then protected by flags of their own, so a query about them is held like the
  victim's, their portal hidden, their move a handover. A later set or renewal on the victim with the case
  named opens the same request on each attached companion, signed by the same requester.
* **Perpetrators**: naming a perpetrator on a case puts a NON_DISCLOSURE prompt in the year queue (a query by
  another agency about them must not show its querier on their portal: the seed's case 1) until a request for it
  is open or the flag held here; ``request_perpetrator_flags`` opens those requests, signed by the requester.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from ledger.app.credentials import StaffProof, WebAuthnProof
from ledger.app.values import Actor
from ledger.app.year import YearCommands
from ledger.domain.base import LedgerAggregate
from ledger.domain.cases import CompanionRelation, ProtectionCase
from ledger.domain.flags import FlagRequest
from ledger.domain.staff_acts import REQUESTED, act_statement, note_digest
from ledger.domain.types import Action, Flag, Reason, RequestKind, RequestStatus, parse_enum
from ledger.errors import InputError

__all__ = ["CompanionCommands"]

Proof = StaffProof | WebAuthnProof
ND = Flag.NON_DISCLOSURE.value
_COVERING = (RequestKind.SET.value, RequestKind.RENEW.value)
PERPETRATORS, COMPANIONS = "perpetrators", "companions"  # the year queue's two prompts on a case


class CompanionCommands(YearCommands):
    """Companions attached through the flag chain; perpetrators prompted for NON_DISCLOSURE."""

    # -- companions -------------------------------------------------------------------------------------
    def propose_companion(
        self,
        actor: Actor,
        case_id: UUID,
        companion: str,
        *,
        relation: str = CompanionRelation.CHILD.value,
        flags: Sequence[str] = (),
        explanation: str = "",
        proof: Proof | None = None,
        request_id: UUID | None = None,
    ) -> UUID:
        """List ``companion`` on the case with a flag request on them (``flags``, or every flag the victim holds
        here); returns the request's id. Nothing protects the child until the request is approved and executed.
        Signed by the requester's unlocked key, or by ``proof`` made over :meth:`companion_statement` for
        ``request_id`` (the console's security key)."""
        self.authorise(actor, Action.OPEN_CASE)
        case, subj, wanted, note = self._companion_terms(actor, case_id, companion, relation, flags, explanation)
        rid = request_id if proof is not None and request_id is not None else uuid4()
        terms = self._request_terms(actor, subj, wanted, RequestKind.SET.value, case.reason, None, case.id, note, None)
        kind, _, fl, review, required, digest = terms(rid)
        statement = act_statement(actor.agency, REQUESTED, str(rid), digest, actor.staff, note_digest(""))
        request = FlagRequest(
            id=rid,
            agency=actor.agency,
            kind=kind.value,
            subject=subj,
            flags=fl,
            reason=case.reason,
            review_date=review,
            requested_by=actor.staff,
            approvals_required=required,
            case_id=case.id,
            explanation=note,
            body_request_id=None,
            staff_signature=self.sign_act(actor, statement, proof),
        )
        case.propose_companion(subj, relation, rid, actor.staff)
        # one batch: the companion is never listed without its request, nor the request saved without the listing
        self.save_as(actor.agency, request, case, *self._on_request(actor, request))
        return rid

    def _companion_terms(
        self, actor: Actor, case_id: UUID, companion: str, relation: str, flags: Sequence[str], explanation: str
    ) -> tuple[ProtectionCase, str, list[str], str]:
        parse_enum(CompanionRelation, relation, "relation")
        case = self._own(self.case(case_id), actor, "case")
        subj = self.subject(companion)
        case.check_new_companion(subj)
        wanted = list(flags) or self._victim_flags_here(actor.agency, case)
        if not wanted:
            raise InputError(
                "the victim holds no flag here yet: name the companion's flags (--flag), or protect the victim first",
                field="flags",
            )
        return case, subj, wanted, explanation.strip() or f"同伴者 ({relation}) of the case's victim"

    def companion_statement(
        self,
        actor: Actor,
        request_id: UUID,
        case_id: UUID,
        companion: str,
        *,
        relation: str = CompanionRelation.CHILD.value,
        flags: Sequence[str] = (),
        explanation: str = "",
    ) -> bytes:
        """What the requester signs to propose ``companion`` with request ``request_id`` (checked as
        :meth:`propose_companion` checks it)."""
        self.authorise(actor, Action.OPEN_CASE)
        case, subj, wanted, note = self._companion_terms(actor, case_id, companion, relation, flags, explanation)
        return self.request_statement(
            actor, request_id, subj, wanted, reason=case.reason, case_id=case.id, explanation=note
        )

    def _victim_flags_here(self, agency: str, case: ProtectionCase) -> list[str]:
        return sorted(f for f, who in self.holders_anywhere(case.victim).items() if agency in who)

    def companions(self, actor: Actor, case_id: UUID) -> list[dict[str, Any]]:
        self.permit(actor, Action.OPEN_CASE)
        case = self._own(self.case(case_id), actor, "case")
        return [{"subject": s, **c} for s, c in sorted(case.companions.items())]

    def open_cases(self, actor: Actor) -> list[dict[str, Any]]:
        """This agency's open cases (the console's intake page lists them): victim, perpetrators, companions."""
        self.permit(actor, Action.OPEN_CASE)
        return [
            {"case_id": str(c.id), "victim": c.victim, "perpetrators": list(c.perpetrators), "reason": c.reason,
             "companions": [{"subject": s, **v} for s, v in sorted(c.companions.items())]}
            for c in self._year_items(ProtectionCase, "Opened", "case", actor.agency)
            if c.open
        ]  # fmt: skip

    def request_flags(
        self,
        actor: Actor,
        subject: str,
        flags: Sequence[str],
        *,
        kind: str = RequestKind.SET.value,
        reason: str = Reason.DV.value,
        review_date: date | None = None,
        case_id: UUID | None = None,
        explanation: str = "",
        body_request_id: UUID | None = None,
        proof: Proof | None = None,
        request_id: UUID | None = None,
    ) -> UUID:
        """As :meth:`FlagCommands.request_flags`; a set or renewal on a case's victim also opens the same request
        on each attached companion (signed with the requester's key; with a security-key ``proof`` the
        companions' requests wait in the year queue instead, as one proof signs one request)."""
        rid = super().request_flags(
            actor,
            subject,
            flags,
            kind=kind,
            reason=reason,
            review_date=review_date,
            case_id=case_id,
            explanation=explanation,
            body_request_id=body_request_id,
            proof=proof,
            request_id=request_id,
        )
        if case_id is None or kind not in _COVERING or proof is not None:
            return rid
        case = self.case(case_id)
        if case.victim != self.subject(subject):
            return rid
        for child in case.attached_companions:
            held = self._held_here(actor, child)
            # a set asks for what the child lacks; a renewal renews what the child holds here
            missing = [f for f in flags if (f in held) == (kind == RequestKind.RENEW.value)]
            if missing:
                super().request_flags(
                    actor,
                    child,
                    missing,
                    kind=kind,
                    reason=reason,
                    review_date=review_date,
                    case_id=case_id,
                    explanation=f"同伴者: with request {rid}",
                )
        return rid

    def _held_here(self, actor: Actor, subject: str) -> set[str]:
        return {f for f, who in self.holders_anywhere(subject).items() if actor.agency in who}

    def _before_execute(self, actor: Actor, request: FlagRequest) -> list[LedgerAggregate]:
        extra = super()._before_execute(actor, request)
        if request.case_id is None or request.kind != RequestKind.SET.value:
            return extra
        case = self.case(request.case_id)
        if case.companion_of(request.id) == request.subject:
            case.attach_companion(request.subject, request.id, actor.staff)
            extra.append(case)
        return extra

    # -- perpetrators -----------------------------------------------------------------------------------
    def _pending(self, agency: str) -> dict[str, set[str]]:
        """Subject → flags of this agency's set requests still waiting (pending or approved)."""
        out: dict[str, set[str]] = {}
        for r in self._year_items(FlagRequest, "Requested", "waiting_set", agency):
            waiting = r.status in (RequestStatus.PENDING.value, RequestStatus.APPROVED.value)
            if r.kind == RequestKind.SET.value and waiting:
                out.setdefault(r.subject, set()).update(r.flags)
        return out

    def perpetrator_prompts(self, agency: str) -> list[dict[str, Any]]:
        """Perpetrators named on this agency's open cases with no NON_DISCLOSURE held or requested here."""
        pending = self._pending(agency)
        out: list[dict[str, Any]] = []
        for case in self._year_items(ProtectionCase, "Opened", "case", agency):
            if not case.open:
                continue
            for q in case.perpetrators:
                held = agency in self.holders_anywhere(q).get(ND, [])
                if not held and ND not in pending.get(q, set()):
                    out.append({"case_id": str(case.id), "subject": q, "flags_to_request": [ND]})
        return out

    def companion_prompts(self, agency: str) -> list[dict[str, Any]]:
        """Attached companions lacking a flag the victim holds here, with no request for it open here."""
        pending = self._pending(agency)
        out: list[dict[str, Any]] = []
        for case in self._year_items(ProtectionCase, "Opened", "case", agency):
            if not case.open:
                continue
            victim = {f for f, who in self.holders_anywhere(case.victim).items() if agency in who}
            for child in case.attached_companions:
                held = {f for f, who in self.holders_anywhere(child).items() if agency in who}
                missing = sorted(victim - held - pending.get(child, set()))
                if missing:
                    out.append({"case_id": str(case.id), "subject": child, "flags_to_request": missing})
        return out

    def request_perpetrator_flags(self, actor: Actor, case_id: UUID, explanation: str = "") -> list[UUID]:
        """Open a NON_DISCLOSURE request on each perpetrator of the case the year queue prompts for."""
        return [
            self.request_flags(
                actor, p["subject"], p["flags"], reason=p["reason"], case_id=case_id, explanation=p["explanation"]
            )
            for p in self.case_prompts(actor, case_id, PERPETRATORS, explanation)
        ]

    def case_prompts(self, actor: Actor, case_id: UUID, which: str, explanation: str = "") -> list[dict[str, Any]]:
        """The requests the year queue prompts for on one of this agency's cases, each as it is to be requested
        (``subject``, ``flags``, ``reason``, ``explanation``): NON_DISCLOSURE on each perpetrator
        (``perpetrators``) or what each attached companion lacks of the victim's flags (``companions``). One
        entry is one request, signed on its own (the console asks a security key once for each)."""
        case = self._own(self.case(case_id), actor, "case")
        if which == PERPETRATORS:
            found = self.perpetrator_prompts(actor.agency)
            reason, note = Reason.DV.value, explanation.strip() or "加害者: 照会記録の不開示 (seed case 1)"
        elif which == COMPANIONS:
            found, reason, note = self.companion_prompts(actor.agency), case.reason, explanation.strip()
        else:
            raise InputError("unknown prompt: perpetrators or companions", field="which")
        return [
            {"subject": p["subject"], "flags": p["flags_to_request"], "reason": reason, "explanation": note}
            for p in found
            if p["case_id"] == str(case.id)
        ]

    def year_queue(self, actor: Actor) -> dict[str, Any]:
        out = super().year_queue(actor)
        pending = self._pending(actor.agency)
        for h in out["handovers"]:  # a takeover already asked for through this agency's chain (the console's button)
            h["requested"] = set(h["flags_to_take_over"]) <= pending.get(h["subject"], set())
        out["perpetrators"] = self.perpetrator_prompts(actor.agency)
        out["companions"] = self.companion_prompts(actor.agency)
        return out
