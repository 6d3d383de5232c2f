"""The authority table covers every event type, classifies every field that names an agency or a key, and its
checks refuse a payload in another agency's name without echoing the payload.

Threat: **a peer agency**, trusted only for its own acts on its own streams. A new event type, or a new field
naming an agency, must not slip past the table: these tests fail until it has a row (or the field a column).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

import ledger.domain
from ledger.domain.agencies import Agency
from ledger.domain.authority import (
    ANY_WRITER_TOPICS,
    END,
    NOT_OWNER,
    START,
    TABLE,
    NodeKind,
    Writer,
    append_violation,
    markdown,
    payload_violation,
)
from ledger.domain.base import LedgerAggregate
from ledger.domain.keys import KeyRegistry

A, B = "131016", "131024"
ROOT = Path(__file__).resolve().parents[2]
# field names that name an agency or a signing key: each must be in one of a row's three field lists
# (`code` names the agency only in Agency.*: AgencyHold.Placed's `code` is a reason code)
AGENCY_NAMING = {
    "agency",
    "municipality",
    "querier",
    "holders",
    "remote_agency",
    "held",
    "key_id",
    "provider",
    "body",
    "origin",
    "signer",
}


def event_classes() -> dict[str, type]:
    """topic → event class, for every event an aggregate of ledger/domain can record."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(ledger.domain.__path__):
        module = importlib.import_module(f"ledger.domain.{info.name}")
        for agg in vars(module).values():
            if not (isinstance(agg, type) and issubclass(agg, LedgerAggregate) and agg.__module__ == module.__name__):
                continue
            for name, ev in vars(agg).items():
                if isinstance(ev, type) and issubclass(ev, Aggregate.Event) and name not in ("Event", "Created"):
                    found[get_topic(ev)] = ev
    return found


def aggregate_of(topic: str) -> type:
    module, cls = topic.split(":")[0], topic.split(":")[1].split(".")[0]
    agg: type = getattr(importlib.import_module(module), cls)
    return agg


def test_every_event_type_in_the_domain_has_exactly_one_row() -> None:
    events = event_classes()
    assert len(events) >= 40, "the domain's event classes were not found"
    missing = sorted(set(events) - set(TABLE))
    assert not missing, f"event types without a row in ledger/domain/authority.py: {missing}"
    stale = sorted(set(TABLE) - set(events))
    assert not stale, f"rows naming no event type of ledger/domain: {stale}"


def test_the_shared_column_is_the_aggregates_own() -> None:
    for topic, rule in TABLE.items():
        assert rule.shared == aggregate_of(topic).SHARED, topic


def test_every_field_naming_an_agency_or_a_key_is_a_decision() -> None:
    """A field naming an agency is either checked against the signer or listed as naming another agency."""
    for topic, ev in event_classes().items():
        rule = TABLE[topic]
        listed = {*rule.agency_fields, *rule.key_fields, *rule.other_agency_fields}
        fields = set(getattr(ev, "__annotations__", {}))
        assert listed <= fields, f"{topic}: the table names fields the event does not have: {listed - fields}"
        naming = AGENCY_NAMING | ({"code"} if ":Agency." in topic else set())
        unclassified = (fields & naming) - listed
        assert not unclassified, f"{topic}: fields {sorted(unclassified)} name an agency or key: add them to its row"


def test_owner_writes_everything_but_a_proxy_cancellation_and_two_party_rows_say_who() -> None:
    assert {"ledger.domain.identity:ProxyRegistration.Cancelled"} == ANY_WRITER_TOPICS
    for topic, rule in TABLE.items():
        assert rule.nodes == {NodeKind.AGENCY}, f"{topic}: only agency nodes exist today"
        assert rule.locally, f"{topic}: say who at the owning agency causes it"
        if any(f":{agg}." in topic for agg in ("ProvisionRequest", "BodyRequest", "ProbeNotice", "ProxyRegistration")):
            assert rule.party, f"{topic}: a two-party aggregate's row names the party that writes it"
        if rule.writer is Writer.ANY_AGENCY:
            assert rule.note, f"{topic}: a non-owner writer needs its reason in the row"


