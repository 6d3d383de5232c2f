"""Commands on protection: intake of a case (Point 1), flag requests, approval and execution (Points 2, 6,
7), and requests from protection bodies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

from ledger.app.credentials import CredentialCommands, StaffProof, WebAuthnProof
from ledger.app.values import Actor
from ledger.domain.base import LedgerAggregate
from ledger.domain.cases import CHECKLIST_ITEMS, ProtectionCase
from ledger.domain.flags import BodyRequest, FlagRequest, Protection
from ledger.domain.staff_acts import (
    APPROVED,
    EXECUTED,
    REJECTED,
    REQUESTED,
    act_statement,
    details_digest,
    note_digest,
    request_digest,
)
from ledger.domain.types import (
    Action,
    AgencyKind,
    Flag,
    Reason,
    RequestKind,
    agency_code,
    calendar_day,
    parse_enum,
)
from ledger.errors import (
    Code,
    InputError,
    IntegrityError,
    NotFoundError,
    PermissionDenied,
)
from ledger.log.staff_roles import check_roles
from ledger.log.staff_roster import check_acts, check_evidence

Proof = StaffProof | WebAuthnProof
_EVENT_OF_KIND = {RequestKind.SET.value: "FlagsSet", RequestKind.RENEW.value: "FlagsRenewed"}


class FlagCommands(CredentialCommands):
    """Protection cases, flag requests and their approval and execution, protection-body requests."""

    # -- intake (Point 1) --------------------------------------------------------------------------
    def open_case(
        self,
        actor: Actor,
        victim: str,
        *,
        perpetrators: Sequence[str] = (),
        reason: str = Reason.DV.value,
        checklist: dict[str, bool] | None = None,
        proxies_to_cancel: Sequence[str] = (),
        notes: str = "",
    ) -> UUID:
        self.authorise(actor, Action.OPEN_CASE)
        parse_enum(Reason, reason, "reason")
        checklist = dict(checklist or {})
        unknown = set(checklist) - set(CHECKLIST_ITEMS)
        if unknown:
            raise InputError(f"unknown checklist items; known: {', '.join(CHECKLIST_ITEMS)}", field="checklist")
        full = {item: bool(checklist.get(item, False)) for item in CHECKLIST_ITEMS}
        case = ProtectionCase(
            agency=actor.agency,
            victim=self.subject(victim),
            perpetrators=[self.subject(p) for p in perpetrators],
            reason=reason,
            checklist=full,
            proxies_to_cancel=[self.subject(p) for p in proxies_to_cancel],
            notes=notes,
            opened_by=actor.staff,
        )
        self.save_as(actor.agency, case)
        return case.id

    def case(self, case_id: UUID) -> ProtectionCase:
        return self.load(ProtectionCase, case_id, "case")

    def add_perpetrator(self, actor: Actor, case_id: UUID, subject: str) -> None:
        self.authorise(actor, Action.OPEN_CASE)
        case = self._own(self.case(case_id), actor, "case")
        case.add_perpetrator(self.subject(subject), by=actor.staff)
        self.save_as(actor.agency, case)

    # -- flags: request, approve, execute (Points 2, 6, 7) ------------------------------------------
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
        """Record a flag request, signed by the requester (their unlocked key, or ``proof`` made elsewhere
        over the statement for ``request_id``: :meth:`request_statement`)."""
        rid = request_id or uuid4()
        terms = self._request_terms(
            actor, subject, flags, kind, reason, review_date, case_id, explanation, body_request_id
        )
        k, subj, fl, review_text, approvals_required, digest = terms(rid)
        signed = self.sign_act(
            actor, act_statement(actor.agency, REQUESTED, str(rid), digest, actor.staff, note_digest("")), proof
        )
        request = FlagRequest(
            id=rid,
            agency=actor.agency,
            kind=k.value,
            subject=subj,
            flags=fl,
            reason=reason,
            review_date=review_text,
            requested_by=actor.staff,
            approvals_required=approvals_required,
            case_id=case_id,
            explanation=explanation,
            body_request_id=body_request_id,
            staff_signature=signed,
        )
        self.save_as(actor.agency, request, *self._on_request(actor, request), *self._after_act(actor, request))
        return request.id

    # -- hooks the year's rules fill in (ledger.app.year): nothing more by default ----------------------------
    def _extra_approvals(self, agency: str, subject: str, kind: str, flags: list[str]) -> int:
        """Approvals a request needs beyond the agency's chain (a release that leaves no holder anywhere)."""
        return 0

    def _on_request(self, actor: Actor, request: FlagRequest) -> list[LedgerAggregate]:
        """Aggregates saved with a new request (a warning to every holder)."""
        return []

    def _before_execute(self, actor: Actor, request: FlagRequest) -> list[LedgerAggregate]:
        """Refuse an execution the year's rules forbid; aggregates saved with it (a named risk used up)."""
        return []

    def _after_act(self, actor: Actor, request: FlagRequest) -> list[LedgerAggregate]:
        """Aggregates saved with an act on a request (the outcome a protection body reads: ledger.app.bodies)."""
        return []

    def _request_terms(
        self,
        actor: Actor,
        subject: str,
        flags: Sequence[str],
        kind: str,
        reason: str,
        review_date: date | None,
        case_id: UUID | None,
        explanation: str,
        body_request_id: UUID | None,
    ) -> Callable[[UUID], tuple[RequestKind, str, list[str], str | None, int, str]]:
        """Check a request's terms; a function of its id to (kind, subject, flags, review date, approvals
        required, :func:`request_digest`)."""
        agency, _ = self.authorise(actor, Action.REQUEST_FLAG)
        k = parse_enum(RequestKind, kind, "request kind")
        parse_enum(Reason, reason, "reason")
        if not flags:
            raise InputError("name at least one flag (NON_DISCLOSURE, NO_AUTO_RESPONSE)")
        fl = sorted({parse_enum(Flag, f, "flag").value for f in flags})
        subj = self.subject(subject)
        if case_id is not None:
            self._own(self.case(case_id), actor, "case")
        if body_request_id is not None:
            body = self._body_request(body_request_id)
            if body.municipality != actor.agency:  # sent to another municipality: as if unknown
                raise self._unknown("protection-body request", body_request_id)
        protection = self.find(Protection, self.ids.protection(actor.agency, subj))
        today = self.clock().date()
        if k is RequestKind.SET:
            review = review_date or today + timedelta(days=365)
        elif k is RequestKind.RENEW:
            if protection is None:
                raise NotFoundError(f"agency {actor.agency} holds no flag on this subject to renew")
            protection.check_held(fl)
            review = review_date or today + timedelta(days=365)
        else:
            if protection is None:
                raise NotFoundError(f"agency {actor.agency} holds no flag on this subject to release")
            protection.check_held(fl)
            if not explanation.strip():
                raise InputError("record the explanation given to the person (Point 6) before requesting release")
            review = None
        if review is not None and review <= today:
            raise InputError("the review date must be in the future")
        if review is not None:
            calendar_day(review, "review_date")
        review_text = review.isoformat() if review else None
        details = details_digest(
            reason, explanation, str(case_id) if case_id else None, str(body_request_id) if body_request_id else None
        )
        required = agency.approvals_required + self._extra_approvals(actor.agency, subj, k.value, fl)

        def terms(rid: UUID) -> tuple[RequestKind, str, list[str], str | None, int, str]:
            digest = request_digest(actor.agency, str(rid), k.value, subj, fl, review_text, required, details)
            return k, subj, fl, review_text, required, digest

        return terms

    def request_statement(
        self,
        actor: Actor,
        request_id: UUID,
        subject: str,
        flags: Sequence[str],
        *,
        kind: str = RequestKind.SET.value,
        reason: str = Reason.DV.value,
        review_date: date | None = None,
        case_id: UUID | None = None,
        explanation: str = "",
        body_request_id: UUID | None = None,
    ) -> bytes:
        """What ``actor`` signs to make this request as ``request_id`` (for a signature made elsewhere: the
        console's security key); the terms are checked as :meth:`request_flags` checks them."""
        terms = self._request_terms(
            actor, subject, flags, kind, reason, review_date, case_id, explanation, body_request_id
        )
        digest = terms(request_id)[5]
        return act_statement(actor.agency, REQUESTED, str(request_id), digest, actor.staff, note_digest(""))

    def act_statement_for(self, actor: Actor, request_id: UUID, act: str, note: str = "") -> bytes:
        """What ``actor`` signs to approve, reject (``note``: the reason) or execute request ``request_id``."""
        if act not in (APPROVED, REJECTED, EXECUTED):
            raise InputError("an act on a request is approved, rejected or executed", field="act")
        request = self._own(self.flag_request(request_id), actor, "flag request")
        return act_statement(actor.agency, act, str(request.id), request.digest(), actor.staff, note_digest(note))

    def flag_request(self, request_id: UUID) -> FlagRequest:
        return self.load(FlagRequest, request_id, "flag request")

    def _act_signature(
        self, actor: Actor, request: FlagRequest, act: str, note: str, proof: Proof | None
    ) -> dict[str, str]:
        statement = act_statement(actor.agency, act, str(request.id), request.digest(), actor.staff, note_digest(note))
        return self.sign_act(actor, statement, proof)

    def approve_request(self, actor: Actor, request_id: UUID, note: str = "", *, proof: Proof | None = None) -> str:
        self.authorise(actor, Action.APPROVE_FLAG)
        request = self._own(self.flag_request(request_id), actor, "flag request")
        request.check_pending()
        request.check_not_requester(actor.staff, "approve")
        self._check_signed(request, final=False)
        request.approve(actor.staff, note, self._act_signature(actor, request, APPROVED, note, proof))
        self.save_as(actor.agency, request, *self._after_act(actor, request))
        return request.status

    def reject_request(self, actor: Actor, request_id: UUID, reason: str, *, proof: Proof | None = None) -> None:
        self.authorise(actor, Action.APPROVE_FLAG)
        request = self._own(self.flag_request(request_id), actor, "flag request")
        request.check_pending()
        request.check_not_requester(actor.staff, "reject")
        request.reject(actor.staff, reason, self._act_signature(actor, request, REJECTED, reason, proof))
        self.save_as(actor.agency, request, *self._after_act(actor, request))

    def execute_request(self, actor: Actor, request_id: UUID, *, proof: Proof | None = None) -> None:
        """The designated operator applies an approved request to the agency's flags, once every act on it
        is signed by a certified person (:func:`ledger.domain.staff_acts.check_evidence`)."""
        self.authorise(actor, Action.EXECUTE_FLAG)
        request = self._own(self.flag_request(request_id), actor, "flag request")
        request.check_executable()
        extra = self._before_execute(actor, request)
        request.execute(actor.staff, self._act_signature(actor, request, EXECUTED, "", proof))
        evidence = request.evidence()
        self._check_signed(request, final=True)
        pid = self.ids.protection(actor.agency, request.subject)
        protection = self.find(Protection, pid) or Protection(id=pid, agency=actor.agency, subject=request.subject)
        if request.kind == RequestKind.SET.value:
            assert request.review_date is not None
            protection.set_flags(request.flags, request.id, actor.staff, request.reason, request.review_date, evidence)
        elif request.kind == RequestKind.RENEW.value:
            assert request.review_date is not None
            protection.renew(request.flags, request.id, actor.staff, request.review_date, evidence)
        else:
            protection.release(request.flags, request.id, actor.staff, "see request explanation", evidence)
        self.save_as(actor.agency, request, protection, *extra, *self._after_act(actor, request))

    def _check_signed(self, request: FlagRequest, *, final: bool) -> None:
        """Refuse a request whose recorded acts are not each signed by a certified person — an approval
        written with the node's key alone, a signature replayed from another request (IntegrityError,
        ``staff_signature``). ``final``: the executed request, checked exactly as a peer will check it."""
        roster = self.roster(request.agency)
        if final:
            payload: dict[str, Any] = {
                "agency": request.agency,
                "subject": request.subject,
                "flags": request.flags,
                "request_id": request.id,
                "by": request.decided_by,
                "review_date": request.review_date,
                "evidence": request.evidence(),
            }
            problem = check_evidence(roster, _EVENT_OF_KIND.get(request.kind, "FlagsReleased"), payload)
            lacking = check_roles(roster, payload) if problem is None else None
            if lacking is not None:  # what a peer would park: the roster, not only this node, gives each role
                raise PermissionDenied(
                    f"flag request {request.id}: {lacking} (the role is certified in the roster by two "
                    "administrators' signatures: docs/staff-signing.md)",
                    code=Code.STAFF_ROLE,
                )
        elif roster is None:
            problem = f"agency {request.agency} has no staff roster"
        elif [a["staff"] for a in request.acts if a["act"] == REQUESTED] != [request.requested_by]:
            problem = "the request is not signed by its requester"
        else:
            problem = check_acts(roster, str(request.id), request.digest(), request.acts)
        if problem is not None:
            raise IntegrityError(f"flag request {request.id}: {problem}", code=Code.STAFF_SIGNATURE)

    def protection(self, agency: str, subject: str) -> Protection | None:
        """The flags hosted agency ``agency`` holds on ``subject``. Another agency's protection is not found by
        person on any node but its own: its id is keyed with that agency's secret (ledger.log.stream_ids)."""
        if not self.ids.hosts(agency):
            raise NotFoundError("only the protections of agencies hosted here are found by person")
        return self.find(Protection, self.ids.protection(agency, self.subject(subject)))

    # -- protection bodies ----------------------------------------------------------------------------
    def _body_request(self, body_request_id: UUID) -> Any:
        """The protection-body request a flag request answers (ledger.app.bodies adds those the hub routed)."""
        return self.load(BodyRequest, body_request_id, "protection-body request")

    def send_body_request(
        self,
        actor: Actor,
        municipality: str,
        subject: str,
        flags: Sequence[str],
        reason: str = Reason.DV.value,
    ) -> UUID:
        agency, _ = self.authorise(actor, Action.SEND_BODY_REQUEST)
        if not AgencyKind(agency.kind).is_protection_body:
            raise PermissionDenied(
                "only protection bodies (support centres, child guidance centres, the police) send protection requests"
            )
        agency_code(municipality, "municipality")
        parse_enum(Reason, reason, "reason")
        fl = sorted({parse_enum(Flag, f, "flag").value for f in flags})
        if not fl:
            raise InputError("name at least one flag")
        body = BodyRequest(
            agency=actor.agency,
            municipality=municipality,
            subject=self.subject(subject),
            flags=fl,
            reason=reason,
            sent_by=actor.staff,
        )
        self.save_as(actor.agency, body)
        return body.id
