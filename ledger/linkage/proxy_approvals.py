"""A holder's approval of a named proxy for a named person, as it travels to the hub (issue 19).

``proxy_approval`` (holder agency → hub, sealed and signed like every message): the approval's id, the holder's
own code for the person, the holder's own code for the proxy (the holder files the proxy first, as any person)
and ``approve`` or ``revoke``. It carries no number and no approver: the four eyes are the holder's, in its own
log. The hub takes it only from an agency whose ``NON_DISCLOSURE`` or ``NO_AUTO_RESPONSE`` applies to the person
now (``ledger.hub.proxy_approvals``); it reaches the portal only as the page's list of the portal's codes for
the approved proxies — no holder, no agency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ledger.errors import Code, InputError
from ledger.linkage.codes import check_code
from ledger.linkage.messages import Message
from ledger.linkage.names import check_event_id

__all__ = ["PROXY_ACTIONS", "ProxyApproval"]

PROXY_ACTIONS = ("approve", "revoke")


@dataclass(frozen=True)
class ProxyApproval(Message):
    kind: ClassVar[str] = "proxy_approval"
    approval_id: str
    code: str  # the holder's code for the person protected
    proxy_code: str  # the holder's code for the proxy
    action: str

    def check(self) -> None:
        check_event_id(self.approval_id)
        check_code(self.code)
        check_code(self.proxy_code, "proxy code")
        if self.action not in PROXY_ACTIONS:
            raise InputError("a proxy approval's action is approve or revoke", code=Code.MALFORMED, field="action")
        if self.code == self.proxy_code:
            raise InputError("a person is not their own proxy", code=Code.MALFORMED, field="proxy_code")
