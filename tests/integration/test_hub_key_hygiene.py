"""Key hygiene of agencies in linkage hub mode (issue 19, docs/linkage.md "Key hygiene"): no national secret and
no national join key at an agency.

Threats: an insider with one agency's whole data directory and secrets (no national pseudonym secret to hold),
and two colluding insiders at two agencies joining their data on a value both hold for the same person (the
flag map's key, one value nationally, is never kept: each agency keeps its own one-way held value).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from ledger.app import Actor
from ledger.errors import ConfigurationError
from ledger.hub.heads import MapHeads
from ledger.hub.log import open_hub_store
from ledger.linkage.person_keys import held_key
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import agency_map_keys
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_entry, hub_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number
from tests.support.postgres import temp_database


@pytest.fixture
def mapped(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    """A, B, C in hub mode, each on its own database; the hub running its flag map honestly."""
    with ExitStack() as stack:
        if backend is None:
            urls: dict[str, str | None] = {}
            hub_url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
        else:
            urls = {c: stack.enter_context(temp_database()) for c in (A, B, C)}
            hub_url = stack.enter_context(temp_database())
        store = open_hub_store(hub_url, "hub-1")
        world = hub_nodes(make_node, store, (A, B, C), urls, heads=MapHeads)
        yield world
        world.close()
        store.close()


def _values(world: HubNodes, code: str) -> list[bytes]:
    """Every value in every row of the node's database (operational tables and views), as bytes."""
    engine = world.nodes[code].engine
    meta = MetaData()
    meta.reflect(engine)
    found: list[bytes] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for v in row:
                    if isinstance(v, (bytes, memoryview)):
                        found.append(bytes(v))
                    elif v is not None:
                        found.append(str(v).encode())
    return found


def _held(world: HubNodes, code: str) -> dict[str, bytes]:
    with world.nodes[code].engine.connect() as conn:
        rows = conn.execute(select(agency_map_keys.c.code, agency_map_keys.c.map_key)).all()
    return {str(c): bytes(k) for c, k in rows}


