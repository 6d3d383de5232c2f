"""Agency-specific codes (機関別符号) and the hub's map (issue 19, docs/linkage.md).

Threats: an insider with one agency's whole data directory and secrets, who knows a person's number (the
perpetrator does) and wants to learn whether another agency protects them; the perpetrator at the portal; a
copy of the hub's map (it must hold no number).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict

import pytest

from ledger.errors import Code, InputError, IntegrityError, NotFoundError, PermissionDenied, StateConflict
from ledger.linkage.codes import (
    MemoryCodeMap,
    Registration,
    agency_code,
    codes_of,
    holders_of,
    hub_person,
    link_numbers,
    persons_of,
    portal_code,
    register,
    translate,
)
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import seal, unseal
from tests.support.linkage import Party, sender_keys
from tests.support.people import individual_number

A, B, C, SC = "131016", "131024", "131032", "SC-TOKYO"
AGENCIES = (A, B, C, SC)


@pytest.fixture
def keys() -> dict[str, bytes]:
    """Every party's own code secret, each made by that party alone."""
    return {name: secrets.token_bytes(32) for name in (*AGENCIES, PORTAL, "hub")}


def test_an_insider_with_agency_a_keys_cannot_compute_agency_b_code(keys: dict[str, bytes]) -> None:
    """Threat: an insider with A's whole data directory and the victim's number. Everything A holds yields A's
    code, never B's (today's national pseudonym secret is the same at every agency: that is what this replaces)."""
    x = individual_number()
    b_code = agency_code(keys[B], B, x)
    insider_guesses = {
        agency_code(keys[A], B, x),  # A's secret, B's name
        agency_code(keys[A], A, x),  # A's own code
        portal_code(keys[A], x),
        hub_person(keys[A], x),
        agency_code(keys[A] + keys[A], B, x),
    }
    assert b_code not in insider_guesses
    # B's code moves with B's secret alone: nothing outside B's key store determines it
    assert agency_code(secrets.token_bytes(32), B, x) != b_code
    assert agency_code(keys[B], B, x) == b_code  # stable for B


def test_codes_differ_per_agency_and_from_the_portal_and_the_hub(keys: dict[str, bytes]) -> None:
    """Threat: the perpetrator at the portal, and a peer joining records by code: the portal's code for a
    person equals no agency's code, and no two agencies share one (200 people)."""
    seen: dict[str, tuple[str, str]] = {}
    for _ in range(200):
        x = individual_number()
        derived = {a: agency_code(keys[a], a, x) for a in AGENCIES}
        derived[PORTAL] = portal_code(keys[PORTAL], x)
        derived["hub"] = hub_person(keys["hub"], x)
        assert len(set(derived.values())) == len(derived)
        for who, code in derived.items():
            assert code not in seen, (who, seen.get(code))
            seen[code] = (who, x)
        assert derived[PORTAL][0] == "m" and derived["hub"][0] == "h" and {derived[a][0] for a in AGENCIES} == {"a"}
        # the same construction under one secret still differs by role: labels separate them
        same = keys[A]
        assert agency_code(same, A, x) not in (portal_code(same, x), hub_person(same, x))


def test_bad_numbers_and_short_secrets_are_refused_without_echoing_the_number(keys: dict[str, bytes]) -> None:
    x = individual_number()
    wrong = x[:11] + str((int(x[11]) + 1) % 10)
    with pytest.raises(InputError) as bad:
        agency_code(keys[A], A, wrong)
    assert wrong not in str(bad.value)
    with pytest.raises(InputError) as short:
        agency_code(b"short", A, x)
    assert short.value.code == Code.CONFIGURATION
    with pytest.raises(InputError):
        agency_code(keys[A], "hub\x00", x)
    assert x not in repr(Registration(A, agency_code(keys[A], A, x), x))


def registered(store: MemoryCodeMap, keys: dict[str, bytes], holder: str, number: str) -> str:
    code = portal_code(keys[PORTAL], number) if holder == PORTAL else agency_code(keys[holder], holder, number)
    payload = Registration(holder, code, number).encode()  # what travels, sealed to the hub
    register(store, keys["hub"], Registration.decode(payload))
    return code


