"""``audit verify``'s check of staff signatures: every flag request act and every flag change in the log is
signed by a person certified in its agency's roster at that point of the log (docs/staff-signing.md), and every
break-glass co-approval signed on a prefecture's own node by an administrator certified in the prefecture's
roster then, for that grant (``ledger.log.co_approval``).

One pass over the roster, flag-request and Protection flag events in log order: the rosters are folded as they
were when each event was logged; an event before its agency's roster existed is listed as "before staff
signing" (an old log), never silently passed; anything else unsigned or signed wrongly is a finding. A signed
act by someone the roster did not give its role there (requester, approver — also for a rejection —, operator;
an administrator none) is a ``staff_role`` finding; at an agency whose roster records no roles (opened before
roles travelled) each signed flag event is listed as "before staff roles".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.app import FlagLedger
from ledger.app.roles import is_own_prefecture
from ledger.domain.staff_acts import details_digest, grant_digest, note_digest, request_digest
from ledger.errors import Code, FlagLedgerError
from ledger.log.co_approval import check_co_approval
from ledger.log.findings import Finding
from ledger.log.rows import log_rows
from ledger.log.staff_roles import act_role_problem, check_roles
from ledger.log.staff_roster import RosterState, check_acts, check_evidence

__all__ = ["StaffCheck", "check_staff_signatures"]

_ROSTER = "ledger.domain.roster:StaffRoster."
_REQUEST = "ledger.domain.flags:FlagRequest."
_PROTECTION = "ledger.domain.flags:Protection."
_GRANT = "ledger.domain.role_grants:RoleGrant."
TOPICS = [
    *(_ROSTER + e for e in ("Opened", "KeyCertified", "SecurityKeyCertified", "KeyRevoked")),
    *(_ROSTER + e for e in ("RoleCertified", "RolesWithdrawn")),
    *(_REQUEST + e for e in ("Requested", "Approved", "Rejected", "Executed")),
    *(_PROTECTION + e for e in ("FlagsSet", "FlagsRenewed", "FlagsReleased")),
    _GRANT + "Proposed",
    _GRANT + "BreakGlassApproved",
]
_BEFORE_ROLES = "before staff roles: signed by certified people; the roster records no roles to check"


class _Lacking(str):
    """A verified act by someone who did not hold its role (a ``staff_role`` finding, not ``staff_signature``)."""


_ACT = {"Requested": "requested", "Approved": "approved", "Rejected": "rejected", "Executed": "executed"}


@dataclass
class StaffCheck:
    findings: list[Finding] = field(default_factory=list)
    before_staff_signing: list[Finding] = field(default_factory=list)  # code "before_staff_signing"
    before_staff_roles: list[Finding] = field(default_factory=list)  # code "before_staff_roles"
    signed: int = 0  # events whose staff signatures verified


def check_staff_signatures(app: FlagLedger, page: int = 1000) -> StaffCheck:
    out = StaffCheck()
    rosters: dict[str, RosterState] = {}
    digests: dict[str, tuple[str, str]] = {}  # request id → (agency, request digest)
    grants: dict[str, str] = {}  # role grant id → its grant digest
    for position, state in _rows(app, page):
        try:
            env = app.signed_mapper.open(state)
            payload: Mapping[str, Any] = vars(app.signed_mapper.decode(env))
        except (FlagLedgerError, ValueError, TypeError):
            continue  # a row that does not open is named by the walk of every event
        h = env.header
        kind = h.topic.rsplit(".", 1)[1]

        def finding(reason: str, code: str = Code.STAFF_SIGNATURE) -> Finding:
            return Finding(position, h.stream, h.version, h.topic, reason, code)  # noqa: B023

        roster = rosters.get(h.origin)
        if h.topic.startswith(_ROSTER):
            problem = rosters.setdefault(h.origin, RosterState(h.origin)).apply(kind, payload, rosters.get)
            if problem is not None:
                out.findings.append(finding(f"this roster event certifies nothing: {problem}"))
            continue
        if h.topic.startswith(_GRANT):
            if kind == "Proposed":
                grants[h.stream] = _grant_digest(payload, h.stream)
                continue
            if payload.get("co_approval") is None:
                continue  # co-approved by a prefecture hosted on this node: no signature to check
            problem = _co_approval(payload, h.origin, h.stream, rosters, grants)
        elif h.topic.startswith(_REQUEST):
            problem = _request_act(payload, kind, h.stream, h.origin, roster, digests)
            if problem is None and roster is not None:
                problem = _role_of(roster, kind, payload)
        else:
            if payload.get("evidence") is None and roster is None:
                problem = "before staff signing"
            else:
                problem = check_evidence(roster, kind, payload)
                if problem is None:
                    problem = _BEFORE_ROLES if roster is not None and not roster.roles_recorded else None
                    lacking = check_roles(roster, payload)
                    if lacking is not None:
                        out.findings.append(finding(f"staff role: {lacking}", Code.STAFF_ROLE))
                        continue
        if problem == _BEFORE_ROLES:
            out.before_staff_roles.append(finding(problem, "before_staff_roles"))
            out.signed += 1
        elif isinstance(problem, _Lacking):
            out.findings.append(finding(f"staff role: {problem}", Code.STAFF_ROLE))
        elif problem == "before staff signing":
            out.before_staff_signing.append(finding(problem, "before_staff_signing"))
        elif problem is not None:
            out.findings.append(finding(problem))
        else:
            out.signed += 1
    return out


def _rows(app: FlagLedger, page: int) -> Iterator[tuple[int, bytes]]:
    """(position, stored state) of every event of :data:`TOPICS`, in log order: read by topic, or — where a
    tampered row stops the recorder's reader (the walk of every event names it) — row by row."""
    start = 1
    try:
        while True:
            rows = app.recorder.select_notifications(start=start, limit=page, topics=TOPICS)
            for n in rows:
                yield n.id, n.state
                start = n.id + 1
            if len(rows) < page:
                return
    except (ValueError, TypeError, FlagLedgerError):
        pass
    wanted = frozenset(TOPICS)
    while True:
        page_rows = log_rows(app.recorder, start, page)
        for position, _, _, _, topic, state in page_rows:
            if topic in wanted and state is not None:
                yield position, state
        if len(page_rows) < page:
            return
        start = page_rows[-1][0] + 1


