"""An agency's approved erasure as it travels to the hub (issue 22, docs/erasure.md "the hub and the portal").

``erasure`` (agency → hub, sealed and signed by the agency like every message): the agency's own request id and
its own code for the person. It carries no number, no reason and no approver: the approval is the agency's
four eyes, recorded in its own log (``ErasureRequest.Erased``, ``ErasureNotice.Published``); the hub needs only
to know *whose* records to shred and *for whom*. The hub takes it only from the agency whose code it is
(``ledger.hub.erasure``) and shreds only what that agency sent it — never another agency's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ledger.linkage.codes import check_code
from ledger.linkage.messages import Message
from ledger.linkage.names import check_event_id

__all__ = ["ErasureMessage"]


@dataclass(frozen=True)
class ErasureMessage(Message):
    """The erasing agency's request id (32 hex digits) and its code for the person."""

    kind: ClassVar[str] = "erasure"
    erasure_id: str
    code: str

    def check(self) -> None:
        check_event_id(self.erasure_id)
        check_code(self.code)
