"""Reads of the hub's database by a person, on SQLite and PostgreSQL: recorded before they happen, or not done;
and the hub's person-id secret taken from a key store.

Threats: a hub insider reading the hub's tables without a trace (an administrator, a DBA using the hub's
tools); an operator's misconfiguration of the person-id secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.errors import ConfigurationError, InputError, StorageError
from ledger.hub.inspect import accesses, inspect_table
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.person_ids import HUB_PERSON_KEY, KeyStorePersonIds, SecretSource, ensure_person_key
from ledger.linkage.codes import Registration, agency_code, hub_person, register
from ledger.runtime.keystore import FileKeyStore
from tests.support.memory_keystore import MemoryKeyStore
from tests.support.people import individual_number

A = "131016"
NOW = "2026-12-07T05:00:00+00:00"


@pytest.fixture
def store(backend: str | None, tmp_path: Path) -> Iterator[HubStore]:
    hub = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend is None else backend, "hub")
    yield hub
    hub.close()


def test_every_read_is_recorded_first_and_a_read_that_cannot_be_recorded_is_not_done(store: HubStore) -> None:
    """Hub insider: each table read leaves who, when, why and what; bad input or a failing record: no read."""
    keys = MemoryKeyStore()
    ensure_person_key(keys)
    ids = KeyStorePersonIds(keys)
    x = individual_number()
    register(store.codes, ids, Registration(A, agency_code(b"a" * 32, A, x), x))
    when = lambda: datetime.fromisoformat(NOW)  # noqa: E731
    [row] = inspect_table(store.engine, "dba-1", "ticket 42", "hub_codes", when)
    assert row["person"] == ids(x) == hub_person(bytes.fromhex(keys.get(HUB_PERSON_KEY)), x)
    for bad in (("", "ticket", "hub_codes"), ("dba-1", "", "hub_codes"), ("dba-1", "x" * 201, "hub_codes")):
        with pytest.raises(InputError):
            inspect_table(store.engine, *bad)
    with pytest.raises(InputError):
        inspect_table(store.engine, "dba-1", "ticket 42", "alembic_version")  # not the hub's
    assert [(a.at, a.who, a.reason, a.what) for a in accesses(store.engine, "dba-2", "review", when)] == [
        (NOW, "dba-1", "ticket 42", "hub_codes"),
        (NOW, "dba-2", "review", "hub_access"),
    ]
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE hub_access"))
    with pytest.raises(StorageError):  # the record cannot be written: the codes are not read
        inspect_table(store.engine, "dba-1", "ticket 43", "hub_codes")


def test_the_person_id_secret_comes_from_the_key_store() -> None:
    """Operator's misconfiguration: a secret that is no hex, or missing, is a configuration error, not a
    person id under some other key; an existing secret is never replaced."""
    keys = MemoryKeyStore()
    with pytest.raises(ConfigurationError):
        KeyStorePersonIds(keys)(individual_number())
    keys.create(HUB_PERSON_KEY, "not hex")
    with pytest.raises(ConfigurationError):
        KeyStorePersonIds(keys)(individual_number())
    keys.replace(HUB_PERSON_KEY, "ab" * 32)
    ensure_person_key(keys)
    assert keys.get(HUB_PERSON_KEY) == "ab" * 32


def test_the_node_s_file_key_store_serves_the_hub(tmp_path: Path) -> None:
    """Hub insider, shell user: the secret lives in the key store (a 0600 file with the backend the node ships,
    a device with another), not in the loop's keys; the node's key store is a source the hub takes as it is."""
    store: SecretSource = FileKeyStore(tmp_path / "secrets")
    ensure_person_key(store)
    x = individual_number()
    assert KeyStorePersonIds(store)(x) == hub_person(bytes.fromhex(store.get(HUB_PERSON_KEY)), x)
    assert (tmp_path / "secrets" / HUB_PERSON_KEY).stat().st_mode & 0o077 == 0
