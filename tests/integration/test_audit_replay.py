"""As-of replay: the projections as they stood at an instant, rebuilt into a separate database.

At the log's end a replay equals the live views; at an intermediate instant it equals a rebuild of the log
truncated at the same position; flags and the hold decision follow set and release; the live views are never
touched; and an event ingested late from another agency counts at its *recorded* time (a log-prefix replay
shows what this node knew instead). On SQLite and PostgreSQL (views and targets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.audit.replay import read_replay_info, replay
from ledger.audit.replay_target import parse_instant
from ledger.audit.views import audit_replay, flags_then, would_hold_then
from ledger.errors import InputError, IntegrityError, NotFoundError, PermissionDenied, StateConflict
from ledger.runtime.bootstrap import Node
from projections.base import Projector, create_engine, tracking
from projections.registry import all_projections
from tests.conftest import A, B, C
from tests.support.approvals import approve_fully
from tests.support.links import link
from tests.support.postgres import temp_database
from tests.support.trust import agency_pair

AUDITOR = Actor(A, "aud")
Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(engine: Engine, with_tracking: bool = True) -> Snapshot:
    tables = [t for p in all_projections() for t in p.tables] + ([tracking] if with_tracking else [])
    out: Snapshot = {}
    with engine.connect() as conn:
        for t in tables:
            order = list(t.primary_key.columns) or list(t.columns)
            out[t.name] = [tuple(r) for r in conn.execute(select(t).order_by(*order))]
    return out


def set_flags(node: Node, agency: str, x: str, flags: list[str], kind: str = "set") -> None:
    extra = {"kind": "release", "explanation": "本人に説明済み"} if kind == "release" else {}
    rid = node.app.request_flags(Actor(agency, "req"), x, flags, **extra)
    approve_fully(node.app, agency, rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def ask(node: Node, querier: str, provider: str, x: str) -> str:
    return node.app.request_provision(
        Actor(querier, "counter"), provider, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).status


def history(node: Node, people: list[str], rounds: int, person: Callable[[], str], start: int = 0) -> None:
    """Flags set and released, queries held and answered, a number change, proxies and decisions."""
    for i in range(start, start + rounds):
        x = people[i % len(people)]
        ask(node, [A, B, C][i % 3], [A, B, C][(i + 1) % 3], x)
        if i % 4 == 0:
            set_flags(node, B, x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
            held = node.app.request_provision(
                Actor(C, "counter"), A, x, legal_item=26, procedure="生活保護", info_kind="地方税関係情報"
            )
            if i % 8 == 0:
                from uuid import UUID

                node.app.propose_decision(Actor(A, "rev"), UUID(held.request_id), "refuse", "known_perpetrator")
                node.app.approve_decision(
                    Actor(A, "apr"),
                    UUID(held.request_id),
                    node.app.provision_request(UUID(held.request_id)).proposal_version,
                )
        if i % 4 == 2:
            set_flags(node, B, people[(i - 2) % len(people)], ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"], "release")
        if i == 3:
            new = person()
            link(node.app, A, people[0], new)
            people[0] = new
        if i == 5:
            node.app.register_proxy(Actor(A, "req"), people[1], people[2])


def recorded_times(node: Node) -> list[tuple[int, datetime]]:
    return [(pos, env.header.timestamp) for pos, _, env in node.app.envelopes()]


@contextmanager
def target_for(backend: str | None, tmp_path: Path, name: str = "replay") -> Iterator[str]:
    """A replay target on the same kind of database as the node's views."""
    if backend is None:
        yield str(tmp_path / f"{name}.sqlite")
    else:
        with temp_database() as url:
            yield url


@pytest.fixture
def people(person: Callable[[], str]) -> list[str]:
    return [person() for _ in range(4)]


