"""What the HTTP routes of the four-eyes acts share: guardian bars (ledger/api/companions.py) and holders' proxy
approvals (ledger/api/proxy_approvals.py) both go proposed → in force → end proposed → ended
(ledger/domain/four_eyes.py), each step checked against the token's own roles before
:class:`ledger.app.FlagLedger` checks it again (and the four eyes: never the proposer's own approval)."""

from __future__ import annotations

from ledger.api.auth import Principal
from ledger.domain.types import Action
from ledger.errors import PermissionDenied
from ledger.runtime.bootstrap import Node

__all__ = ["APPROVE", "PROPOSE", "require_either_side"]

PROPOSE = Action.REQUEST_FLAG  # a requester proposes the act, or its end
APPROVE = Action.APPROVE_FLAG  # another person, an approver, puts it in force, or ends it


def require_either_side(node: Node, who: Principal) -> None:
    """Either side may list the agency's acts: a requester to follow what they proposed, an approver to find what
    waits for them; a caller with neither role is refused (``PermissionDenied``, as for the approver's role)."""
    try:
        who.require(node, PROPOSE)
    except PermissionDenied:
        who.require(node, APPROVE)
