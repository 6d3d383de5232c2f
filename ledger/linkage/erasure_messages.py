"""An agency's approved erasure as it travels to the hub (issue 22, docs/erasure.md "the hub and the portal").

``erasure`` (agency → hub, sealed and signed by the agency like every message): the agency's own request id and
its own code for the person. It carries no number, no reason and no approver: the approval is the agency's
four eyes, recorded in its own log (``ErasureRequest.Erased``, ``ErasureNotice.Published``); the hub needs only
to know *whose* records to shred and *for whom*. The hub takes it only from the agency whose code it is
(``ledger.hub.erasure``) and shreds only what that agency sent it — never another agency's records.

``page_erasure`` (hub → portal): the portal's code for the person and the hub's sequence number of the erasure.
The portal records it (``portal_erasures``) and drops every record of the person's page that the page the hub
sends next no longer holds; it names no agency, no record and no count, so the portal learns only that some
provider erased something about a card it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ledger.errors import Code, InputError
from ledger.linkage.codes import check_code
from ledger.linkage.messages import Message
from ledger.linkage.names import check_event_id

__all__ = ["ErasureMessage", "PageErasure"]


@dataclass(frozen=True)
class ErasureMessage(Message):
    """The erasing agency's request id (32 hex digits) and its code for the person."""

    kind: ClassVar[str] = "erasure"
    erasure_id: str
    code: str

    def check(self) -> None:
        check_event_id(self.erasure_id)
        check_code(self.code)


@dataclass(frozen=True)
class PageErasure(Message):
    """The hub to the portal: an erasure touched the person the portal knows by ``code`` (at hub sequence
    ``version``)."""

    kind: ClassVar[str] = "page_erasure"
    code: str
    version: int

    def check(self) -> None:
        check_code(self.code, "portal code")
        if not self.code.startswith("m"):
            raise InputError("a page erasure names the person by the portal's code", code=Code.MALFORMED, field="code")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 0:
            raise InputError("a page erasure's version is the hub's sequence", code=Code.MALFORMED, field="version")
