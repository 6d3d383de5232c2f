"""The console's decision on a held provision request, joined to the consultation (issue 19, docs/linkage.md):
on a node in hub mode a request the hub routed and marked ``staff`` needs a ``staff_answer`` signed by the two
people who decided it, so the console's propose and approve go through ``consumers.linkage_decisions`` as the
command line and the API do — each person signing the consultation's decision statement with the staff key
their console sign-in unlocked. A person whose console acts are signed by a security key in the browser is
refused there (the console never signs for them with a key held in this server, and a WebAuthn assertion is
not a decision signature the hub checks): they decide with ``flagledger provision propose`` / ``approve``.
Any other held request is decided as before (linkage_decisions falls through to the plain acts).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from consumers import linkage_decisions as decisions
from ledger.api.auth import Principal
from ledger.api.webauthn_keys import signs_with_key
from ledger.errors import Code, StateConflict
from ledger.runtime.bootstrap import Node

__all__ = ["approve", "cases", "propose"]

BASIS_LABELS = {"advised": "保有機関の助言", "escalated": "期限までに助言なし"}
ADVICE_LABELS = {"do_not_disclose": "開示しない", "may_disclose": "開示してよい"}


def cases(node: Node) -> dict[str, dict[str, Any]]:
    """The consultation's case of each held request the hub routed for staff, by local request id (empty
    outside hub mode: no request was routed)."""
    return {c["request_id"]: c for c in decisions.cases(node.engine)}


def _for_staff_answer(node: Node, who: Principal, request_id: UUID, act: str) -> None:
    if str(request_id) in cases(node) and signs_with_key(node, who.actor):
        # a conflict, not a 403: a 403 shows only its code's fixed text, and this one must name the way out
        raise StateConflict(
            "this request was routed by the hub and its decision must carry your staff key's signature, which a "
            f"security key in the browser does not give: use `flagledger provision {act}` instead",
            code=Code.STAFF_SIGNATURE_REQUIRED,
        )


def propose(node: Node, who: Principal, request_id: UUID, decision: str, applicant_check: str, note: str) -> None:
    _for_staff_answer(node, who, request_id, "propose")
    decisions.propose(node.app, node.engine, who.actor, request_id, decision, applicant_check, note)


def approve(node: Node, who: Principal, request_id: UUID, proposal_version: int) -> str:
    _for_staff_answer(node, who, request_id, "approve")
    return decisions.approve(node.app, node.engine, who.actor, request_id, proposal_version)
