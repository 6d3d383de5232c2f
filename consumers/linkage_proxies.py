"""A holder's approval of a proxy, from an agency node in hub mode to the hub (issue 19, docs/linkage.md; the
hub's side: ``ledger.hub.proxy_approvals``).

**Out**: once this agency's four eyes put an approval in force (``HolderProxyApproval.Approved``) or withdrew it
(``Withdrawn``), the bridge sends the hub a ``proxy_approval`` (``approve`` or ``revoke``) naming the person and
the proxy by this agency's own codes, with the two staff signatures its four eyes recorded (the proposal's and
the approval's — or the withdrawal's), which the hub checks against the roster the bridge sends it; its id
derived from the event: sent again after a crash, it is the same message and the same event id, dropped by the
hub as a replay. A proposal alone sends nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from ledger.linkage.proxy_approvals import ProxyApproval
from ledger.runtime.linkage import code_of

__all__ = ["APPROVED", "TOPICS", "WITHDRAWN", "proxy_message"]

# topics are part of the stored data and never move (docs/design.md, event catalogue)
APPROVED = "ledger.domain.proxy_approvals:HolderProxyApproval.Approved"
WITHDRAWN = "ledger.domain.proxy_approvals:HolderProxyApproval.Withdrawn"
TOPICS = (APPROVED, WITHDRAWN)
_IDS = uuid.UUID("8d2e4b1c-6a3f-4f0e-b5d7-1e9c2a7f3b40")  # the namespace of proxy approval ids


def proxy_message(
    agency: str, topic: str, approval: Any, stream: uuid.UUID, version: int
) -> Iterator[tuple[tuple[str, ...], ProxyApproval]]:
    """The ``proxy_approval`` for this agency's approval (``approval``: the aggregate as of the event) put in force
    or withdrawn; nothing for another agency's."""
    if approval.agency != agency:
        return
    action = "approve" if topic == APPROVED else "revoke"
    approval_id = uuid.uuid5(_IDS, f"{stream}:{version}").hex
    acts = ("proposed", "approved") if topic == APPROVED else ("withdrawal_proposed", "withdrawn")
    requested, approved = (approval.signatures.get(a) or {} for a in acts)
    signed = {"approval": stream.hex, "requested": _json(requested), "approved": _json(approved)}
    yield (
        (approval.subject, approval.proxy),
        ProxyApproval(
            approval_id,
            code_of(approval.subject),
            code_of(approval.proxy),
            action,
            **(signed if requested and approved else {}),  # unsigned: a node whose staff sign nothing yet
        ),
    )


def _json(signature: dict[str, str]) -> str:
    return json.dumps(signature, sort_keys=True, separators=(",", ":"))
