"""The hub's code map: one contract, run on the in-memory map and on the database one (SQLite and PostgreSQL).

Threats: a copy of the hub's database (an insider at the hub's storage, a stolen backup) must hold no individual
number; a peer agency (or a bug) rebinding a code to another person would route queries about one person to
another's records; the perpetrator's re-relocation leak — after a number change, a query under the new number
must still reach the holders who know the person under the old one, and no chain may loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, select

from ledger.errors import Code, NotFoundError, StateConflict
from ledger.hub.codemap import SqlCodeMap
from ledger.hub.log import open_hub_store
from ledger.linkage.codes import (
    CodeMap,
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
from ledger.linkage.names import PORTAL
from tests.support.people import individual_number
from tests.support.postgres import temp_database

A, B, C = "131016", "131024", "131032"
HUB_SECRET = secrets.token_bytes(32)
SECRETS = {name: secrets.token_bytes(32) for name in (A, B, C, PORTAL)}


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[CodeMap, Engine | None, str | None]]:
    """(the map, its engine or None, the URL to reopen it or None) on each implementation."""
    if request.param == "memory":
        yield MemoryCodeMap(), None, None
        return
    sqlite = nullcontext(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    with temp_database() if request.param == "postgres" else sqlite as url:
        store = open_hub_store(url, "test")
        try:
            yield store.codes, store.engine, url
        finally:
            store.close()


def registered(store: CodeMap, holder: str, number: str) -> str:
    code = portal_code(SECRETS[PORTAL], number) if holder == PORTAL else agency_code(SECRETS[holder], holder, number)
    register(store, HUB_SECRET, Registration.decode(Registration(holder, code, number).encode()))
    return code


def everything_stored(store: CodeMap, engine: Engine | None) -> str:
    """All the map holds, as text: every row of every table, or the memory map's fields."""
    if engine is None:
        assert isinstance(store, MemoryCodeMap)
        return repr(asdict(store))
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return repr({name: conn.execute(select(t)).all() for name, t in meta.tables.items()})


def test_the_map_translates_between_agencies_and_holds_no_number(
    hub: tuple[CodeMap, Engine | None, str | None],
) -> None:
    """Threat: a copy of the hub's storage. It holds codes and person ids, never a number (nor a number's digits
    in any column); a querier gets nothing for an agency that never registered the person."""
    store, engine, _ = hub
    x, y = individual_number(), individual_number()
    a_x, b_x = registered(store, A, x), registered(store, B, x)
    registered(store, PORTAL, x)
    a_y = registered(store, A, y)
    assert translate(store, B, b_x, A) == [a_x]
    assert translate(store, A, a_x, B) == [b_x]
    assert translate(store, A, a_y, B) == []
    assert holders_of(store, store.person(A, a_x) or "") == {A, B, PORTAL}
    assert store.codes(hub_person(HUB_SECRET, x)) == {A: a_x, B: b_x, PORTAL: portal_code(SECRETS[PORTAL], x)}
    with pytest.raises(NotFoundError):
        translate(store, C, agency_code(SECRETS[C], C, x), A)
    contents = everything_stored(store, engine)
    assert hub_person(HUB_SECRET, x) in contents  # the check reads what is there
    for number in (x, y):
        assert number not in contents


def test_one_code_names_one_person_per_holder(hub: tuple[CodeMap, Engine | None, str | None]) -> None:
    """Threat: a peer agency or a bug binding a code to a second person, or a holder's second code for one
    person: refused by the rules and, underneath them, by the store itself — never overwritten."""
    store, _, _ = hub
    x, y = individual_number(), individual_number()
    a_x = registered(store, A, x)
    registered(store, A, x)  # again: no-op
    with pytest.raises(StateConflict):
        register(store, HUB_SECRET, Registration(A, a_x, y))
    with pytest.raises(StateConflict):
        register(store, HUB_SECRET, Registration(A, agency_code(secrets.token_bytes(32), A, x), x))
    # the store's own refusal, for a writer that skips the rules
    with pytest.raises(StateConflict):
        store.bind(A, a_x, hub_person(HUB_SECRET, y))
    with pytest.raises(StateConflict):
        store.bind(A, agency_code(secrets.token_bytes(32), A, x), hub_person(HUB_SECRET, x))
    assert store.person(A, a_x) == hub_person(HUB_SECRET, x)
    assert store.codes(hub_person(HUB_SECRET, x)) == {A: a_x}


def test_number_changes_chain_and_never_loop(hub: tuple[CodeMap, Engine | None, str | None]) -> None:
    """Threat: the re-relocation leak. After X's number changes twice, a query under the newest number reaches
    B, who knows X under the oldest; a link that would chain twice or loop is refused (``link_conflict``), by
    the rules and by the store."""
    store, _, _ = hub
    old, new, newer = individual_number(), individual_number(), individual_number()
    b_old = registered(store, B, old)
    a_old, a_new, a_newer = (registered(store, A, n) for n in (old, new, newer))
    assert translate(store, A, a_newer, B) == []
    link_numbers(store, A, a_old, a_new)
    link_numbers(store, A, a_old, a_new)  # the same link again: no-op
    link_numbers(store, A, a_new, a_newer)
    assert translate(store, A, a_newer, B) == [b_old]
    person = store.person(A, a_newer) or ""
    ids = [hub_person(HUB_SECRET, n) for n in (old, new, newer)]
    assert persons_of(store, person) == ids and persons_of(store, ids[0]) == ids
    assert store.previous(ids[1]) == ids[0] and store.next(ids[1]) == ids[2] and store.next(ids[2]) is None
    assert codes_of(store, A, person) == [a_old, a_new, a_newer]
    assert holders_of(store, person, among=[B, C]) == {B}
    for bad in ((a_newer, a_old), (a_old, a_newer), (a_new, a_new)):
        with pytest.raises(StateConflict) as refused:
            link_numbers(store, A, *bad)
        assert refused.value.code == Code.LINK_CONFLICT
    other = hub_person(HUB_SECRET, individual_number())
    for old_id, new_id in ((ids[0], other), (other, ids[1])):
        with pytest.raises(StateConflict) as refused:
            store.add_link(old_id, new_id)
        assert refused.value.code == Code.LINK_CONFLICT


def test_the_database_map_outlives_its_process(hub: tuple[CodeMap, Engine | None, str | None]) -> None:
    """Threat: a hub restart losing the map would make every agency's flag unreachable by code (queries would
    find no holder). What one process bound and linked, the next one opened on the database finds."""
    store, _, url = hub
    if url is None:
        pytest.skip("the in-memory map lives as long as its process, by design")
    old, new = individual_number(), individual_number()
    b_old, a_old, a_new = registered(store, B, old), registered(store, A, old), registered(store, A, new)
    link_numbers(store, A, a_old, a_new)
    again = open_hub_store(url, "after-restart")
    try:
        assert isinstance(again.codes, SqlCodeMap)
        assert translate(again.codes, A, a_new, B) == [b_old]
    finally:
        again.close()
