"""A holder's approval of a proxy, from an agency node in hub mode to the hub (issue 19, docs/linkage.md; the
hub's side: ``ledger.hub.proxy_approvals``).

**Out**: once this agency's four eyes put an approval in force (``HolderProxyApproval.Approved``) or withdrew it
(``Withdrawn``), the bridge sends the hub a ``proxy_approval`` (``approve`` or ``revoke``) naming the person and
the proxy by this agency's own codes, its id derived from the event: sent again after a crash, it is the same
message and the same event id, dropped by the hub as a replay. A proposal alone sends nothing.
"""

from __future__ import annotations

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
    yield (
        (approval.subject, approval.proxy),
        ProxyApproval(approval_id, code_of(approval.subject), code_of(approval.proxy), action),
    )