def test_two_agencies_hold_different_values_for_one_person_and_cannot_join(mapped: HubNodes) -> None:
    """Two colluding insiders at A and B, each with their agency's whole database: the flag map's key for X is
    one value nationally, but neither database holds it (raw or in hex) — each keeps its own held value, A's
    differs from B's, and no value in A's database hashes to any of B's (nor the other way), so the two cannot
    join their rows on anything the map gave them. The map still works: B sees its flag under the hub's heads,
    C's query about flagged X is held at A for staff and Y, unflagged, is answered automatically through a
    checked decision — with no refusal and no incident."""
    world = mapped
    x, y = individual_number(), individual_number()
    for code in (A, B):
        world.bridges[code].file_person(x)
    world.bridges[A].file_person(y)
    world.settle()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.settle()
    heads = world.hub.heads
    assert heads is not None
    national = set(heads.keys.values())  # the hub's map keys (person id → key): X's and Y's
    assert len(national) == 2

    held_a, held_b = _held(world, A), _held(world, B)
    assert len(held_a) == 2 and len(held_b) == 1
    (x_at_b,) = held_b.values()
    x_at_a = held_a[code_of(world.nodes[A].app.subject(x))]
    assert x_at_a != x_at_b  # one person, two agency-specific values
    assert {held_key(A, k) for k in national} == set(held_a.values())  # A's are A's own hashes of the hub's keys
    assert held_key(B, next(k for k in national if held_key(A, k) == x_at_a)) == x_at_b
    values_a, values_b = _values(world, A), _values(world, B)
    for key in national:  # the national key is nowhere at either agency
        for v in values_a + values_b:
            assert key not in v and key.hex().encode() not in v
    # a non-holder of the key cannot join: nothing in A's database, hashed as B hashes, is a value B holds
    assert not {held_key(B, v) for v in values_a if len(v) == 32} & set(held_b.values())
    assert not {held_key(A, v) for v in values_b if len(v) == 32} & set(held_a.values())
    assert not set(held_a.values()) & set(held_b.values())

    asked = world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    control = world.bridges[C].ask(Actor(C, "counter"), A, y, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "in_progress"
    assert world.bridges[C].query(control)["status"] == "answered"
    checks_a, checks_b = world.bridges[A].checks, world.bridges[B].checks
    assert checks_a is not None and checks_a.refusals == [] and checks_a.incidents == []
    assert checks_b is not None and checks_b.checked > 0 and checks_b.incidents == [] and checks_b.refusals == []


def test_a_hub_naming_another_key_is_refused_by_the_held_value(mapped: HubNodes) -> None:
    """Hub insider bending a person's key after registration: a decision naming a key whose held value is not
    the one A kept (here: B's held value, or the raw key of another person) is refused (``bad_proof``), so A
    answers by staff; the key A registered passes the same check."""
    from ledger.errors import IntegrityError

    world = mapped
    x, y = individual_number(), individual_number()
    world.bridges[A].file_person(x)
    world.bridges[A].file_person(y)
    world.settle()
    checks = world.bridges[A].checks
    heads = world.hub.heads
    assert checks is not None and heads is not None
    code_x = code_of(world.nodes[A].app.subject(x))
    key_x = next(k for k in heads.keys.values() if held_key(A, k) == checks.keys[code_x])
    assert checks._named_key(code_x, key_x) == key_x
    for wrong in (held_key(B, key_x), next(k for k in heads.keys.values() if k != key_x)):
        with pytest.raises(IntegrityError) as caught:
            checks._named_key(code_x, wrong)
        assert caught.value.code == "bad_proof"


def test_init_in_hub_mode_makes_no_national_pseudonym_secret(
    mapped: HubNodes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Insider with one agency's whole data directory and secrets: ``init --linkage-hub`` starts the agency in
    hub mode and never makes ``pseudonym.key`` (the national secret); a node in hub mode refuses to read it even
    where an older ``init`` left one, and refuses one given at ``init``. Shared mode still makes it (control)."""
    from ledger.runtime.bootstrap import open_node
    from tests.support.staff import run_in_process

    entry = tmp_path / "hub.json"
    entry.write_text(json.dumps(hub_entry(mapped.hub_keys, "2026-01-01T00:00:00+00:00")))
    base = ["init", "--agency", "132012", "--name", "D市", "--kind", "municipality", "--admin", "admin"]

    hub_dir = tmp_path / "d-hub"
    rc, _, err = run_in_process(["--data-dir", str(hub_dir), *base, "--linkage-hub", str(entry)], capsys)
    assert rc == 0, err
    assert not (hub_dir / "secrets" / "pseudonym.key").exists()
    assert (hub_dir / "secrets" / "cipher.key").exists()
    config = json.loads((hub_dir / "config.json").read_text())
    assert config["linkage"]["mode"] == "hub" and config["linkage"]["hub"]["party"] == "hub"
    node = open_node(hub_dir)
    try:
        with pytest.raises(ConfigurationError, match="hub mode"):
            node.keys.pseudonym_hash()
    finally:
        node.close()

    shared_dir = tmp_path / "d-shared"
    rc, _, err = run_in_process(["--data-dir", str(shared_dir), *base], capsys)
    assert rc == 0, err
    assert (shared_dir / "secrets" / "pseudonym.key").exists()  # the control: shared mode still has it

    secret = tmp_path / "national.key"
    secret.write_text("ab" * 32)
    refused_dir = tmp_path / "d-refused"
    rc, _, err = run_in_process(
        ["--data-dir", str(refused_dir), *base, "--linkage-hub", str(entry), "--pseudonym-key-file", str(secret)],
        capsys,
    )
    assert rc == 7 and "national pseudonym" in err
    assert not (refused_dir / "secrets" / "pseudonym.key").exists()

    older = mapped.nodes[A]  # made by a shared-mode init, then switched: the file is there, never read
    assert (older.config.data_dir / "secrets" / "pseudonym.key").exists()
    with pytest.raises(ConfigurationError, match="hub mode"):
        older.keys.pseudonym_hash()
