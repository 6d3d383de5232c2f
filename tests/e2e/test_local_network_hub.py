"""The linkage's topology on this machine (`network.py up --hub`, as Compose's hub-init, hub-a, hub-b and portal):
three agencies in hub mode, the portal, and the hub as two processes on one database — the lease decides who
sequences, and the standby takes over when the leader stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import pytest

from consumers.broker import wait_for
from ledger.app import Actor
from tests.e2e.test_local_network import load_network

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))
AGENCIES = ("131016", "131024", "SC-TOKYO")
LEASE_LOCK = 0x666C6862  # ledger/hub/sequencer.py: the lease's advisory lock, keyed by the log's name
LEASE_KEY = zlib.crc32(b"hub") & 0x7FFFFFFF


@pytest.fixture
def hub_network(tmp_path: Path) -> Iterator[tuple[ModuleType, Path, dict[str, Any]]]:
    from tests.support.postgres import ensure_server

    ensure_server()
    net = load_network()
    root = tmp_path / "net"
    state = net.up(root, progress=lambda _: None, hub=True, wait=240)
    try:
        yield net, root, state
    finally:
        if (root / "network.json").exists():
            net.down(root, progress=lambda _: None)


def lease_holders(state: dict[str, Any]) -> set[str]:
    """Which hub processes (hub-a, hub-b) hold the lease's advisory lock on the hub's database now."""
    import psycopg

    [db] = [d for d in state["databases"] if d.endswith("_hub")]
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        ports = {
            row[0]
            for row in conn.execute(
                "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = %s)",
                (LEASE_LOCK, LEASE_KEY, db),
            )
        }
    holders = set()
    for service in ("hub-a", "hub-b"):
        pid = state["nodes"][service]["pid"]
        try:
            local = {c.laddr.port for c in psutil.Process(pid).net_connections() if c.raddr and c.raddr.port == 5432}
        except psutil.NoSuchProcess:
            continue
        if local & ports:
            holders.add(service)
    return holders


def test_the_hub_pair_shares_one_lease_and_the_standby_takes_over(hub_network) -> None:
    """Administrator draining a machine, or the leader's machine failing: the agencies start in hub mode with the
    hub's published keys; hub-init imported the portal's and every agency's entry; exactly one of the hub's two
    processes holds the lease at a time; after SIGTERM to the leader the standby holds it, and the stopped
    leader reports what it did."""
    net, root, state = hub_network
    hub_entry = json.loads((root / "registry" / "linkage" / "hub.json").read_text())
    for n in (state["nodes"][c] for c in AGENCIES):
        config = json.loads((Path(n["env"]["FLAGLEDGER_DATA_DIR"]) / "config.json").read_text())
        assert config["linkage"]["mode"] == "hub" and config["linkage"]["hub"] == hub_entry
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_")}, **state["nodes"]["hub-a"]["env"]}
    listed = subprocess.run([FLAGLEDGER, "linkage", "directory", "list"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {json.loads(line)["party"] for line in listed.stdout.splitlines()} == {"hub", "portal", *AGENCIES}

    assert wait_for(lambda: len(lease_holders(state)) == 1, 90), "one hub process leads"
    [leader] = lease_holders(state)
    standby = ({"hub-a", "hub-b"} - {leader}).pop()
    net._stop(int(state["nodes"][leader]["pid"]))
    assert wait_for(lambda: lease_holders(state) == {standby}, 60), "the standby took the lease"
    report = (root / f"{leader}.log").read_text().strip().splitlines()[-1]
    assert json.loads(report)["stopped"] == "hub"
    assert psutil.Process(state["nodes"][standby]["pid"]).is_running()


@pytest.fixture
def story_network(tmp_path: Path) -> Iterator[tuple[ModuleType, Path, dict[str, Any]]]:
    """`network.py up --hub --story`: the three agencies, C and the pension office D, the hub pair and the portal."""
    from tests.support.postgres import ensure_server

    ensure_server()
    net = load_network()
    root = tmp_path / "net"
    state = net.up(root, progress=lambda _: None, hub=True, story=True, wait=300)
    try:
        yield net, root, state
    finally:
        if (root / "network.json").exists():
            net.down(root, progress=lambda _: None)


def _rows(state: dict[str, Any], code: str) -> str:
    """Every row of every table of ``code``'s PostgreSQL database, as text: what that agency stores."""
    import psycopg

    db = state["nodes"][code]["env"]["FLAGLEDGER_DATABASE_URL"].rsplit("/", 1)[1]
    out: list[str] = []
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={db}") as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            out += [str(r[0]) for r in conn.execute(f'SELECT t::text FROM "{table}" t')]
    return "\n".join(out)


def _hub_count(state: dict[str, Any], sql: str, *args: str) -> int:
    """A count over the hub's own database (as its operator could read it): what the hub has filed so far."""
    import psycopg

    [db] = [d for d in state["databases"] if d.endswith("_hub")]
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={db}") as conn:
        row = conn.execute(sql.encode(), args).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.long
