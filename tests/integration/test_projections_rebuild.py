"""Rebuild == incremental, and a crash between rows and tracking position loses or repeats nothing.

Histories are generated (hypothesis) from real ledger commands; the read models are compared table by
table after incremental processing in small pages and after a full (or single-projection) rebuild. Crashes
are real: an exception raised inside a handler part-way through a page, and a projector process killed with
SIGKILL while it works; afterwards the committed state must be exactly the pages before the crash, and
resuming must end where a rebuild ends. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select

from ledger.app import Actor
from ledger.errors import FlagLedgerError
from ledger.log.envelope import Envelope
from ledger.log.view_cipher import SEALED_PREFIX
from ledger.runtime.bootstrap import Node
from projections.base import Projection, Projector
from projections.registry import all_projections
from projections.view_reads import view_cipher
from projections.views import held_requests
from tests.conftest import SC, A, B, C
from tests.support.links import link, unlink
from tests.support.people import individual_number

AGENCIES = [A, B, C]
FLAG_SETS = [["NON_DISCLOSURE"], ["NO_AUTO_RESPONSE"], ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]]
Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(node: Node, *, opened: bool = False) -> Snapshot:
    """Every view row; ``opened``: sealed personal cells as their values (two nodes seal one value under
    different data keys, so only the opened cells compare across nodes)."""
    out: Snapshot = {}
    cipher = view_cipher(node) if opened else None
    with node.engine.connect() as conn:
        for p in node.projector.projections:
            for t in p.tables:
                order = list(t.primary_key.columns) or list(t.columns)
                rows = [tuple(r) for r in conn.execute(select(t).order_by(*order))]
                if cipher is not None:
                    names = [f"{t.name}.{c.name}" for c in t.columns]  # the associated data cells are sealed with
                    rows = [
                        tuple(
                            cipher.open(n, v) if isinstance(v, str) and v.startswith(SEALED_PREFIX) else v
                            for n, v in zip(names, row, strict=True)
                        )
                        for row in rows
                    ]
                    rows.sort(key=repr)  # sealed cells in a key ordered the rows: the opened ones order them
                out[t.name] = rows
    return out


person_index = st.integers(0, 3)
operations = st.one_of(
    st.tuples(st.just("query"), st.sampled_from(AGENCIES), st.sampled_from(AGENCIES), person_index),
    st.tuples(st.just("set"), st.sampled_from(AGENCIES), person_index, st.sampled_from(FLAG_SETS)),
    st.tuples(st.just("release"), st.sampled_from(AGENCIES), person_index, st.sampled_from(FLAG_SETS)),
    st.tuples(st.just("link"), st.sampled_from(AGENCIES), person_index),
    st.tuples(st.just("proxy"), person_index, person_index),
    st.tuples(st.just("cancel"), person_index, person_index),
    st.tuples(st.just("decide"), st.sampled_from(["provide", "refuse"])),
    st.tuples(st.just("body"), st.sampled_from(AGENCIES), person_index),
)


class World:
    """The people of a generated history; a number change replaces a person's current number."""

    def __init__(self, node: Node, seed: int = 7) -> None:
        import random

        self.node = node
        self.rng = random.Random(seed)
        self.people = [individual_number(self.rng) for _ in range(4)]
        self.links: dict[int, tuple[str, str]] = {}  # person → (linking agency, old number) of its active link

    def apply(self, op: tuple[Any, ...]) -> None:
        app, kind = self.node.app, op[0]
        try:
            if kind == "query":
                app.request_provision(
                    Actor(op[1], "counter"),
                    op[2],
                    self.people[op[3]],
                    legal_item=74,
                    procedure="児童手当",
                    info_kind="地方税関係情報",
                )
            elif kind in ("set", "release"):
                extra = {"kind": "release", "explanation": "explained"} if kind == "release" else {}
                rid = app.request_flags(Actor(op[1], "req"), self.people[op[2]], op[3], **extra)
                app.approve_request(Actor(op[1], "apr"), rid)
                app.execute_request(Actor(op[1], "op"), rid)
            elif kind == "link":  # a number change, or undoing it (a chain is refused: issue 18)
                done = self.links.pop(op[2], None)
                if done is None:
                    new = individual_number(self.rng)
                    link(app, op[1], self.people[op[2]], new)
                    self.links[op[2]] = (op[1], self.people[op[2]])
                    self.people[op[2]] = new
                else:
                    unlink(app, done[0], done[1])
                    self.people[op[2]] = done[1]
            elif kind == "proxy":
                app.register_proxy(Actor(A, "req"), self.people[op[1]], self.people[op[2]])
            elif kind == "cancel":
                app.cancel_proxy(Actor(A, "req"), self.people[op[1]], self.people[op[2]])
            elif kind == "decide":
                self.node.projector.catch_up()
                cipher = self.node.projector.cipher
                with self.node.engine.connect() as conn:
                    waiting = [(a, h.request_id) for a in AGENCIES for h in held_requests(conn, cipher, a)]
                if waiting:
                    agency, rid = waiting[0]
                    app.propose_decision(Actor(agency, "rev"), UUID(rid), op[1], "unknown")
                    app.approve_decision(
                        Actor(agency, "apr"), UUID(rid), app.provision_request(UUID(rid)).proposal_version
                    )
            else:
                app.send_body_request(Actor(SC, "req"), op[1], self.people[op[2]], ["NON_DISCLOSURE"])
        except FlagLedgerError:
            pass  # refused by a rule (already set, nothing to release, …): nothing was saved

    def history(self, n: int) -> None:
        for i in range(n):
            self.apply(("query", AGENCIES[i % 3], AGENCIES[(i + 1) % 3], i % 4))
            if i % 5 == 0:
                self.apply(("set" if i % 10 == 0 else "release", B, i % 4, FLAG_SETS[2]))
            if i % 7 == 0:
                self.apply(("proxy", i % 4, (i + 1) % 4))


