"""The consultation beyond delivery (issue 19, "provider is not the holder"): the holders' recorded advice, the
provider's four-eyes decision on it, and the escalations that replace any automatic answer.

When the hub marks a routed query ``staff`` it consults each holder (``Consultation``, naming no querier).
Then, inside the seal like every other kind:

=====================  ==================  ==========================================================
kind                   from → to           holds
=====================  ==================  ==========================================================
``advice``             holder → hub        the provider's request id and the holder's advice
                                           (:data:`ADVICE`: a fixed word, no free text that could
                                           name the holder)
``advice_relay``       hub → provider      the request id and the holders' advice *combined*: sent once,
                                           when every holder consulted has advised — so the provider
                                           learns neither who advised nor how many
``escalation``         hub → provider      the request id, why (:data:`ESCALATIONS`: no advice by the
                                           deadline, an answer the hub refused, or a decision refused
                                           as taken before late advice: decide again) and the advice
                                           so far
``staff_answer``       provider → hub      the answer with its decision: the advice decided on, the
                                           basis, and two staff signatures (four eyes)
=====================  ==================  ==========================================================

A decision is two signatures of two different staff members of the provider, each with a key its staff roster
certified and did not revoke (``ledger.log.staff_roster``), one of them holding reviewer there and the other
approver, neither administrator (``ledger.log.staff_roles.decision_role_problem``), over :func:`decision_statement`:
the provider, the request, the status, the data's digest, the advice and its basis. Whoever checks it — the
provider's node before it approves and before it sends (``consumers/linkage_decisions.py``), the hub before it
relays — applies :func:`check_decision`. A node's key signs no decision, so a shell
user holding the node's keys cannot make one; an administrator holding two keys is one person.

:class:`StaffDesk` is the provider's side, in memory (a node keeps it durably): cases opened by a ``staff``
routed query, advice and escalations filed into them, and :meth:`StaffDesk.decide` — which refuses to decide
before the advice came or the deadline passed. Nothing here answers by itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ledger.errors import Code, InputError, NotFoundError, PermissionDenied, SelfApprovalError, StateConflict
from ledger.linkage.messages import AnswerMessage, Message, RoutedQuery
from ledger.linkage.names import check_event_id
from ledger.log.staff_roles import decision_role_problem
from ledger.log.staff_roster import RosterState, verify_act

__all__ = [
    "ADVICE",
    "BASES",
    "DECIDED",
    "ESCALATIONS",
    "AdviceMessage",
    "AdviceRelay",
    "Approval",
    "Case",
    "Escalation",
    "StaffAnswer",
    "StaffDesk",
    "check_decision",
    "combine",
    "decision_statement",
]

DO_NOT_DISCLOSE, MAY_DISCLOSE, NO_ADVICE = "do_not_disclose", "may_disclose", "none"
ADVICE = (DO_NOT_DISCLOSE, MAY_DISCLOSE)
# decide_again: a staff decision refused as taken on the escalation when holders' advice came after it (issue 19)
NO_ADVICE_BY_DEADLINE, ANSWER_REFUSED, DECIDE_AGAIN = ESCALATIONS = ("no_advice", "answer_refused", "decide_again")
ADVISED, ESCALATED = BASES = ("advised", "escalated")  # every holder advised / the deadline passed without
DECIDED = ("answered", "not_provided")  # the final statuses; "in_progress" needs no decision


def combine(advice: list[str]) -> str:
    """The holders' advice as the provider sees it: the most restrictive one, ``none`` if none came."""
    if DO_NOT_DISCLOSE in advice:
        return DO_NOT_DISCLOSE
    return MAY_DISCLOSE if advice else NO_ADVICE


@dataclass(frozen=True)
class AdviceMessage(Message):
    kind: ClassVar[str] = "advice"
    request_id: str  # the provider's request id, as the consultation gave it
    advice: str

    def check(self) -> None:
        check_event_id(self.request_id)
        if self.advice not in ADVICE:
            raise InputError(f"a holder's advice is one of {', '.join(ADVICE)}", field="advice")