def test_the_re_relocation_and_ds_query_run_through_the_real_hub(story_network, person) -> None:
    """Threat: the perpetrator Y applying at the pension office D (what D's counter hears); an insider at A, X's
    old municipality, with its whole database; the broker operator (Tansu: sealed traffic only). On real processes
    (Tansu, PostgreSQL, every party its own `flagledger node`): B protects X and records her 転入 from A; D's query
    about X is held for A's staff as D's and names no holder, D's query about Y is answered; X moves on B → C, C is
    asked under its own code naming neither B nor A, takes over, B hears C holds and releases; A's database and
    decoded log hold no B or C code for X and name neither."""
    from datetime import date

    from consumers import linkage_staff as staff
    from ledger.cli.demo_hub_story import names
    from ledger.cli.demo_hub_world import x_code
    from ledger.runtime.linkage import subject_of
    from projections import views
    from tests.e2e.test_local_network import eventually, staff_node
    from tests.support.staff import enrol

    net, root, state = story_network
    a_, b_, c_, d_ = AGENCIES[0], AGENCIES[1], "131032", "JPS-D"
    nar, nd = "NO_AUTO_RESPONSE", "NON_DISCLOSURE"
    basis = {"legal_item": 48, "procedure": "国民年金", "info_kind": "地方税関係情報"}  # D's pension row
    cast = {
        a_: {"rev": ["reviewer"]},
        b_: {"req": ["requester"], "apr": ["approver"], "op": ["operator"]},
        c_: {"req": ["requester"], "apr": ["approver"], "op": ["operator"]},
        d_: {"counter": ["counter"]},
    }
    x, y = person(), person()
    with (
        staff_node(net, root, a_) as a,
        staff_node(net, root, b_) as b,
        staff_node(net, root, c_) as c,
        staff_node(net, root, d_) as d,
    ):
        for node, code in ((a, a_), (b, b_), (c, c_), (d, d_)):
            password = Path(state["nodes"][code]["env"]["AGENCY_ADMIN_PASSWORD_FILE"]).read_text().strip()
            node.app.unlock(code, "admin", password)
            for who, roles in cast[code].items():
                enrol(node, Actor(code, "admin"), who, roles)

        def four_eyes(node: Any, code: str, kind: str = "set") -> None:
            rid = node.app.request_flags(Actor(code, "req"), x, [nar, nd], kind=kind, explanation="moved to C")
            node.app.approve_request(Actor(code, "apr"), rid)
            node.app.execute_request(Actor(code, "op"), rid)

        # each party's process sends on its own: wait for what the hub must hold before the next act needs it
        flags_at_hub = "SELECT count(*) FROM hub_flag_changes WHERE holder = %s"
        code_at_hub = "SELECT count(*) FROM hub_codes WHERE code = %s"
        four_eyes(b, b_)
        staff.file_person(a.app, a.engine, x)
        staff.file_person(a.app, a.engine, y)
        eventually(lambda: _hub_count(state, flags_at_hub, b_) == 2, "the hub files B's two flags", 120)
        assert b.app.record_move(Actor(b_, "req"), x, from_agency=a_, to_agency=b_, moved_on=date(2026, 4, 1))
        filed = [x_code(a, a_, n) for n in (x, y)]
        eventually(lambda: all(_hub_count(state, code_at_hub, k) == 1 for k in filed), "A filed X and Y", 120)
        moves = "SELECT count(*) FROM hub_moves WHERE sender = %s AND from_agency = %s AND to_agency = %s"
        eventually(lambda: _hub_count(state, moves, b_, a_, b_) == 1, "the hub files the move A → B from B", 120)

        asked = {n: staff.ask(d.app, d.engine, Actor(d_, "counter"), a_, n, **basis) for n in (x, y)}
        status = lambda n: staff.query(d.engine, d_, asked[n])["status"]  # noqa: E731
        eventually(lambda: status(y) == "answered", "D's query about Y answered automatically", 120)
        assert _hub_count(state, "SELECT count(*) FROM hub_parked") == 0, "the hub parked nothing"
        held = lambda: [(h.subject, h.querier) for h in views.work_queue(a, Actor(a_, "rev")).held]  # noqa: E731
        eventually(lambda: held() == [(subject_of(x_code(a, a_, x)), d_)], "A holds D's query about X", 60)
        heard = staff.query(d.engine, d_, asked[x])
        assert heard["status"] == "in_progress", "held, not automatic"
        assert not any(names(json.dumps(heard), code) for code in (b_, c_)), "D's counter hears no holder"

        # X moves on from B to C: the hub takes it from B (it holds, and the move starts where it saw X last)
        assert b.app.record_move(Actor(b_, "req"), x, to_agency=c_, moved_on=date(2026, 9, 1))
        staff.file_person(c.app, c.engine, x)  # 転入 at C
        eventually(lambda: _hub_count(state, moves, b_, b_, c_) == 1, "the hub files the move B → C from B", 120)
        eventually(lambda: bool(c.app.handovers_for(c_)), "C is asked to take over", 90)
        [handover] = c.app.handovers_for(c_)
        assert sorted(handover["flags_to_take_over"]) == sorted([nar, nd])
        assert not any(names(json.dumps(handover), code) for code in (a_, b_)), "names neither B nor A"
        four_eyes(c, c_)
        told = lambda: b.app.holders_anywhere(b.app.subject(x))  # noqa: E731
        eventually(lambda: all(c_ in told().get(f, []) for f in (nar, nd)), "B hears C holds", 90)
        four_eyes(b, b_, kind="release")
        assert b.app.flag_state is not None and b.app.flag_state.flags_for(b.app.subject(x)) == {}

        # A, X's old municipality, learns neither B nor C: its database and its decoded log
        codes = [x_code(node, code, x) for node, code in ((b, b_), (c, c_))]
        rows = _rows(state, a_)
        assert subject_of(x_code(a, a_, x)) in rows, "the search finds A's own code for X"
        assert not any(s in rows for k in codes for s in (k, subject_of(k))), "B's or C's code for X at A"
        events = [str(a.app.signed_mapper.decode(env).__dict__) for _, _, env in a.app.envelopes()]
        assert events and not any(names(e, code) for e in events for code in (b_, c_)), "A's log names B or C"