def test_rebuild_equals_incremental_on_generated_histories(node: Node) -> None:
    world = World(node)
    names = [p.name for p in node.projector.projections]

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        ops=st.lists(operations, min_size=1, max_size=10),
        page=st.integers(1, 9),
        single=st.sampled_from(names),
    )
    def check(ops: list[tuple[Any, ...]], page: int, single: str) -> None:
        node.projector.page = page
        for op in ops:
            world.apply(op)
            node.projector.catch_up()
        incremental = snapshot(node)
        node.projector.page = 1000
        node.projector.rebuild([single])
        assert snapshot(node) == incremental, f"rebuilding {single} alone changed its rows"
        node.projector.rebuild()
        assert snapshot(node) == incremental

    check()


class Boom(Exception):
    pass


class Exploding(Projection):
    """Delegates to a real projection and raises once ``budget`` handler calls (shared) are used up."""

    def __init__(self, inner: Projection, budget: list[int]) -> None:
        self.inner, self.budget = inner, budget
        self.name, self.tables, self.topics = inner.name, inner.tables, inner.topics

    def handle(self, conn: Connection, event: Any, env: Envelope, position: int) -> None:
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise Boom(f"crash at position {position}")
        self.inner.handle(conn, event, env, position)


def committed_state_is_exactly_the_pages_before(node: Node, partial: Snapshot, positions: dict[str, int]) -> None:
    (at,) = set(positions.values())
    node.projector.reset()
    node.projector.catch_up(stop=at)
    assert snapshot(node) == partial, f"the state committed before the crash is not that of position {at}"


def test_an_exception_part_way_through_a_page_keeps_nothing_of_that_page(node: Node) -> None:
    World(node).history(25)
    node.projector.catch_up()
    expected = snapshot(node)
    node.projector.reset()
    budget = [40]
    crashing = Projector(node.app, node.engine, [Exploding(p, budget) for p in all_projections()], page=1000)
    try:
        crashing.catch_up()
        raise AssertionError("the handler should have crashed")
    except Boom:
        pass
    assert set(node.projector.positions().values()) == {0}
    assert all(rows == [] for rows in snapshot(node).values()), "rows of the failed page were kept"
    budget[0] = 120
    crashing.page = 7
    try:
        crashing.catch_up()
        raise AssertionError("the handler should have crashed")
    except Boom:
        pass
    positions, partial = node.projector.positions(), snapshot(node)
    assert 0 < min(positions.values()) < node.app.max_position()
    committed_state_is_exactly_the_pages_before(node, partial, positions)
    node.projector.catch_up()  # resume from there
    assert snapshot(node) == expected


SLOW_PROJECTOR = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ledger.runtime.bootstrap import open_node
    from projections.registry import all_projections

    class Slow:
        def __init__(self, inner):
            self.inner = inner
            self.name, self.tables, self.topics = inner.name, inner.tables, inner.topics
            self.schema_version = inner.schema_version  # (else its tables are recreated, and rebuilt, at open)
        def handle(self, conn, event, env, position):
            time.sleep(0.002)
            self.inner.handle(conn, event, env, position)

    node = open_node(Path(sys.argv[1]), projections=[Slow(p) for p in all_projections()])
    node.projector.page = 10
    print("ready", flush=True)
    node.projector.catch_up()
    print("finished", flush=True)
""")


def test_a_projector_killed_mid_page_resumes_exactly_once(node: Node, tmp_path: Path) -> None:
    World(node).history(40)
    node.projector.catch_up()
    expected = snapshot(node)
    node.projector.reset()
    script = tmp_path / "slow_projector.py"
    script.write_text(SLOW_PROJECTOR)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(node.config.data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while min(node.projector.positions().values()) == 0:
            assert time.monotonic() < deadline, "the projector process never committed a page"
            assert proc.poll() is None, "the projector process ended before it could be killed"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    positions, partial = node.projector.positions(), snapshot(node)
    assert 0 < min(positions.values()) < node.app.max_position(), "killed too late to test anything"
    node.projector.catch_up()  # resume after the kill
    assert snapshot(node) == expected
    committed_state_is_exactly_the_pages_before(node, partial, positions)


def test_a_rebuild_puts_back_the_connection_settings_it_changed(node: Node) -> None:
    """The rebuild's bulk SQLite settings (rarer WAL checkpoints, a bigger cache) end with it: every pooled
    connection afterwards checkpoints as usual, so no live write meets a 64 MB checkpoint."""
    from projections.base import BULK_PRAGMAS

    if node.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's own settings; a PostgreSQL rebuild changes none")
    seen: list[dict[str, int]] = []

    def progress(_: int, __: int) -> None:
        with node.engine.connect() as other:  # another connection of the pool: untouched during the rebuild
            seen.append({p: other.exec_driver_sql(f"PRAGMA {p}").scalar() for p, _ in BULK_PRAGMAS})

    with node.engine.connect() as conn:
        usual = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p, _ in BULK_PRAGMAS}
    assert usual != dict(BULK_PRAGMAS)
    node.projector.rebuild(progress=progress)
    assert seen and all(s == usual for s in seen)
    engine_pool = [node.engine.connect() for _ in range(3)]  # the rebuild's own connection is among them
    try:
        for conn in engine_pool:
            assert {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p, _ in BULK_PRAGMAS} == usual
    finally:
        for conn in engine_pool:
            conn.close()