def test_a_replay_at_the_logs_end_equals_the_live_views(node: Node, backend, tmp_path, people, person) -> None:
    history(node, people, 10, person)
    node.projector.catch_up()
    live = snapshot(node.engine)
    last = max(t for _, t in recorded_times(node))
    with target_for(backend, tmp_path) as target:
        seen: list[tuple[int, int]] = []
        _, engine, summary = audit_replay(
            node, AUDITOR, as_of=last, target=target, page=7, progress=lambda done, total: seen.append((done, total))
        )
        try:
            end = node.app.max_position()
            assert summary.events_left_out == 0 and summary.until_position == end
            # progress page by page, to the end (a page ends with a whole sealed batch: up to 3 events more, e.g.
            # an activation saves the credential and the roster together, a grant's approval saves the role too)
            assert len(seen) >= end // (7 + 2) and seen[-1] == (end, end)
            assert [d for d, _ in seen] == sorted({d for d, _ in seen})
            assert snapshot(engine) == live
            info = read_replay_info(engine)
            assert info is not None and info.finished and info.generated_by == str(AUDITOR)
        finally:
            engine.dispose()


def test_a_replay_at_an_intermediate_instant_equals_a_rebuild_of_the_truncated_log(
    node: Node, backend, tmp_path, people, person
) -> None:
    history(node, people, 6, person)
    cut = node.app.max_position()
    at = max(t for pos, t in recorded_times(node) if pos <= cut)
    history(node, people, 7, person, start=6)
    assert all(t > at for pos, t in recorded_times(node) if pos > cut), "the history must continue after T"
    assert node.app.max_position() > cut + 20

    truncated_engine = create_engine(f"sqlite:///{tmp_path / 'truncated.sqlite'}")
    truncated = Projector(node.app, truncated_engine, all_projections(), page=5)
    truncated.create_tables()
    truncated.catch_up(stop=cut)
    expected = snapshot(truncated_engine)
    truncated_engine.dispose()

    with target_for(backend, tmp_path, "by-time") as target:
        _, engine, summary = audit_replay(node, AUDITOR, as_of=at, target=target, page=9)
        try:
            assert summary.events_left_out == node.app.max_position() - cut and summary.out_of_order == 0
            assert snapshot(engine, with_tracking=False) == snapshot_without_tracking(expected)
        finally:
            engine.dispose()
    _, engine, _ = audit_replay(node, AUDITOR, as_of=None, until=cut, target=str(tmp_path / "prefix.sqlite"))
    try:
        assert snapshot(engine) == expected  # a log-prefix replay equals the truncated rebuild, positions too
    finally:
        engine.dispose()


def snapshot_without_tracking(s: Snapshot) -> Snapshot:
    return {k: v for k, v in s.items() if k != tracking.name}


