"""The handover's and the body requests' kinds (ledger/linkage/moves.py, ledger/linkage/body_requests.py): each
round-trips, each is decoded strictly, and what the hub tells a new municipality has no place for a holder or
the municipality the person came from.

Threat: a peer agency or a broken sender (malformed fields parked, never applied); an insider at the new
municipality (nothing in a handover can name a holder).
"""

from __future__ import annotations

import uuid
from dataclasses import fields

import pytest

from ledger.errors import InputError
from ledger.linkage.body_requests import BodyOutcomeMessage, BodyRequestMessage, RoutedBodyRequest
from ledger.linkage.messages import Message, decode
from ledger.linkage.moves import (
    HandedOn,
    HandedOver,
    HandoverMessage,
    HandoverWithdrawn,
    LastHolderMessage,
    LastHolderWarned,
    MoveMessage,
    MoveRefused,
)
from ledger.linkage.proxy_registrations import ProxyCancelled

CODE = "a" + "0" * 32


def _id() -> str:
    return uuid.uuid4().hex


GOOD: list[Message] = [
    MoveMessage(_id(), CODE, "131016", "131024", "2026-04-01"),
    MoveMessage(_id(), CODE, "", "131024", "2026-04-01"),
    HandoverMessage(_id(), CODE, "2026-04-01", "NON_DISCLOSURE,NO_AUTO_RESPONSE"),
    HandedOver(_id(), CODE, "131024", "NON_DISCLOSURE"),
    HandoverWithdrawn(CODE),
    HandedOn(_id(), CODE, "NON_DISCLOSURE"),
    MoveRefused(_id(), CODE, "not_residence"),
    ProxyCancelled(CODE, "a" + "1" * 32),
    LastHolderMessage(_id(), CODE, "NO_AUTO_RESPONSE"),
    LastHolderWarned(_id(), CODE, "NON_DISCLOSURE,NO_AUTO_RESPONSE"),
    BodyRequestMessage(_id(), CODE, "131024", "NO_AUTO_RESPONSE", "stalking"),
    RoutedBodyRequest(_id(), "SC-TOKYO", CODE, "NO_AUTO_RESPONSE", "dv"),
    BodyOutcomeMessage(_id(), "executed", "set", _id(), "NO_AUTO_RESPONSE", "2026-04-01T00:00:00+00:00"),
]


@pytest.mark.parametrize("message", GOOD, ids=lambda m: type(m).kind)
def test_each_kind_round_trips(message: Message) -> None:
    assert decode(type(message), message.encode()) == message


BAD: list[tuple[type[Message], dict[str, str]]] = [
    (MoveMessage, {"from_agency": "131024"}),  # from = to
    (MoveMessage, {"moved_on": "2026-13-01"}),
    (MoveMessage, {"to_agency": "x"}),
    (HandoverMessage, {"flags": ""}),
    (HandoverMessage, {"flags": "NO_AUTO_RESPONSE,NON_DISCLOSURE"}),  # not sorted
    (HandoverMessage, {"flags": "NON_DISCLOSURE,NON_DISCLOSURE"}),
    (HandedOver, {"flags": "PROXY"}),
    (HandoverWithdrawn, {"code": "131024"}),  # an agency, not a code
    (LastHolderMessage, {"flags": ""}),
    (HandedOn, {"flags": "NON_DISCLOSURE,PROXY"}),
    (LastHolderWarned, {"warning_id": "W1"}),
    (MoveRefused, {"reason": "wrong_agency"}),  # only not_residence is reported (a peer learns nothing)
    (ProxyCancelled, {"proxy_code": CODE}),  # a person is not their own proxy
    (ProxyCancelled, {"code": "131024"}),  # an agency, not a code
    (BodyRequestMessage, {"reason": "curiosity"}),
    (BodyOutcomeMessage, {"status": "done"}),
    (BodyOutcomeMessage, {"request_kind": "erase"}),
]


@pytest.mark.parametrize(("cls", "change"), BAD, ids=[f"{c.kind}-{next(iter(v))}" for c, v in BAD])
def test_a_bad_field_is_refused(cls: type[Message], change: dict[str, str]) -> None:
    good = next(m for m in GOOD if type(m) is cls)
    import json

    payload = json.loads(good.encode()) | change
    with pytest.raises(InputError):
        decode(cls, json.dumps(payload).encode())


def test_an_extra_or_missing_field_is_refused() -> None:
    import json

    payload = json.loads(GOOD[2].encode())
    with pytest.raises(InputError):
        decode(HandoverMessage, json.dumps(payload | {"holder": "131016"}).encode())
    with pytest.raises(InputError):
        decode(HandoverMessage, json.dumps({k: v for k, v in payload.items() if k != "flags"}).encode())


def test_a_handover_has_no_place_for_a_holder_or_an_origin() -> None:
    assert {f.name for f in fields(HandoverMessage)} == {"handover_id", "code", "moved_on", "flags"}
    assert {f.name for f in fields(HandoverWithdrawn)} == {"code"}  # not where she went, nor who said so
    assert {f.name for f in fields(HandedOn)} == {"move_id", "code", "flags"}  # not where she moved on to
    assert {f.name for f in fields(LastHolderWarned)} == {"warning_id", "code", "flags"}  # not who releases
    assert {f.name for f in fields(MoveRefused)} == {"move_id", "code", "reason"}  # not where she lives, nor who holds
    assert {f.name for f in fields(ProxyCancelled)} == {"code", "proxy_code"}  # not who cancelled, nor why
    assert {f.name for f in fields(RoutedBodyRequest)} == {"request_id", "body", "code", "flags", "reason"}