def _request_act(
    p: Mapping[str, Any],
    kind: str,
    stream: str,
    origin: str,
    roster: RosterState | None,
    digests: dict[str, tuple[str, str]],
) -> str | None:
    if kind == "Requested":
        case, body = p.get("case_id"), p.get("body_request_id")
        details = details_digest(
            p["reason"], p["explanation"], str(case) if case else None, str(body) if body else None
        )
        digests[stream] = (
            origin,
            request_digest(
                origin,
                stream,
                p["kind"],
                p["subject"],
                list(p["flags"]),
                p["review_date"],
                p["approvals_required"],
                details,
            ),
        )
        staff = p["requested_by"]
    else:
        staff = p["by"]
    signed = p.get("staff_signature")
    if signed is None:
        return "before staff signing" if roster is None else "this act carries no staff signature"
    if roster is None:
        return f"agency {origin} has no staff roster to check this signature against"
    known = digests.get(stream)
    if known is None:
        return "an act on a request whose Requested event is missing"
    note = p.get("note", p.get("reason", "")) if kind in ("Approved", "Rejected") else ""
    act = {"act": _ACT[kind], "staff": str(staff), "note": note_digest(str(note)), **signed}
    return check_acts(roster, stream, known[1], [act])


def _grant_digest(p: Mapping[str, Any], stream: str) -> str:
    try:
        return grant_digest(str(p["agency"]), stream, str(p["staff_id"]), str(p["role"]), str(p["proposed_by"]))
    except KeyError:
        return ""


def _co_approval(
    p: Mapping[str, Any], origin: str, stream: str, rosters: Mapping[str, RosterState], grants: Mapping[str, str]
) -> str | None:
    """Why a ``BreakGlassApproved`` event's embedded co-approval does not prove its prefecture's administrator
    co-approved this grant (None: it does)."""
    co = p["co_approval"]
    if not isinstance(co, Mapping):
        return "a malformed co-approval"
    prefecture = str(co.get("prefecture"))
    if p.get("by_agency") != prefecture or p.get("by") != co.get("staff"):
        return "the co-approval names someone other than the approval's"
    if prefecture == origin or not is_own_prefecture(prefecture, origin):
        return f"{prefecture} is not the prefecture of {origin}"
    digest = grants.get(stream)
    if not digest:
        return "a co-approval of a grant whose Proposed event is missing"
    problem = check_co_approval(rosters.get(prefecture), co, origin, stream, digest, str(p.get("note", "")))
    return None if problem is None else f"break-glass co-approval: {problem}"


def _role_of(roster: RosterState, kind: str, p: Mapping[str, Any]) -> str | None:
    """A verified flag-request act by someone who lacked its role in the roster there (a :class:`_Lacking`),
    :data:`_BEFORE_ROLES` where the roster records none, else None."""
    if not roster.roles_recorded:
        return _BEFORE_ROLES
    staff = str(p["requested_by"] if kind == "Requested" else p["by"])
    provisional = kind == "Requested" and p.get("provisional") is True  # an operator requests an emergency flag
    problem = act_role_problem(roster, _ACT[kind], staff, provisional=provisional)
    return None if problem is None else _Lacking(problem)
