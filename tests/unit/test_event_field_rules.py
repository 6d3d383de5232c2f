"""Every field of every event has one rule, and each text field's rule is its bound: the bound itself passes,
one character more is refused naming the field and never echoing the value.

Threats: **a peer agency** (its events' fields are whatever it put in the payload: one that fits no view column
stopped every view of every PostgreSQL node) and **the perpetrator** (a value typed at an edge must not come
back in an error message: it may be an individual number).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

import ledger.domain
from ledger.domain import bounds
from ledger.domain.base import LedgerAggregate
from ledger.domain.event_fields import BASE_FIELDS, BY_EVENT, BY_NAME, check_event, event_key
from ledger.errors import InputError

SECRET = "1234-5678-9012"  # what must never come back in a message


def _aggregates() -> Iterator[type[LedgerAggregate]]:
    for mod in pkgutil.iter_modules(ledger.domain.__path__):
        importlib.import_module(f"ledger.domain.{mod.name}")

    def walk(cls: type) -> Iterator[type[LedgerAggregate]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    yield from walk(LedgerAggregate)


def event_classes() -> list[type]:
    out = []
    for agg in _aggregates():
        for value in vars(agg).values():
            if (
                isinstance(value, type)
                and issubclass(value, LedgerAggregate.Event)
                and dataclasses.is_dataclass(value)
                and value.__name__ not in ("Event", "Created")
            ):
                out.append(value)
    return out


def test_every_field_of_every_event_has_a_rule() -> None:
    """A field without a rule would reach the views unchecked from a peer (and is refused from one)."""
    missing = [
        f"{event_key(cls)}.{f.name}"
        for cls in event_classes()
        for f in dataclasses.fields(cls)
        if f.name not in BASE_FIELDS and f.name not in BY_EVENT.get(event_key(cls), {}) and f.name not in BY_NAME
    ]
    assert not missing, f"add rules in ledger/domain/event_fields.py for {missing}"
    assert len(event_classes()) >= 40  # the walk found the domain's events


def test_overrides_name_real_events_and_fields() -> None:
    classes = {event_key(c): {f.name for f in dataclasses.fields(c)} for c in event_classes()}
    for key, fields in BY_EVENT.items():
        assert key in classes and set(fields) <= classes[key], key


def _event(cls: type, **state: Any) -> Any:
    """An event object with a given state, as the mapper builds one from a peer's payload."""
    event: Any = object.__new__(cls)
    event.__dict__.update(state)
    return event


def _valid_received(**over: Any) -> Any:
    from ledger.domain.provision import ProvisionRequest

    state = dict(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=None,
        originator_topic="t",
        agency="131016",
        querier="131024",
        subject="p" + "0" * 32,
        legal_item=74,
        procedure="児童手当",
        info_kind="地方税関係情報",
        applicant="unknown",
    )
    state.update(over)
    return _event(ProvisionRequest.Received, **state)


TEXT_FIELDS = [
    ("procedure", bounds.PROCEDURE),
    ("info_kind", bounds.INFO_KIND),
]


@pytest.mark.parametrize(("field", "bound"), TEXT_FIELDS)
def test_a_text_field_at_its_bound_passes_and_one_more_is_oversize(field: str, bound: bounds.Bound) -> None:
    check_event(_valid_received(**{field: "あ" * bound.max}), peer=True)
    with pytest.raises(InputError) as caught:
        check_event(_valid_received(**{field: SECRET + "x" * bound.max}), peer=True)
    assert caught.value.code == "oversize" and caught.value.field == field
    assert field in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("rule_field", "bound"),
    [
        ("note", bounds.NOTE),
        ("notes", bounds.NOTE),
        ("explanation", bounds.NOTE),
        ("reason", bounds.NOTE),
        ("purpose", bounds.PURPOSE),
        ("what", bounds.WHAT),
        ("name", bounds.NAME),
        ("procedure", bounds.PROCEDURE),
        ("info_kind", bounds.INFO_KIND),
        ("out_dir", bounds.PATH),
    ],
)
def test_each_words_rule_is_its_bound(rule_field: str, bound: bounds.Bound) -> None:
    rule = BY_NAME[rule_field]
    rule(rule_field, "x" * bound.max)
    with pytest.raises(InputError) as caught:
        rule(rule_field, "x" * (bound.max + 1))
    assert caught.value.code == "oversize" and caught.value.field == rule_field


