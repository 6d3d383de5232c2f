"""A holder's approval of a named proxy for a named person, as it travels to the hub (issue 19).

``proxy_approval`` (holder agency → hub, sealed and signed like every message): the approval's id, the holder's
own code for the person, the holder's own code for the proxy (the holder files the proxy first, as any person)
and ``approve`` or ``revoke``. It carries no number; from a node whose staff sign, ``approval`` (the holder's
approval stream id) and ``requested`` / ``approved`` (the staff signatures, as JSON, of the approval's — or the
withdrawal's — proposal and approval: key ids the holder's roster, which the hub keeps, maps to its staff), which
the hub checks against that roster. The hub takes it only from an agency whose ``NON_DISCLOSURE`` or
``NO_AUTO_RESPONSE`` applies to the person
now (``ledger.hub.proxy_approvals``); it reaches the portal only as the page's list of the portal's codes for
the approved proxies — no holder, no agency.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.errors import Code, InputError
from ledger.linkage.codes import check_code
from ledger.linkage.messages import Message
from ledger.linkage.names import check_event_id

__all__ = ["PROXY_ACTIONS", "ProxyApproval", "holder_subject"]

PROXY_ACTIONS = ("approve", "revoke")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_MAX_SIGNATURE = 1800  # a staff key's signature, or a security key's assertion (its data base64url), as JSON


def holder_subject(code: str) -> str:
    """The pseudonym a hub-mode node files the person under for its own ``code`` (ledger.runtime.linkage's
    ``subject_of``): what its staff signed."""
    return "p" + code[1:]


def _signature(text: str, name: str) -> dict[str, str]:
    try:
        value: Any = json.loads(text) if len(text) <= _MAX_SIGNATURE else None
    except (ValueError, RecursionError):
        value = None
    if (
        not isinstance(value, dict)
        or not {"key_id", "signature"} <= set(value)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise InputError(f"a proxy approval's {name} is a staff signature", code=Code.MALFORMED, field=name)
    return value


@dataclass(frozen=True)
class ProxyApproval(Message):
    kind: ClassVar[str] = "proxy_approval"
    approval_id: str
    code: str  # the holder's code for the person protected
    proxy_code: str  # the holder's code for the proxy
    action: str
    approval: str = ""  # the holder's approval stream id (hex); "" from a holder whose staff sign nothing
    requested: str = ""  # the proposal's staff signature (JSON)
    approved: str = ""  # the approval's staff signature (JSON)

    @property
    def signed(self) -> bool:
        return bool(self.approval)

    def signatures(self) -> tuple[dict[str, str], dict[str, str]]:
        return _signature(self.requested, "requested"), _signature(self.approved, "approved")

    def check(self) -> None:
        check_event_id(self.approval_id)
        check_code(self.code)
        check_code(self.proxy_code, "proxy code")
        if self.action not in PROXY_ACTIONS:
            raise InputError("a proxy approval's action is approve or revoke", code=Code.MALFORMED, field="action")
        if self.code == self.proxy_code:
            raise InputError("a person is not their own proxy", code=Code.MALFORMED, field="proxy_code")
        if self.approval or self.requested or self.approved:
            if not _HEX32.fullmatch(self.approval):
                raise InputError("a proxy approval's stream id is 32 hex digits", code=Code.MALFORMED, field="approval")
            self.signatures()
