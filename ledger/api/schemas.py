"""Request and response bodies of the HTTP API (the views' dataclasses serve as response models too).

Strings are bounded and may not carry control characters or lone surrogates: the ledger stores what it is
given for good, so junk is refused here with a 422 naming the field.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ledger.domain import bounds
from ledger.domain.cases import CHECKLIST_ITEMS
from ledger.domain.types import FIRST_DAY, LAST_DAY, Applicant, Flag, Reason, RequestKind, calendar_day


def _clean(value: str) -> str:
    why = bounds.bad_text(value)
    if why is not None:
        raise ValueError(f"the text {why}")
    return value


def _text(bound: bounds.Bound) -> StringConstraints:
    """The field's one bound (ledger.domain.bounds), as the views, the CLI and ingest apply it."""
    return StringConstraints(min_length=bound.min or None, max_length=bound.max)


Subject = Annotated[
    str,
    _text(bounds.SUBJECT),
    AfterValidator(_clean),
    Field(description="12-digit individual number (hyphens allowed) or its pseudonym p<32 hex>; never put it in a URL"),
]
AgencyCode = Annotated[str, StringConstraints(min_length=1, max_length=bounds.AGENCY_CODE.max), AfterValidator(_clean)]


def _in_calendar(value: date) -> date:
    calendar_day(value, "the date")  # far from date.max, where adding the 30 days of "reviews due" overflows
    return value


Day = Annotated[date, AfterValidator(_in_calendar), Field(description=f"YYYY-MM-DD, {FIRST_DAY} to {LAST_DAY}")]
Note = Annotated[str, _text(bounds.NOTE), AfterValidator(_clean)]
Purpose = Annotated[str, StringConstraints(min_length=1, max_length=bounds.PURPOSE.max), AfterValidator(_clean)]
Procedure = Annotated[str, _text(bounds.PROCEDURE), AfterValidator(_clean)]
InfoKind = Annotated[str, _text(bounds.INFO_KIND), AfterValidator(_clean)]
FlagName = Literal["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]
ReasonName = Literal["dv", "stalking", "child_abuse", "other"]
ApplicantName = Literal["protected_person", "known_perpetrator", "unknown"]
ChecklistItem = Literal[
    "flag_restrictions_explained",
    "resident_record_move_recommended",
    "number_change_recommended",
    "proxy_cancellation_advised",
]

assert {f.value for f in Flag} == {"NON_DISCLOSURE", "NO_AUTO_RESPONSE"}
assert {r.value for r in Reason} == {"dv", "stalking", "child_abuse", "other"}
assert {a.value for a in Applicant} == {"protected_person", "known_perpetrator", "unknown"}
assert set(CHECKLIST_ITEMS) == set(ChecklistItem.__args__)  # type: ignore[attr-defined]
assert {k.value for k in RequestKind} == {"set", "release", "renew"}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- commands -----------------------------------------------------------------------------------------------
class CaseIn(Body):
    victim: Subject
    perpetrators: list[Subject] = Field(default_factory=list, max_length=20)
    reason: ReasonName = "dv"
    checklist: list[ChecklistItem] = Field(default_factory=list, description="checklist items done")
    proxies_to_cancel: list[Subject] = Field(default_factory=list, max_length=20)
    notes: Note = ""


class CaseOut(BaseModel):
    case_id: UUID


class FlagRequestIn(Body):
    subject: Subject
    flags: list[FlagName] = Field(min_length=1, max_length=2)
    kind: Literal["set", "release", "renew"] = "set"
    reason: ReasonName = "dv"
    review_date: Day | None = None
    case_id: UUID | None = None
    explanation: Note = Field("", description="explanation given to the person (required to release)")
    body_request_id: UUID | None = None


class RequestStatusOut(BaseModel):
    request_id: UUID
    status: str


class FlagRequestOut(BaseModel):
    request_id: UUID
    agency: str
    kind: str
    subject: str
    flags: list[str]
    reason: str
    review_date: str | None
    requested_by: str
    approvals_required: int
    status: str


class ApproveIn(Body):
    note: Note = ""


class RejectIn(Body):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=bounds.NOTE.max), AfterValidator(_clean)]


class ExecutedOut(BaseModel):
    request_id: UUID
    status: str
    kind: str
    flags: list[str]


class UnlockIn(Body):
    password: str = Field(min_length=1, max_length=1024, description="your own password (staff activate)")


class UnlockedOut(BaseModel):
    staff: str
    staff_key: str


