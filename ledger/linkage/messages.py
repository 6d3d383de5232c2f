"""What travels inside a sealed message between the hub and the agencies: one small JSON payload per kind.

The kind is inside the seal (ledger.linkage.sealing), so the broker sees none of these names. A person is named
by the *recipient's* code only: the querier's code goes to the hub, the provider's code comes from the hub,
each holder gets its own — no agency ever reads another's code, nor the hub's person id.

=====================  ==================  ==========================================================
kind                   from → to           holds
=====================  ==================  ==========================================================
``registration``       agency → hub        its code and the number (``ledger.linkage.codes.Registration``)
``number_link``        agency → hub        a number change: its codes for the old and the new number
``number_unlink``      agency → hub        the same link undone (only by the agency that made it)
``flag_change``        holder → hub        a flag set or released on the person it knows by its code
``provision_record``   provider → hub      a provision record, filed in the hub's sequence
``query``              querier → hub       its own request id, its code, the provider, procedure, item
``routed_query``       hub → provider      a fresh request id, the querier, the provider's code, and
                                           ``answer``: ``auto`` or ``staff`` — never why, never who holds
``consultation``       hub → holder        the provider's request id, the provider, the holder's code;
                                           not the querier (the liaison path)
``answer``             provider → hub,     a request id and a status (``answered``, ``in_progress``,
                       hub → querier       ``not_provided``; from the hub alone ``not_routed``) with the
                                           provider's data
=====================  ==================  ==========================================================

The consultation's kinds (advice, its relay, escalations, a staff answer) are in ``ledger.linkage.consultation``.

Decoding is strict: exactly the fields of the kind, each of its type, within the ledger's bounds; anything else
is an ``InputError`` the hub parks with its reason.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

from ledger.domain import bounds
from ledger.errors import Code, InputError
from ledger.linkage.codes import check_code
from ledger.linkage.names import check_event_id, check_party

__all__ = [
    "ANSWER_STATUSES",
    "KINDS",
    "AnswerMessage",
    "Consultation",
    "FlagChangeMessage",
    "LinkMessage",
    "Message",
    "QueryMessage",
    "RecordMessage",
    "RoutedQuery",
    "UnlinkMessage",
    "decode",
]

# not_routed: the hub's own answer to a query it could not route (parked), sealed at an answer's size
ANSWER_STATUSES = ("answered", "in_progress", "not_provided", "not_routed")
FLAGS = ("NON_DISCLOSURE", "NO_AUTO_RESPONSE")
DATA = bounds.Bound(3000)  # an answer's data: what fits the answer bucket (4 096) with its envelope

M = TypeVar("M", bound="Message")


class Message:
    """A payload of one kind: ``encode`` to JSON, ``check`` its fields (after decoding, and before sealing)."""

    kind: ClassVar[str]

    def encode(self) -> bytes:
        self.check()
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()  # type: ignore[call-overload]

    def check(self) -> None:
        raise NotImplementedError


def _item(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 200:
        raise InputError("legal_item must be the item number of table 2 (別表第二), 1-200", field="legal_item")
    return value


def _procedure(procedure: str, info_kind: str) -> None:
    bounds.check_text("procedure", procedure, bounds.PROCEDURE)
    bounds.check_text("info_kind", info_kind, bounds.INFO_KIND)


@dataclass(frozen=True)
class FlagChangeMessage(Message):
    kind: ClassVar[str] = "flag_change"
    change_id: str
    code: str
    flag: str
    action: str

    def check(self) -> None:
        check_event_id(self.change_id)
        check_code(self.code)
        if self.flag not in FLAGS or self.action not in ("set", "release"):
            raise InputError("a flag change sets or releases NON_DISCLOSURE or NO_AUTO_RESPONSE", field="flag")


@dataclass(frozen=True)
class LinkMessage(Message):
    """A number change the sender made (its four eyes are its own): its codes for the old and the new number,
    each registered first; the hub links the two person ids (``ledger.linkage.codes.link_numbers``)."""

    kind: ClassVar[str] = "number_link"
    old_code: str
    new_code: str

    def check(self) -> None:
        check_code(self.old_code, "old_code")
        check_code(self.new_code, "new_code")


@dataclass(frozen=True)
class UnlinkMessage(Message):
    """A number change undone by the agency that made it (its four eyes are its own): the same two codes; the
    hub removes the link between the two person ids (``ledger.hub.links``)."""

    kind: ClassVar[str] = "number_unlink"
    old_code: str
    new_code: str

    def check(self) -> None:
        check_code(self.old_code, "old_code")
        check_code(self.new_code, "new_code")


@dataclass(frozen=True)
class RecordMessage(Message):
    """A provision record as the provider reports it (the fields of ``ledger.hub.log.ProvisionRecord``)."""

    kind: ClassVar[str] = "provision_record"
    record_id: str
    code: str
    querier: str
    procedure: str
    legal_item: int
    info_kind: str
    outcome: str
    made_at: str

    def check(self) -> None:
        check_event_id(self.record_id)
        check_code(self.code)
        check_party(self.querier, "querier")
        _procedure(self.procedure, self.info_kind)
        _item(self.legal_item)
        bounds.check_text("outcome", self.outcome, bounds.ENUM)
        bounds.check_text("made_at", self.made_at, bounds.TIME)


@dataclass(frozen=True)
class QueryMessage(Message):
    kind: ClassVar[str] = "query"
    request_id: str  # the querier's own
    code: str  # the querier's code for the person
    provider: str
    procedure: str
    legal_item: int
    info_kind: str

    def check(self) -> None:
        check_event_id(self.request_id)
        check_code(self.code)
        check_party(self.provider, "provider")
        _procedure(self.procedure, self.info_kind)
        _item(self.legal_item)


@dataclass(frozen=True)
class RoutedQuery(Message):
    kind: ClassVar[str] = "routed_query"
    request_id: str  # the hub's, fresh: not the querier's
    querier: str
    code: str  # the provider's code for the person; "" if the provider never registered them (it holds nothing)
    procedure: str
    legal_item: int
    info_kind: str
    answer: str  # "auto" or "staff": no reason, no holder

    def check(self) -> None:
        check_event_id(self.request_id)
        check_party(self.querier, "querier")
        if self.code:
            check_code(self.code)
        _procedure(self.procedure, self.info_kind)
        _item(self.legal_item)
        if self.answer not in ("auto", "staff"):
            raise InputError("a routed query is answered 'auto' or by 'staff'", field="answer")


@dataclass(frozen=True)
class Consultation(Message):
    kind: ClassVar[str] = "consultation"
    request_id: str  # the provider's request id (the one the provider's staff decide), not the querier's
    provider: str
    code: str  # the holder's code for the person
    procedure: str
    legal_item: int
    info_kind: str

    def check(self) -> None:
        check_event_id(self.request_id)
        check_party(self.provider, "provider")
        check_code(self.code)
        _procedure(self.procedure, self.info_kind)
        _item(self.legal_item)


@dataclass(frozen=True)
class AnswerMessage(Message):
    kind: ClassVar[str] = "answer"
    request_id: str  # from the provider: the hub's routed id; to the querier: the querier's own
    status: str
    data: str = ""

    def check(self) -> None:
        check_event_id(self.request_id)
        if self.status not in ANSWER_STATUSES:
            raise InputError(f"an answer's status is one of {', '.join(ANSWER_STATUSES)}", field="status")
        bounds.check_text("data", self.data, DATA)


_TO_HUB: tuple[type[Message], ...] = (
    FlagChangeMessage,
    LinkMessage,
    UnlinkMessage,
    RecordMessage,
    QueryMessage,
    AnswerMessage,
)
_FROM_HUB: tuple[type[Message], ...] = (RoutedQuery, Consultation)
KINDS: dict[str, type[Message]] = {m.kind: m for m in (*_TO_HUB, *_FROM_HUB)}


def decode(cls: type[M], payload: bytes) -> M:
    """The payload as ``cls``: JSON with exactly its fields, each of its type, checked; InputError otherwise."""
    try:
        data: Any = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise InputError(f"a {cls.kind} payload is not JSON", code=Code.MALFORMED) from None
    names = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    if not isinstance(data, dict) or set(data) != set(names):
        raise InputError(f"a {cls.kind} payload must hold exactly {sorted(names)}", code=Code.MALFORMED)
    for name, kind in names.items():
        want = int if kind in (int, "int") else str
        if not isinstance(data[name], want) or isinstance(data[name], bool):
            raise InputError(f"a {cls.kind} payload's {name} must be a {want.__name__}", code=Code.MALFORMED)
    message = cls(**data)
    message.check()
    return message
