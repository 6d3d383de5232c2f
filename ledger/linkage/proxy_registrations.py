"""A Mynaportal proxy's registration (代理人), or its cancellation, as it travels to the hub (issue 19).

``proxy_registration`` (agency → hub, sealed and signed like every message): the registration's id (derived from
the node's event, so a resend is the same message), the agency's own code for the person, its own code for the
proxy (it files the proxy first, as any person), and ``register`` or ``cancel``. It carries no number. The hub
keeps it under the portal's codes (``ledger.hub.proxy_registrations``): the sending agency never learns them, and
the portal learns only the page's list of the portal's codes of the proxies who may read it.

``proxy_cancelled`` (hub → the registering agency): another agency holding the person cancelled this agency's
registration at the hub. Under the registering agency's own codes only (as it registered them): not who cancelled,
nor why, nor that anyone protects the person beyond what the cancellation itself says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ledger.errors import Code, InputError
from ledger.linkage.codes import check_code
from ledger.linkage.messages import Message
from ledger.linkage.names import check_event_id

__all__ = ["REGISTRATION_ACTIONS", "ProxyCancelled", "ProxyRegistrationMessage"]

REGISTRATION_ACTIONS = ("register", "cancel")


@dataclass(frozen=True)
class ProxyRegistrationMessage(Message):
    kind: ClassVar[str] = "proxy_registration"
    registration_id: str
    code: str  # the sending agency's code for the person
    proxy_code: str  # the sending agency's code for the proxy
    action: str

    def check(self) -> None:
        check_event_id(self.registration_id)
        check_code(self.code)
        check_code(self.proxy_code, "proxy code")
        if self.action not in REGISTRATION_ACTIONS:
            raise InputError("a proxy registration's action is register or cancel", code=Code.MALFORMED, field="action")
        if self.code == self.proxy_code:
            raise InputError("a person is not their own proxy", code=Code.MALFORMED, field="proxy_code")


@dataclass(frozen=True)
class ProxyCancelled(Message):
    """The hub tells the agency that registered a proxy that another agency cancelled it (issue 19)."""

    kind: ClassVar[str] = "proxy_cancelled"
    code: str  # the registering agency's own code for the person, as it registered them
    proxy_code: str  # its own code for the proxy

    def check(self) -> None:
        check_code(self.code)
        check_code(self.proxy_code, "proxy code")
        if self.code == self.proxy_code:
            raise InputError("a person is not their own proxy", code=Code.MALFORMED, field="proxy_code")