class BodyRequestIn(Body):
    municipality: AgencyCode
    subject: Subject
    flags: list[FlagName] = Field(min_length=1, max_length=2)
    reason: ReasonName = "dv"


class BodyRequestOut(BaseModel):
    body_request_id: UUID


class ProvisionIn(Body):
    provider: AgencyCode
    subject: Subject
    # strict: JSON true is not item 1, nor "74" item 74
    legal_item: int = Field(ge=1, le=200, strict=True, description="item number of table 2 (別表第二)")
    procedure: Procedure
    info_kind: InfoKind
    applicant: ApplicantName = "unknown"


class QuerierAnswerOut(BaseModel):
    """All the querying side ever learns: a held request looks exactly like any other manual answer."""

    request_id: UUID
    status: Literal["answered", "in_progress", "not_provided"]
    message: str


class OverdueOut(BaseModel):
    """A held request past its due date (docs/answers.md): no person and no querying agency named."""

    request_id: UUID
    reason: Literal["flag", "policy", "no_data", "check"]
    received: str
    due: str
    overdue: bool
    escalated_to: list[Literal["approver", "administrator"]]


class ProposeIn(Body):
    decision: Literal["provide", "refuse"]
    applicant_check: ApplicantName
    note: Note = ""


class ApproveDecisionIn(Body):
    proposal_version: int = Field(
        ge=1,
        le=2**31 - 1,
        description="the proposal approved, as the held-request "
        "queue showed it (`proposal_version`); a proposal replaced since is 409",
    )


# -- queries ------------------------------------------------------------------------------------------------
class WhoAmI(BaseModel):
    agency: str
    staff: str
    roles: list[str]
    expires_at: str
    kind: Literal["staff", "system"] = "staff"


class SystemTokenRequest(Body):
    agency: AgencyCode
    account: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    secret: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="the account's own secret, from `flagledger system enroll` / `system new-secret`"
    )
    ttl_seconds: Annotated[int, Field(ge=30, le=3600)] = 3600


class SystemTokenOut(BaseModel):
    token: str
    agency: str
    account: str
    kind: Literal["system"] = "system"
    roles: list[str]
    expires_at: str


class SignInRequest(Body):
    agency: AgencyCode
    staff: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description="your own password (set with `flagledger staff activate`)"
    )
    code: Annotated[str | None, StringConstraints(pattern=r"^[0-9]{6,8}$")] = Field(
        None, description="your one-time code, if you registered codes"
    )
    ttl_seconds: Annotated[int, Field(ge=30, le=12 * 3600)] = 3600
    roles: list[Annotated[str, StringConstraints(max_length=32)]] | None = Field(
        None, max_length=16, description="narrow the token to these of your roles"
    )


class SignInOut(BaseModel):
    token: str
    agency: str
    staff: str
    kind: Literal["staff"] = "staff"
    roles: list[str]
    expires_at: str


class SubjectQuery(Body):
    subject: Subject


class OptionalSubjectQuery(Body):
    subject: Subject | None = None


class NationwideQuery(Body):
    subject: Subject
    purpose: Purpose | None = Field(
        None,
        description="refused (403 holders_withheld): no staff member sees which other agencies protect a person",
    )


class PurposeQuery(Body):
    subject: Subject
    purpose: Purpose


class PortalQuery(Body):
    viewer: Subject = Field(description="whose credentials logged in to the portal")
    subject: Subject


class LiaisonQuery(Body):
    reference: Annotated[str, StringConstraints(pattern=r"^L-[0-9a-f]{20}$")]
    purpose: Purpose


class LiaisonOut(BaseModel):
    subject: str
    flags: list[str]


class RequestPathOut(BaseModel):
    """How a provision request about the subject would be answered by a provider on this node."""

    path: Literal["automatic", "manual"]


# -- errors -------------------------------------------------------------------------------------------------
class ErrorOut(BaseModel):
    code: str = Field(description="stable reason code, e.g. role_not_permitted, four_eyes, conflict, not_found")
    message: str


class FieldError(BaseModel):
    loc: list[str]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    code: Literal["invalid_input"]
    message: str
    fields: list[FieldError] = Field(default_factory=list, description="absent when the ledger refused a value")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing, malformed, forged, expired or revoked token"},
    403: {"model": ErrorOut, "description": "refused (the code never tells whether a person is protected)"},
    404: {"model": ErrorOut, "description": "unknown subject, agency or request"},
    409: {"model": ErrorOut, "description": "conflicts with the current state (e.g. already approved)"},
    422: {"model": ValidationErrorOut, "description": "invalid input"},
}
