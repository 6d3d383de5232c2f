"""The payloads inside the hub's sealed messages: strict decoding, so a malformed one is a ledger error the hub
parks with its reason (never a crash, never half-applied).

Threats: a peer agency or a broken sender (extra, missing or mistyped fields; a bool for a number; text past
its bound), and the perpetrator through the provider (a routed query or consultation carries no holder and no
reason, by construction of its fields).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, fields

import pytest

from ledger.errors import Code, InputError
from ledger.linkage.messages import (
    KINDS,
    AnswerMessage,
    Consultation,
    FlagChangeMessage,
    LinkMessage,
    QueryMessage,
    RecordMessage,
    RoutedQuery,
    decode,
)

CODE = "a" + "0" * 32
EXAMPLES = [
    FlagChangeMessage(uuid.uuid4().hex, CODE, "NON_DISCLOSURE", "set"),
    LinkMessage(CODE, "a" + "1" * 32),
    RecordMessage(uuid.uuid4().hex, CODE, "131032", "児童手当", 74, "地方税関係情報", "held", "2026-01-01T00:00:00Z"),
    QueryMessage(uuid.uuid4().hex, CODE, "131016", "児童手当", 74, "地方税関係情報"),
    RoutedQuery(uuid.uuid4().hex, "131032", "", "児童手当", 74, "地方税関係情報", "staff"),
    Consultation(uuid.uuid4().hex, "131016", CODE, "児童手当", 74, "地方税関係情報"),
    AnswerMessage(uuid.uuid4().hex, "in_progress"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.kind)
def test_each_kind_round_trips_and_refuses_anything_else(message: object) -> None:
    cls = type(message)
    assert decode(cls, message.encode()) == message  # type: ignore[attr-defined]
    good = asdict(message)  # type: ignore[call-overload]
    broken = [
        b"not json",
        json.dumps([good]).encode(),
        json.dumps({**good, "holder": "131024"}).encode(),  # a field the kind does not have
        json.dumps(dict(list(good.items())[1:])).encode(),  # its first field missing
    ]
    for name, value in good.items():
        broken.append(json.dumps({**good, name: True}).encode())  # a bool is neither text nor a number
        broken.append(json.dumps({**good, name: [value]}).encode())
    for payload in broken:
        with pytest.raises(InputError) as refused:
            decode(cls, payload)
        assert refused.value.code in (Code.MALFORMED, Code.INVALID_INPUT, Code.OVERSIZE)


def test_values_are_checked_not_only_types() -> None:
    q = asdict(EXAMPLES[2])
    for bad in (
        {"legal_item": 0},
        {"legal_item": 201},
        {"provider": "hub!"},
        {"code": "b" * 33},
        {"procedure": "x" * 201},
        {"request_id": "XYZ"},
    ):
        with pytest.raises(InputError):
            decode(QueryMessage, json.dumps({**q, **bad}).encode())
    with pytest.raises(InputError):
        decode(AnswerMessage, json.dumps({"request_id": uuid.uuid4().hex, "status": "held", "data": ""}).encode())
    with pytest.raises(InputError):
        decode(RoutedQuery, json.dumps({**asdict(EXAMPLES[3]), "answer": "flagged"}).encode())


def test_what_the_hub_tells_a_provider_or_a_holder_has_no_place_for_a_holder_or_a_reason() -> None:
    assert {f.name for f in fields(RoutedQuery)} == {
        "request_id",
        "querier",
        "code",
        "procedure",
        "legal_item",
        "info_kind",
        "answer",
    }
    assert {f.name for f in fields(Consultation)} == {
        "request_id",
        "provider",
        "code",
        "procedure",
        "legal_item",
        "info_kind",
    }  # no querier: the holder learns which request to advise on, not who asked
    assert set(KINDS) == {
        "flag_change",
        "number_link",
        "number_unlink",
        "provision_record",
        "query",
        "routed_query",
    } | {
        "consultation",
        "answer",
    }