@dataclass(frozen=True)
class AdviceRelay(Message):
    kind: ClassVar[str] = "advice_relay"
    request_id: str
    advice: str  # combined: do_not_disclose if any holder said so

    def check(self) -> None:
        check_event_id(self.request_id)
        if self.advice not in ADVICE:
            raise InputError(f"relayed advice is one of {', '.join(ADVICE)}", field="advice")


@dataclass(frozen=True)
class Escalation(Message):
    kind: ClassVar[str] = "escalation"
    request_id: str
    reason: str
    advice: str  # combined, of what came so far (none: nothing)

    def check(self) -> None:
        check_event_id(self.request_id)
        if self.reason not in ESCALATIONS:
            raise InputError(f"an escalation is one of {', '.join(ESCALATIONS)}", field="reason")
        if self.advice not in (*ADVICE, NO_ADVICE):
            raise InputError("an escalation's advice is a holder's advice or none", field="advice")


@dataclass(frozen=True)
class Approval:
    """One staff member's signature on a decision: the key id (the roster's) and the Ed25519 signature (hex),
    as ``StaffSigner.sign`` gives them."""

    key_id: str
    signature: str


@dataclass(frozen=True)
class StaffAnswer(Message):
    kind: ClassVar[str] = "staff_answer"
    request_id: str  # the hub's routed id
    status: str
    data: str
    advice: str  # the combined advice decided on (none: escalated without any)
    basis: str
    first_key: str
    first_signature: str
    second_key: str
    second_signature: str

    def check(self) -> None:
        AnswerMessage(self.request_id, self.status, self.data).check()
        if self.status not in DECIDED:
            raise InputError("a decision answers or declines: 'in_progress' needs none", field="status")
        if self.advice not in (*ADVICE, NO_ADVICE) or self.basis not in BASES:
            raise InputError("a decision names the advice it was taken on and its basis", field="advice")
        for key, signature in ((self.first_key, self.first_signature), (self.second_key, self.second_signature)):
            if not 1 <= len(key) <= 100 or len(signature) != 128:
                raise InputError("a decision carries two staff key ids and Ed25519 signatures", field="signature")

    @property
    def approvals(self) -> tuple[Approval, Approval]:
        return Approval(self.first_key, self.first_signature), Approval(self.second_key, self.second_signature)

    def relayed(self, querier_request: str) -> AnswerMessage:
        """What the querier hears: the answer alone, as from any other provider's answer."""
        return AnswerMessage(querier_request, self.status, self.data)


def decision_statement(provider: str, request_id: str, status: str, data: str, advice: str, basis: str) -> bytes:
    """What each of the two staff members signs."""
    value = {
        "provider": provider,
        "request": request_id,
        "status": status,
        "data": hashlib.sha256(data.encode()).hexdigest(),
        "advice": advice,
        "basis": basis,
    }
    return ("flagledger consultation decision v1\n" + json.dumps(value, sort_keys=True, separators=(",", ":"))).encode()


def check_decision(roster: RosterState | None, provider: str, answer: StaffAnswer) -> tuple[str, str]:
    """The two staff members who decided ``answer`` for ``provider``; a ledger error unless two different
    staff members of the provider signed it with keys its roster certified and did not revoke, and the roster
    gives them the authority (``staff_role``: one holds reviewer, the other approver, neither administrator;
    :func:`ledger.log.staff_roles.decision_role_problem`, the rule every reader of a roster applies)."""
    if roster is None or roster.agency != provider:
        raise PermissionDenied(f"no staff roster of {provider} to check its decision", code=Code.STAFF_SIGNATURE)
    statement = decision_statement(provider, answer.request_id, answer.status, answer.data, answer.advice, answer.basis)
    staff: list[str] = []
    for approval in answer.approvals:
        cert = roster.keys.get(approval.key_id)
        if cert is None or cert.revoked:
            raise PermissionDenied(
                f"key {approval.key_id} is no certified staff key of {provider}", code=Code.STAFF_SIGNATURE
            )
        why = verify_act(cert, statement, {"key_id": approval.key_id, "signature": approval.signature})
        if why is not None:
            raise PermissionDenied(f"a decision's signature does not verify: {why}", code=Code.STAFF_SIGNATURE)
        staff.append(cert.staff)
    if staff[0] == staff[1]:
        raise SelfApprovalError(f"{staff[0]} signed both halves of the decision: four eyes are two people")
    problem = decision_role_problem(roster, (staff[0], staff[1]))
    if problem is not None:
        raise PermissionDenied(f"the decision's signers lack the authority: {problem}", code=Code.STAFF_ROLE)
    return staff[0], staff[1]