@pytest.mark.parametrize(
    ("rule_field", "at_bound"),
    [
        ("agency", "A" * bounds.AGENCY_CODE.max),
        ("querier", "131016"),
        ("by", "s" * bounds.STAFF_ID.max),
        ("subject", "p" + "a" * 32),
        ("key_id", "SC-TOKYO:" + "0" * 16),
        ("review_date", "2030-01-31"),
    ],
)
def test_identifiers_are_bounded_and_shaped(rule_field: str, at_bound: str) -> None:
    rule = BY_NAME[rule_field]
    rule(rule_field, at_bound)
    with pytest.raises(InputError) as too_long:
        rule(rule_field, at_bound + "0" * 100)
    assert too_long.value.code == "oversize"
    with pytest.raises(InputError) as wrong:
        rule(rule_field, "9 9/9")
    assert wrong.value.code == "schema" and "9 9/9" not in str(wrong.value)


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800", "\udcff", "line\x1bescape"])
def test_text_postgresql_cannot_store_is_refused(bad: str) -> None:
    """NUL and lone surrogates make every PostgreSQL write of the row fail; control characters are junk."""
    with pytest.raises(InputError) as caught:
        check_event(_valid_received(procedure=bad), peer=True)
    assert caught.value.field == "procedure"


def test_a_peer_must_send_every_field_and_no_other() -> None:
    state = vars(_valid_received())
    missing = dict(state)
    del missing["procedure"]
    with pytest.raises(InputError) as lacks:
        check_event(_event(type(_valid_received()), **missing), peer=True)
    assert lacks.value.code == "schema" and lacks.value.field == "procedure"
    extra_name = "x" * 5000
    with pytest.raises(InputError) as extra:
        check_event(_event(type(_valid_received()), **state, **{extra_name: 1}), peer=True)
    assert extra.value.code == "schema" and extra_name not in str(extra.value)


@pytest.mark.parametrize("item", [True, "74", 74.0, 0, 201, 10**30])
def test_legal_item_is_a_whole_number_of_table_two(item: object) -> None:
    """``true`` is not item 1, and a number PostgreSQL's integer column cannot hold is refused too."""
    with pytest.raises(InputError) as caught:
        check_event(_valid_received(legal_item=item), peer=True)
    assert caught.value.code == "schema" and caught.value.field == "legal_item"


def test_a_list_is_bounded_in_length_and_in_each_entry() -> None:
    from ledger.domain.provision import ProbeNotice

    base = dict(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=None,
        originator_topic="t",
        agency="131016",
        request_id=uuid4(),
        querier="131024",
        procedure="p",
        legal_item=1,
    )
    check_event(_event(ProbeNotice.Sent, holders=["131024"] * 64, **base), peer=True)
    with pytest.raises(InputError) as many:
        check_event(_event(ProbeNotice.Sent, holders=["131024"] * 65, **base), peer=True)
    assert many.value.code == "oversize" and many.value.field == "holders"
    with pytest.raises(InputError) as long_entry:
        check_event(_event(ProbeNotice.Sent, holders=["1" * 33], **base), peer=True)
    assert long_entry.value.code == "oversize"


def test_fit_text_makes_what_the_node_writes_itself_fit() -> None:
    """Why a node holds an agency quotes that agency's own header fields: recorded, never too long."""
    fitted = bounds.fit_text("topic \x00" + "x" * 5000, bounds.NOTE)
    assert len(fitted) == bounds.NOTE.max and "\x00" not in fitted
    bounds.check_text("reason", fitted, bounds.NOTE)
