"""Protection bodies (support centres, child guidance centres, the police) and the outcome of what they ask
(issue 21, docs/bodies.md).

A body sends a :class:`ledger.domain.flags.BodyRequest` (shared, its own stream). The municipality it asked
answers with its own flag request; each step of that request that a body needs to know (requested, approved,
rejected, executed) is recorded by the municipality as a :class:`BodyOutcome`, shared, on the municipality's
own stream (it never appends to the body's). An outcome names the body request, the body and the flags, never
the person: the body already knows whom it asked about.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.types import Action, AgencyKind

__all__ = ["POLICE_ACTIONS", "BodyOutcome", "OutcomeStatus", "kind_refusal"]

# the police asks and reads the outcome; it holds no flag, makes no linkage query (it is no 情報照会者 of the
# law catalogue) and sees no protected details — whatever its permission table is made to say
POLICE_ACTIONS = frozenset({Action.SEND_BODY_REQUEST, Action.ADMINISTER, Action.AUDIT})


def kind_refusal(kind: str, action: Action) -> str | None:
    """Why an agency of ``kind`` may never do ``action``, or None."""
    if kind == AgencyKind.POLICE.value and action not in POLICE_ACTIONS:
        return f"the police asks a municipality to protect (send_body_request); it may not {action.value}"
    return None


class OutcomeStatus(StrEnum):
    REQUESTED = "requested"  # the municipality opened a flag request in its own chain
    APPROVED = "approved"  # its approval chain is complete
    REJECTED = "rejected"
    EXECUTED = "executed"  # the flags are set (or renewed, or released) and protect everywhere


class BodyOutcome(LedgerAggregate):
    """One step of the municipality's answer to a body request (one aggregate per step: nothing to append)."""

    SHARED = True

    @event("Recorded")
    def __init__(
        self,
        agency: str,
        body: str,
        body_request_id: UUID,
        flag_request_id: UUID,
        kind: str,
        flags: list[str],
        status: str,
        on: str,
    ) -> None:
        self.agency = agency  # the municipality that was asked
        self.body = body
        self.body_request_id = body_request_id
        self.flag_request_id = flag_request_id
        self.kind = kind
        self.flags = sorted(flags)
        self.status = OutcomeStatus(status).value
        self.on = on
