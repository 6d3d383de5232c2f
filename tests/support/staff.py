"""Staff evidence for tests that build Protection events by hand: signed by the cast's keys, unlocked in this
test process (tests/conftest.py), exactly as ``FlagLedger.execute_request`` signs them."""

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

__all__ = ["signed_evidence"]


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