def test_a_flag_applies_between_set_and_release_and_holds_requests_only_then(
    sqlite_node: Node, tmp_path, person
) -> None:
    node, x = sqlite_node, person()
    ask(node, A, A, x)  # the person is known before any flag
    before = datetime.now(UTC)
    set_flags(node, B, x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
    t1 = datetime.now(UTC)
    set_flags(node, B, x, ["NO_AUTO_RESPONSE"], "release")
    t2 = datetime.now(UTC)
    set_flags(node, B, x, ["NON_DISCLOSURE"], "release")
    t3 = datetime.now(UTC)
    reads_before = sum(1 for _, _, e in node.app.envelopes() if e.header.topic.endswith("ProtectedDetailsRead"))

    answers, at_a = {}, {}
    holder = Actor(B, "aud")  # the holding agency's auditor sees its holdings; A's sees none of them
    for name, at in (("before", before), ("t1", t1), ("t2", t2), ("t3", t3)):
        _, engine, _ = audit_replay(node, AUDITOR, as_of=at, target=str(tmp_path / f"{name}.sqlite"))
        try:
            answers[name] = (
                flags_then(node, holder, engine, x, "監査"),
                would_hold_then(node, holder, engine, x, C, "監査"),
            )
            at_a[name] = (
                flags_then(node, AUDITOR, engine, x, "監査"),
                would_hold_then(node, AUDITOR, engine, x, C, "監査"),
            )
        finally:
            engine.dispose()

    flags, hold = answers["before"]
    assert not flags.protected and flags.per_agency == () and not hold.held
    flags, hold = answers["t1"]
    assert flags.nationwide == {"NON_DISCLOSURE": (B,), "NO_AUTO_RESPONSE": (B,)}
    assert [(f.agency, f.flag, f.active) for f in flags.per_agency] == [
        (B, "NON_DISCLOSURE", True),
        (B, "NO_AUTO_RESPONSE", True),
    ]
    assert hold.held and hold.holders_notified == (B,) and hold.requester == C
    flags, hold = answers["t2"]
    assert flags.nationwide == {"NON_DISCLOSURE": (B,)} and not hold.held  # protected, but answered automatically
    assert hold.holders_notified == (B,)
    flags, hold = answers["t3"]
    assert not flags.protected and all(not f.active and f.released_at for f in flags.per_agency)
    assert not hold.held and hold.holders_notified == ()
    # another agency's auditor (threat: a peer agency's insider on a shared node, issue 18) learns whether
    # the person was protected and a request held, never by whom
    flags, hold = at_a["t1"]
    assert flags.protected and flags.nationwide == {"NON_DISCLOSURE": (), "NO_AUTO_RESPONSE": ()}
    assert flags.per_agency == () and hold.held and hold.holders_notified == ()
    for f, h in at_a.values():
        named = {a for hs in f.nationwide.values() for a in hs} | {p.agency for p in f.per_agency}
        assert B not in named | set(h.holders_notified)
    # every answer about the person was recorded as a read of protected details first
    reads = sum(1 for _, _, e in node.app.envelopes() if e.header.topic.endswith("ProtectedDetailsRead"))
    assert reads == reads_before + 16


def test_the_live_views_are_never_touched(node: Node, backend, tmp_path, people, person) -> None:
    history(node, people, 5, person)
    node.projector.catch_up()
    live, positions = snapshot(node.engine), node.projector.positions()
    extra = person()
    set_flags(node, C, extra, ["NON_DISCLOSURE"])  # logged, not yet projected: the replay must not project it
    with target_for(backend, tmp_path) as target:
        _, engine, summary = audit_replay(node, AUDITOR, as_of=datetime.now(UTC), target=target)
        engine.dispose()
    assert summary.events_applied == node.app.max_position()
    assert snapshot(node.engine) == live and node.projector.positions() == positions

    own = node.config.database_url or str(node.config.data_dir / "views.sqlite")
    with pytest.raises(InputError, match="own database"):
        audit_replay(node, AUDITOR, as_of=datetime.now(UTC), target=own)
    if backend is None:
        with pytest.raises(InputError, match="own databases"):
            audit_replay(node, AUDITOR, as_of=datetime.now(UTC), target=str(node.config.data_dir / "ledger.sqlite"))
    # a database that holds views but is no replay (a copy of the live views, say) is refused too
    copy = create_engine(f"sqlite:///{tmp_path / 'copy.sqlite'}")
    p = Projector(node.app, copy, all_projections())
    p.create_tables()
    p.catch_up()
    with pytest.raises(StateConflict, match="not a replay"):
        replay(node.app, copy, as_of=datetime.now(UTC))
    copy.dispose()
    assert snapshot(node.engine) == live and node.projector.positions() == positions


def test_a_target_is_replayed_once_and_reused_only_for_the_same_instant(sqlite_node: Node, tmp_path, person) -> None:
    node, x = sqlite_node, person()
    set_flags(node, A, x, ["NO_AUTO_RESPONSE"])
    at = datetime.now(UTC)
    target = str(tmp_path / "once.sqlite")
    _, engine, first = audit_replay(node, AUDITOR, as_of=at, target=target)
    engine.dispose()
    with pytest.raises(StateConflict, match="already holds a replay"):
        audit_replay(node, AUDITOR, as_of=at, target=target)
    with pytest.raises(StateConflict, match="already holds a replay"):
        audit_replay(node, AUDITOR, as_of=at + timedelta(seconds=1), target=target, reuse=True)
    _, engine, again = audit_replay(node, AUDITOR, as_of=at, target=target, reuse=True)
    try:
        assert again.reused and again.events_applied == first.events_applied
        assert would_hold_then(node, AUDITOR, engine, x, B, "監査").held
    finally:
        engine.dispose()


def test_only_auditors_replay_and_unknown_people_are_named_as_such(sqlite_node: Node, tmp_path, person) -> None:
    node = sqlite_node
    with pytest.raises(PermissionDenied):
        audit_replay(node, Actor(A, "req"), as_of=datetime.now(UTC), target=str(tmp_path / "x.sqlite"))
    assert not (tmp_path / "x.sqlite").exists()
    ask(node, A, B, person())
    _, engine, _ = audit_replay(node, AUDITOR, as_of=datetime.now(UTC), target=str(tmp_path / "y.sqlite"))
    try:
        with pytest.raises(NotFoundError, match="nothing in the log"):
            flags_then(node, AUDITOR, engine, person(), "監査")
        with pytest.raises(PermissionDenied):
            would_hold_then(node, Actor(B, "counter"), engine, person(), A, "監査")
        with pytest.raises(InputError):
            would_hold_then(node, AUDITOR, engine, "123", A, "監査")
    finally:
        engine.dispose()


@pytest.mark.parametrize("value", ["yesterday", "2026-11-25T10:00:00", "2026-13-01T00:00:00Z", ""])
def test_instants_without_an_offset_or_unparseable_are_refused(value: str) -> None:
    with pytest.raises(InputError):
        parse_instant(value)


def test_parse_instant_normalises_to_utc() -> None:
    assert parse_instant("2026-11-25T10:00:00+09:00") == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    assert parse_instant("2026-11-25T01:00:00Z") == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


# -- events from another agency ---------------------------------------------------------------------------------
@pytest.fixture
def pair(make_node, tmp_path: Path) -> tuple[Node, Node]:
    return agency_pair(make_node, tmp_path)


def test_an_event_ingested_late_counts_at_its_recorded_time_and_a_prefix_replay_shows_what_was_known(
    pair: tuple[Node, Node], tmp_path, person
) -> None:
    a, b = pair
    x = person()
    ask(a, A, A, x)  # A knows the person
    before_flag = datetime.now(UTC)
    set_flags(b, B, x, ["NO_AUTO_RESPONSE"])  # recorded at B now …
    t = datetime.now(UTC)
    ask(a, A, A, person())  # … while A goes on with its own work
    known_at_t = a.app.max_position()
    pending = PendingStore(a.app, a.engine)
    for _, _, raw in publishable(b.app, 0):  # … and reaches A only later
        ingest(a.app, raw, pending)
    assert a.app.max_position() > known_at_t

    def held(name: str, **when: Any) -> bool:
        _, engine, _ = audit_replay(a, AUDITOR, target=str(tmp_path / f"{name}.sqlite"), **when)
        try:
            return would_hold_then(a, AUDITOR, engine, x, C, "監査").held
        finally:
            engine.dispose()

    assert held("at-t", as_of=t)  # B's flag had been set by then, by its signed time
    assert not held("before", as_of=before_flag)
    assert not held("prefix", as_of=None, until=known_at_t)  # but this node did not know it yet
    assert held("now", as_of=None, until=a.app.max_position())


def test_a_sealed_batch_is_kept_or_left_out_whole(sqlite_node: Node, tmp_path, person) -> None:
    """Executing a request saves the request's Executed and the protection's FlagsSet together: at an instant
    between their stamps the batch had not been committed, so neither had happened."""
    node, x = sqlite_node, person()
    set_flags(node, B, x, ["NO_AUTO_RESPONSE"])
    envs = [env for _, _, env in node.app.envelopes()]
    batch = [e for e in envs if e.seal.signature == envs[-1].seal.signature]
    topics = [e.header.topic.split(":")[1] for e in batch]
    assert "FlagRequest.Executed" in topics and "Protection.FlagsSet" in topics
    first, last = min(e.header.timestamp for e in batch), max(e.header.timestamp for e in batch)
    assert first < last

    def state(name: str, at: datetime) -> tuple[str, dict[str, list[str]]]:
        _, engine, _ = audit_replay(node, AUDITOR, as_of=at, target=str(tmp_path / f"{name}.sqlite"))
        try:
            from projections.flag_state import NationwideState
            from projections.queues import flag_queue

            with engine.connect() as conn:
                status = conn.execute(select(flag_queue.c.status)).scalar_one()
            return status, NationwideState(engine).flags_for(node.app.subject(x))
        finally:
            engine.dispose()

    assert state("inside", first) == ("approved", {})
    assert state("after", last) == ("executed", {"NO_AUTO_RESPONSE": [B]})


def test_a_tampered_event_stops_the_replay_and_the_unfinished_target_is_never_answered_from(
    sqlite_node: Node, tmp_path, person
) -> None:
    from tests.support.store import rows, set_state

    node, x = sqlite_node, person()
    set_flags(node, B, x, ["NO_AUTO_RESPONSE"])
    ask(node, C, A, x)
    position, *_, state = rows(node)[-3]
    set_state(node, position, state[:-1] + bytes([state[-1] ^ 1]))
    target = str(tmp_path / "bad.sqlite")
    with pytest.raises(IntegrityError, match=f"position {position}"):
        audit_replay(node, AUDITOR, as_of=datetime.now(UTC), target=target, page=2)
    engine = create_engine(f"sqlite:///{target}")
    try:
        info = read_replay_info(engine)
        assert info is not None and not info.finished and info.last_position < position
        with pytest.raises(StateConflict, match="did not finish"):
            would_hold_then(node, AUDITOR, engine, x, C, "監査")
    finally:
        engine.dispose()


def test_a_stream_stops_at_its_first_event_after_t_even_if_a_clock_stepped_back(
    sqlite_node: Node, tmp_path, person, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approved is stamped after T, then the clock steps back and Executed (with FlagsSet, one batch) is
    stamped before T: the request cannot have been executed without its approval, so that batch is left out."""
    from ledger import clock as ledger_clock

    node, x = sqlite_node, person()
    ask(node, A, A, x)
    base = datetime.now(UTC) + timedelta(hours=1)  # keys are valid from before now: the future verifies
    clock = {"now": base}
    monkeypatch.setattr(ledger_clock, "now", lambda: clock["now"])  # event stamps come from the node's clock
    rid = node.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
    clock["now"] = base + timedelta(hours=2)
    node.app.approve_request(Actor(B, "apr"), rid)
    clock["now"] = base + timedelta(hours=1)  # stepped back
    node.app.execute_request(Actor(B, "op"), rid)
    monkeypatch.undo()

    at = base + timedelta(minutes=90)
    for page in (1000, 1):  # one chunk, or a chunk per batch (the cut is then read back from the target)
        _, engine, summary = audit_replay(
            node, AUDITOR, as_of=at, target=str(tmp_path / f"stepped{page}.sqlite"), page=page
        )
        try:
            from projections.queues import flag_queue

            assert summary.out_of_order >= 2 and summary.events_left_out == summary.out_of_order + 1
            with engine.connect() as conn:
                assert conn.execute(select(flag_queue.c.status)).scalar_one() == "pending"
            assert not would_hold_then(node, AUDITOR, engine, x, C, "監査").held
        finally:
            engine.dispose()
    _, engine, summary = audit_replay(
        node, AUDITOR, as_of=base + timedelta(hours=3), target=str(tmp_path / "later.sqlite")
    )
    try:
        assert summary.out_of_order == 0 and would_hold_then(node, AUDITOR, engine, x, C, "監査").held
    finally:
        engine.dispose()