def test_the_hub_maps_one_agency_code_to_another_and_keeps_no_number(keys: dict[str, bytes]) -> None:
    """Threat: a copy of the hub's map (an insider at the hub's storage): it holds codes and person ids, never
    a number; and a querier gets nothing for an agency that never registered the person."""
    store = MemoryCodeMap()
    x, y = individual_number(), individual_number()
    a_x, b_x = registered(store, keys, A, x), registered(store, keys, B, x)
    registered(store, keys, PORTAL, x)
    a_y = registered(store, keys, A, y)
    assert translate(store, B, b_x, A) == [a_x]
    assert translate(store, A, a_x, B) == [b_x]
    assert translate(store, A, a_y, B) == []  # B holds nothing on Y
    assert holders_of(store, store.person(A, a_x) or "") == {A, B, PORTAL}
    with pytest.raises(NotFoundError):
        translate(store, C, agency_code(keys[C], C, x), A)
    contents = repr(asdict(store))
    for number in (x, y):
        assert number not in contents


def test_one_code_names_one_person_per_holder(keys: dict[str, bytes]) -> None:
    """Threat: a peer agency (or a mistake) binding its code for one person to another person's number, which
    would route queries about one person to another's records."""
    store = MemoryCodeMap()
    x, y = individual_number(), individual_number()
    a_x = registered(store, keys, A, x)
    registered(store, keys, A, x)  # again: no-op
    with pytest.raises(StateConflict):
        register(store, keys["hub"], Registration(A, a_x, y))
    with pytest.raises(StateConflict):
        register(store, keys["hub"], Registration(A, agency_code(secrets.token_bytes(32), A, x), x))
    for junk in (b"", b"[]", b'{"holder": "131016"}', b'{"holder": "131016", "code": "zz", "number": "1"}'):
        with pytest.raises(InputError):
            Registration.decode(junk)


def test_a_number_change_links_at_the_hub_and_carries_every_holder(keys: dict[str, bytes]) -> None:
    """Threat: the perpetrator and the re-relocation leak — after X's number changes, a query under the new
    number must still reach the holders who know X under the old one; chains only, no loops."""
    store = MemoryCodeMap()
    old, new, newer = individual_number(), individual_number(), individual_number()
    b_old = registered(store, keys, B, old)  # B protects X under the old number
    a_old = registered(store, keys, A, old)
    a_new, a_newer = registered(store, keys, A, new), registered(store, keys, A, newer)
    assert translate(store, A, a_new, B) == []
    link_numbers(store, A, a_old, a_new)
    link_numbers(store, A, a_old, a_new)  # the same link again: no-op
    assert translate(store, A, a_new, B) == [b_old]
    link_numbers(store, A, a_new, a_newer)
    person = store.person(A, a_newer) or ""
    assert persons_of(store, person) == [hub_person(keys["hub"], n) for n in (old, new, newer)]
    assert codes_of(store, A, person) == [a_old, a_new, a_newer]
    assert holders_of(store, person, among=[B, C]) == {B}
    for bad in ((a_newer, a_old), (a_old, a_newer), (a_new, a_new)):
        with pytest.raises(StateConflict) as refused:
            link_numbers(store, A, *bad)
        assert refused.value.code == Code.LINK_CONFLICT


def test_the_number_crosses_to_the_hub_only_sealed_to_it(keys: dict[str, bytes]) -> None:
    """Threat: the broker operator and a peer agency reading the hub's topic: the registration, the one message
    that carries a number, is sealed to the hub; only the hub's key opens it, and what the hub keeps after
    registering holds no number."""
    a, b, hub = Party(A), Party(B), Party(HUB)
    x = individual_number()
    code = agency_code(keys[A], A, x)
    wire = seal(
        a.signer, hub.sealing.public_key(), HUB, uuid.uuid4().hex, "registration", Registration(A, code, x).encode()
    )
    assert x.encode() not in wire and code.encode() not in wire
    keys_of = sender_keys(a, b, hub)
    with pytest.raises(IntegrityError):
        unseal(b.sealing, HUB, wire, keys_of)  # a peer that reads the hub's topic
    opened = unseal(hub.sealing, HUB, wire, keys_of)
    store = MemoryCodeMap()
    registration = Registration.sent_by(opened.sender, opened.payload)
    person = register(store, keys["hub"], registration)
    assert store.person(A, code) == person and x not in repr(asdict(store))


def test_a_peer_cannot_register_codes_in_another_agency_name(keys: dict[str, bytes]) -> None:
    """Threat: a peer agency filing a code in A's name at the hub, so that queries routed to A by that code
    would reach records of the peer's choosing."""
    x = individual_number()
    payload = Registration(A, agency_code(keys[B], A, x), x).encode()
    with pytest.raises(PermissionDenied) as refused:
        Registration.sent_by(B, payload)
    assert refused.value.code == Code.WRONG_AGENCY
    assert Registration.sent_by(A, payload).holder == A
