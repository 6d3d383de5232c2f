"""Shared fixtures: nodes on SQLite and on a throw-away PostgreSQL database, staff, and people."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.app import Actor
from ledger.app.credentials import KdfCost, set_kdf_cost
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from tests.support.people import individual_number
from tests.support.staff import activate_admin, enrol, password_of

__all__ = ["activate_admin", "enrol", "enrol_standard_staff", "password_of"]
from tests.support.hub_store import hub, leader_hub  # noqa: F401
from tests.support.node_template import NodeTemplates
from tests.support.postgres import temp_database
from tests.support.softhsm import file_keys, keys_backend, pkcs11_env, softhsm, suite_token  # noqa: F401

A, B, C = "131016", "131024", "131032"  # three Tokyo wards as municipalities A, B, C
SC = "SC-TOKYO"  # a spousal-violence support centre

DEFAULT_AGENCIES = (
    AgencySpec(A, "A市", "municipality"),
    AgencySpec(B, "B市", "municipality"),
    AgencySpec(C, "C市", "municipality"),
    AgencySpec(SC, "東京都配偶者暴力相談支援センター", "support_centre"),
)

STAFF_ROLES = {
    "req": ["requester"],
    "apr": ["approver"],
    "apr2": ["approver"],
    "op": ["operator"],
    "counter": ["counter"],
    "rev": ["reviewer"],
    "aud": ["auditor"],
}


def pytest_configure(config: pytest.Config) -> None:
    suite_token()  # FLAGLEDGER_TEST_KEYS=pkcs11: every node's keys in one fresh SoftHSM2 token (docs/keys.md)


# argon2id at its lowest cost in tests only (each test node activates about 30 credentials); a node uses
# ledger.app.credentials.KdfCost's defaults
set_kdf_cost(KdfCost(time_cost=1, memory_kib=8, parallelism=1))


@pytest.fixture(autouse=True)
def _own_session_files(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's command-line sessions (``flagledger login``) in its own directory, never the account's
    ~/.config; no token from the environment the suite was started in."""
    monkeypatch.setenv("FLAGLEDGER_CONFIG_DIR", str(tmp_path_factory.mktemp("flagledger-config")))
    monkeypatch.delenv("FLAGLEDGER_TOKEN", raising=False)


def enrol_standard_staff(node: Node, codes: tuple[str, ...] | None = None) -> None:
    """Enrol the same cast at each hosted agency: req, apr, apr2, op, counter, rev, aud — each activated with
    a generated password and unlocked in this test process, so commands run as them sign as them (approver and
    operator grants are approved by a second administrator, admin2: tests/support/staff.py)."""
    for code in codes or tuple(sorted(node.app.hosted)):
        admin = Actor(code, "admin")
        activate_admin(node, code)
        for who, roles in STAFF_ROLES.items():
            enrol(node, admin, who, roles)


# the standard node (DEFAULT_AGENCIES, the cast above) built once per test process, copied into each test
TEMPLATES = NodeTemplates(DEFAULT_AGENCIES, tuple(STAFF_ROLES), enrol_standard_staff)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the embedded SQLite default, or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
    else:
        with temp_database() as url:
            yield url


NodeFactory = Callable[..., Node]


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[NodeFactory]:
    """Build nodes in fresh data directories; every node made is closed at the end."""
    made: list[Node] = []
    copied = False  # at most one copy of the standard node per test (tests/support/node_template.py)

    def factory(
        agencies: tuple[AgencySpec, ...] = DEFAULT_AGENCIES,
        *,
        database_url: str | None = None,
        name: str = "node",
        staff: bool = True,
        encryption: bool = True,
        pseudonym_key_file: Path | None = None,
    ) -> Node:
        nonlocal copied
        data_dir = tmp_path / f"{name}-{len(made)}"
        standard = agencies == DEFAULT_AGENCIES and staff and encryption and pseudonym_key_file is None
        copy = TEMPLATES.copy(data_dir, database_url) if standard and not copied else None
        if copy is not None:
            copied = True
            made.append(copy)
            return copy
        node = init_node(
            data_dir,
            agencies,
            database_url=database_url,
            encryption=encryption,
            pseudonym_key_file=pseudonym_key_file,
        )
        made.append(node)
        if staff:
            enrol_standard_staff(node)
        return node

    yield factory
    for node in made:
        node.close()


@pytest.fixture
def node(make_node: NodeFactory, backend: str | None) -> Node:
    """A node hosting A, B, C and a support centre, with the standard staff, on each backend."""
    return make_node(database_url=backend)


@pytest.fixture
def sqlite_node(make_node: NodeFactory) -> Node:
    return make_node()


@pytest.fixture
def person() -> Callable[[], str]:
    rng = random.Random(20261125)
    return lambda: individual_number(rng)