def test_a_payload_in_another_agencys_name_is_refused_naming_the_field_not_the_value() -> None:
    stream = uuid4()
    protection = "ledger.domain.flags:Protection.FlagsReleased"
    payload = {"agency": B, "subject": "p" + "7" * 32, "flags": ["NON_DISCLOSURE"]}
    bad = payload_violation(protection, A, payload, stream, 3)
    assert bad is not None and "`agency`" in bad and B not in bad and payload["subject"] not in bad
    assert payload_violation(protection, B, payload, stream, 3) is None
    assert payload_violation("ledger.domain.agencies:Agency.Registered", A, {"code": B}, stream, 1) is not None


def test_key_events_name_only_the_signers_own_keys() -> None:
    revoked = "ledger.domain.keys:KeyRegistry.KeyRevoked"
    assert payload_violation(revoked, A, {"key_id": f"{B}:00ff00ff00ff00ff"}, uuid4(), 4) is not None
    assert payload_violation(revoked, A, {"key_id": f"{A}:00ff00ff00ff00ff"}, uuid4(), 4) is None
    # a prefix that merely starts like the signer's code is another agency's
    assert payload_violation(revoked, A, {"key_id": f"{A}0:00ff00ff00ff00ff"}, uuid4(), 4) is not None
    assert payload_violation(revoked, A, {"key_id": 7}, uuid4(), 4) is not None


def test_a_registry_or_agency_stream_is_only_opened_at_the_signers_own_id() -> None:
    """A peer cannot squat another agency's registry id with a stream of its own (later, the real one would fork)."""
    opened = "ledger.domain.keys:KeyRegistry.Opened"
    assert payload_violation(opened, A, {"agency": A}, KeyRegistry.create_id(agency=A), 1) is None
    assert payload_violation(opened, A, {"agency": A}, KeyRegistry.create_id(agency=B), 1) is not None
    registered = "ledger.domain.agencies:Agency.Registered"
    assert payload_violation(registered, A, {"code": A}, Agency.create_id(code=B), 1) is not None


def test_only_the_owner_appends_and_only_events_of_the_streams_own_aggregate() -> None:
    """The proxy cancellation any agency may append goes on proxy registrations only: on another agency's
    protection it would take the place of the owner's next event on every node that took it first."""
    protection = (B, "ledger.domain.flags:Protection")
    released = "ledger.domain.flags:Protection.FlagsReleased"
    cancel = "ledger.domain.identity:ProxyRegistration.Cancelled"
    assert append_violation(released, B, protection) is None
    assert append_violation(released, A, protection) == NOT_OWNER
    assert append_violation(cancel, A, (B, "ledger.domain.identity:ProxyRegistration")) is None
    elsewhere = append_violation(cancel, A, protection)
    assert elsewhere is not None and "Protection" in elsewhere and B not in elsewhere
    assert append_violation(cancel, B, protection) is not None, "not even its owner mixes aggregates on a stream"
    assert append_violation(released, B, None) is not None, "a stream of unknown owner takes nothing"


def test_an_unknown_topic_has_no_writer() -> None:
    assert payload_violation("ledger.domain.flags:Protection.Erased", A, {}, uuid4(), 2) is not None


@pytest.mark.parametrize("path", ["docs/authority.md"])
def test_the_docs_list_the_table_as_the_code_has_it(path: str) -> None:
    """docs/authority.md holds `python -m ledger.domain.authority`'s output between its markers."""
    text = (ROOT / path).read_text()
    assert START in text and END in text, f"{path} lost its table markers"
    table = text.split(START, 1)[1].split(END, 1)[0]
    assert table == markdown(), f"{path} is out of date: `python -m ledger.domain.authority --write {path}`"