@dataclass
class Case:
    """A request the hub marked ``staff``, at the provider: what its staff decide on."""

    routed: RoutedQuery
    advice: str | None = None  # combined, once every holder advised
    escalations: list[Escalation] = field(default_factory=list)
    decided: StaffAnswer | None = None

    @property
    def basis(self) -> tuple[str, str] | None:
        """(advice, basis) the staff may decide on now; None while the holders are still being asked."""
        if self.advice is not None:
            return self.advice, ADVISED
        late = [e for e in self.escalations if e.reason == NO_ADVICE_BY_DEADLINE]
        return (late[-1].advice, ESCALATED) if late else None


class StaffDesk:
    """The provider's staff queue of consultations; the administrator's queue is :meth:`escalated`."""

    def __init__(self, provider: str, roster: Mapping[str, RosterState] | RosterState) -> None:
        self.provider = provider
        self.roster = roster if isinstance(roster, RosterState) else roster.get(provider)
        self.cases: dict[str, Case] = {}

    def take(self, message: Message) -> bool:
        """File one message from the hub; whether it was the desk's."""
        if isinstance(message, RoutedQuery):
            if message.answer != "staff":
                return False
            self.cases.setdefault(message.request_id, Case(message))
        elif isinstance(message, AdviceRelay):
            self._case(message.request_id).advice = message.advice
        elif isinstance(message, Escalation):
            case = self._case(message.request_id)
            case.escalations.append(message)
            if message.reason == DECIDE_AGAIN:  # the hub refused the decision taken on older advice
                case.decided = None
        else:
            return False
        return True

    def _case(self, request_id: str) -> Case:
        try:
            return self.cases[request_id]
        except KeyError:
            raise NotFoundError(f"no staff request {request_id} at {self.provider}") from None

    def pending(self) -> list[Case]:
        return [c for c in self.cases.values() if c.decided is None]

    def escalated(self) -> list[Case]:
        """What the administrator must see: undecided cases the hub escalated (no advice by the deadline, an
        answer refused)."""
        return [c for c in self.pending() if c.escalations]

    def decide(self, request_id: str, status: str, data: str, first: Approval, second: Approval) -> StaffAnswer:
        """The staff answer for ``request_id``, checked here as the hub will check it; to be sent with
        ``AgencyEnd.answer_decided``."""
        case = self._case(request_id)
        if case.decided is not None:
            raise StateConflict(f"request {request_id} is decided already")
        if (basis := case.basis) is None:
            raise StateConflict(
                "the holders have not advised and the deadline has not passed: nothing to decide on yet",
                code=Code.STAFF_DECISION_REQUIRED,
            )
        advice, why = basis
        answer = StaffAnswer(
            request_id, status, data, advice, why, first.key_id, first.signature, second.key_id, second.signature
        )
        answer.check()
        check_decision(self.roster, self.provider, answer)
        case.decided = answer
        return answer

    def statement(self, request_id: str, status: str, data: str) -> bytes:
        """What each staff member signs to decide ``request_id`` now."""
        case = self._case(request_id)
        if (basis := case.basis) is None:
            raise StateConflict(
                "the holders have not advised and the deadline has not passed: nothing to decide on yet",
                code=Code.STAFF_DECISION_REQUIRED,
            )
        return decision_statement(self.provider, request_id, status, data, *basis)
