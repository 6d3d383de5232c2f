"""Protection-body requests (docs/bodies.md) as they travel through the hub (issue 19): a body asks a
municipality to set flags, and hears each step of the municipality's answer. The person is named by each
recipient's own code; request ids are fresh on the hub's side of each hop.

======================  ==========================  ==================================================
kind                    from → to                   holds
======================  ==========================  ==================================================
``body_request``        body → hub                  its own request id, its code, the municipality,
                                                    the flags, the reason
``routed_body_request`` hub → the municipality      the hub's request id, the body, the municipality's
                                                    code, the flags, the reason
``body_outcome``        municipality → hub,         a request id (the hub's from the municipality, the
                        hub → body                  body's own to the body), the step, the flag
                                                    request's kind and id, its flags, the time
======================  ==========================  ==================================================

The hub relays an outcome only from the municipality the request was routed to (``ledger.hub.body_requests``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ledger.domain import bounds
from ledger.domain.types import Reason, RequestKind, agency_code, parse_enum
from ledger.errors import Code, InputError
from ledger.linkage.codes import check_code
from ledger.linkage.messages import Message
from ledger.linkage.moves import split_flags
from ledger.linkage.names import check_event_id

__all__ = ["STEPS", "BodyOutcomeMessage", "BodyRequestMessage", "RoutedBodyRequest"]

# the steps of ledger.domain.bodies.OutcomeStatus (that module is an aggregate's: not imported here)
STEPS = ("requested", "approved", "rejected", "executed")


def _reason(reason: str) -> None:
    try:
        parse_enum(Reason, reason, "reason")
    except InputError as exc:
        raise InputError(str(exc), code=Code.MALFORMED, field="reason") from exc


@dataclass(frozen=True)
class BodyRequestMessage(Message):
    kind: ClassVar[str] = "body_request"
    request_id: str  # the body's own (its BodyRequest's id)
    code: str  # the body's code for the person
    municipality: str
    flags: str
    reason: str

    def check(self) -> None:
        check_event_id(self.request_id)
        check_code(self.code)
        agency_code(self.municipality, "municipality")
        split_flags(self.flags)
        _reason(self.reason)


@dataclass(frozen=True)
class RoutedBodyRequest(Message):
    kind: ClassVar[str] = "routed_body_request"
    request_id: str  # the hub's, fresh
    body: str
    code: str  # the municipality's own code for the person
    flags: str
    reason: str

    def check(self) -> None:
        check_event_id(self.request_id)
        agency_code(self.body, "body")
        check_code(self.code)
        split_flags(self.flags)
        _reason(self.reason)


@dataclass(frozen=True)
class BodyOutcomeMessage(Message):
    kind: ClassVar[str] = "body_outcome"
    request_id: str
    status: str
    request_kind: str
    flag_request: str  # the municipality's flag request id
    flags: str
    on: str

    def check(self) -> None:
        check_event_id(self.request_id)
        check_event_id(self.flag_request)
        if self.status not in STEPS:
            raise InputError(f"an outcome's step is one of {', '.join(STEPS)}", code=Code.MALFORMED, field="status")
        parse_enum(RequestKind, self.request_kind, "request_kind")
        split_flags(self.flags)
        bounds.check_text("on", self.on, bounds.TIME)
