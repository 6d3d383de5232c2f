"""The test cast as people: enrolled with a one-time code, activated with their own (generated) password, keys
unlocked in this test process; and staff evidence for tests that build Protection events by hand, signed by
those keys exactly as ``FlagLedger.execute_request`` signs them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.app import Actor, FlagLedger
from ledger.domain.staff_acts import (
    APPROVED,
    EXECUTED,
    REQUESTED,
    act_statement,
    details_digest,
    note_digest,
    request_digest,
)
from ledger.runtime.bootstrap import Node

__all__ = ["activate_admin", "enrol", "password_of", "signed_evidence"]


def password_of(agency: str, who: str) -> str:
    """The test cast's passwords (generated per person, the same in every test)."""
    return f"pw-{agency}-{who}-correct-horse"


def activate_admin(node: Node, agency: str, who: str = "admin") -> None:
    """Activate the first administrator with the code set-up issued (or a bootstrap code on an old log), so
    that it signs the cast's enrolment codes; its key stays unlocked in this process."""
    app = node.app
    roster = app.roster(agency)
    if roster is not None and roster.current_key(who) is not None:
        app.unlock(agency, who, password_of(agency, who))
        return
    code = app.first_codes.pop(agency, None) or app.issue_enrolment_code(Actor(agency, who), who)
    app.activate_credential(agency, who, code, password_of(agency, who))


def enrol(node: Node, actor: Actor, who: str, roles: list[str], name: str | None = None) -> None:
    """Enrol ``who`` the way a person is: the administrator issues a code, the person activates it with their
    own password; the key stays unlocked in this process (as `flagledger staff activate` leaves it)."""
    node.app.enroll_staff(actor, who, name or who, roles)
    code = node.app.issue_enrolment_code(actor, who)
    node.app.activate_credential(actor.agency, who, code, password_of(actor.agency, who))


def signed_evidence(
    app: FlagLedger,
    agency: str,
    kind: str,
    subject: str,
    flags: list[str],
    request_id: UUID,
    review_date: str | None,
    *,
    requester: str = "req",
    approvers: tuple[str, ...] = ("apr",),
    operator: str = "op",
) -> dict[str, Any]:
    """The ``evidence`` of a flag change of ``kind`` (set, renew, release) with genuine signatures."""
    details = details_digest("dv", "", None, None)
    digest = request_digest(agency, str(request_id), kind, subject, flags, review_date, len(approvers), details)
    acts = []
    for act, who in [(REQUESTED, requester), *((APPROVED, a) for a in approvers), (EXECUTED, operator)]:
        note = note_digest("")
        signed = app.signer_for(Actor(agency, who)).sign(act_statement(agency, act, str(request_id), digest, who, note))
        acts.append({"act": act, "staff": who, "note": note, **signed})
    return {"approvals_required": len(approvers), "details": details, "acts": acts}
