"""As-of replay: every projection rebuilt as it stood at a past instant, into a separate database.

**What "as it stood at T" means here.** Every event carries its *recorded time*: the time in its signed
header, stamped by the originating agency when the event happened. The replay applies, in local log order,
every sealed batch whose events were all recorded at or before ``T``, and leaves out the rest:

* A batch (the events one command saved together, under one signature) is kept or left out whole: it was
  committed after the last of its events was stamped, so at ``T`` either all of it or none of it existed.
* A stream stops at its first left-out event: if a clock stepped back, a later batch continuing that stream
  is left out too even though it is stamped ``<= T`` (and so are the other streams it touches), so no
  aggregate appears with a gap in its history. Such events are counted (``out_of_order``).
* **Events ingested from other agencies.** Their recorded time is the *originating* agency's signed time,
  not the moment this node received them (which is not recorded in a signed form). A flag set at agency B
  at 10:00 and ingested here at 12:00 therefore counts in a replay as of 11:00: the replay shows what had
  happened nationwide by ``T`` according to the signed record, not what this node happened to know at
  ``T``. For the latter, replay a log *prefix* instead (``until``, CLI ``--until-position``): the node's
  local log order is exactly the order in which it learnt of events.

Applying kept events in log order (not in time order) is what the live projector does too, so a replay at
or after the last recorded time equals the live views, and a replay at the time of a position ``P`` of a
purely local log equals a rebuild of the log truncated at ``P``.

The live views are never touched: the replay writes only to its target (:mod:`ledger.audit.replay_target`),
which must be empty (or a finished replay as of the same instant, reused as it is). Memory stays bounded: the
log is read a page at a time, and the streams cut at ``T`` are kept in a table of the target, not in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Notification
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from ledger.app import FlagLedger
from ledger.errors import Code, FlagLedgerError, InputError, IntegrityError, StateConflict, StorageError
from ledger.log.datakeys import Erasure
from ledger.log.envelope import Envelope
from ledger.log.mapper import SignedMapper
from ledger.log.subject_payload import ENC_DK1, ref_of
from projections.base import BatchedProjection, Projector, tracking, upsert
from projections.page import PageWriter
from projections.portal import canonical_time
from projections.registry import all_projections

__all__ = [
    "ReplayInfo",
    "ReplaySummary",
    "read_replay_info",
    "replay",
]

# The replay's own bookkeeping lives on its own MetaData, so live view databases never get these tables.
replay_metadata = MetaData()

replay_info = Table(
    "audit_replay",
    replay_metadata,
    Column("id", Integer, primary_key=True),  # always 1: one replay per target
    Column("as_of", String(32)),  # canonical UTC; NULL for a pure log-prefix replay
    Column("until_position", BigInteger),  # the prefix read (the log's end when the replay started)
    Column("last_position", BigInteger, nullable=False),  # progress; equals until_position when finished
    Column("events_read", BigInteger, nullable=False),
    Column("events_applied", BigInteger, nullable=False),
    Column("events_left_out", BigInteger, nullable=False),
    Column("out_of_order", BigInteger, nullable=False),
    Column("generated_by", String(100), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),  # NULL: interrupted or failed — rebuild, never answer from it
)

cut_streams = Table(
    "audit_replay_cut_streams",
    replay_metadata,
    Column("stream", String(36), primary_key=True),
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReplaySummary:
    as_of: str | None
    until_position: int
    events_read: int
    events_applied: int
    events_left_out: int
    out_of_order: int
    reused: bool = False
    # events whose data key was destroyed (issue 22): verified, projected as erased; and each erasure
    events_erased: int = 0
    erasures: tuple[Erasure, ...] = ()


@dataclass(frozen=True)
class ReplayInfo:
    as_of: str | None
    until_position: int | None
    last_position: int
    finished: bool
    generated_by: str
    started_at: str
    finished_at: str | None


# -- the target's state --------------------------------------------------------------------------------------
def read_replay_info(engine: Engine) -> ReplayInfo | None:
    """The replay recorded in ``engine``'s database, or None if it holds none."""
    try:
        if not inspect(engine).has_table(replay_info.name):
            return None
        with engine.connect() as conn:
            row = conn.execute(select(replay_info)).first()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the replay target: {exc}") from exc
    if row is None:
        return None
    return ReplayInfo(
        row.as_of,
        row.until_position,
        int(row.last_position),
        row.finished_at is not None,
        row.generated_by,
        row.started_at,
        row.finished_at,
    )


def _holds_views(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names())
    if tracking.name not in names:
        return False
    with engine.connect() as conn:
        return conn.execute(select(tracking.c.name).limit(1)).first() is not None


# -- reading the log -----------------------------------------------------------------------------------------
Row = tuple[Notification, Envelope]


def _batches(app: FlagLedger, end: int, page: int) -> Iterator[list[Row]]:
    """The log up to ``end`` as verified batches: runs of consecutive events sealed by one signature."""
    mapper = app.signed_mapper
    batch: list[Row] = []
    start = 1
    while start <= end:
        rows = app.recorder.select_notifications(start=start, limit=page, stop=end)
        if not rows:
            break
        for n in rows:
            try:
                env = mapper.open(n.state)
                mapper.check_row(n, env)
                mapper.verify(env)
                _ = env.header.timestamp  # a malformed time is an integrity failure: raise it here
            except FlagLedgerError as exc:
                raise IntegrityError(
                    f"position {n.id} ({n.topic}) does not verify: {exc}. The replay stopped; run "
                    "`flagledger audit verify` to see what is wrong with the log",
                    code=exc.code,
                ) from exc
            if batch and batch[-1][1].seal.signature != env.seal.signature:
                yield batch
                batch = []
            batch.append((n, env))
        start = rows[-1].id + 1
    if batch:
        yield batch


def _batch_time(batch: Sequence[Row]) -> datetime:
    try:
        return max(env.header.timestamp.astimezone(UTC) for _, env in batch)
    except TypeError as exc:  # a naive time cannot be placed on the time line
        n = batch[0][0]
        raise IntegrityError(f"position {n.id}: event time has no UTC offset", code=Code.MALFORMED) from exc


# -- the replay ---------------------------------------------------------------------------------------------
def replay(
    app: FlagLedger,
    engine: Engine,
    *,
    as_of: datetime | None,
    until: int | None = None,
    generated_by: str = "",
    page: int = 1000,
    progress: Progress | None = None,
    reuse: bool = False,
) -> ReplaySummary:
    """Rebuild every projection into ``engine`` as it stood at ``as_of`` (see the module docstring).

    ``until`` reads only the log prefix up to that position (default: the log's end when the replay starts;
    events appended while it runs are not read). With ``as_of=None`` the whole prefix is applied.
    """
    if as_of is None and until is None:
        raise InputError("say when: an instant (--as-of) or a log position (--until-position)")
    if as_of is not None and (as_of.tzinfo is None or as_of.utcoffset() is None):
        raise InputError("the as-of instant needs a UTC offset")
    if until is not None and until < 0:
        raise InputError("--until-position must be 0 or a positive log position")
    if not 1 <= page <= 10_000:
        raise InputError("--page must be between 1 and 10000 events")
    label = canonical_time(as_of.isoformat()) if as_of is not None else None
    end = min(until, app.max_position()) if until is not None else app.max_position()
    projector = Projector(app, engine, all_projections(), page=page)
    try:
        existing = read_replay_info(engine)
        if existing is not None:
            if (
                reuse
                and existing.finished
                and existing.as_of == label
                and (until is None or existing.until_position == end)
            ):
                return _summary_of(engine, existing)
            raise StateConflict(
                f"the target already holds a replay (as of {existing.as_of or 'a log prefix'}, "
                f"{'finished' if existing.finished else 'unfinished'}): give a new target, or --reuse to "
                "answer from a finished replay as of the same instant"
            )
        if _holds_views(engine):
            raise StateConflict(
                "the target already holds projections that are not a replay (live views?): "
                "replay only into an empty database"
            )
        projector.create_tables()
        replay_metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                replay_info.insert().values(
                    id=1,
                    as_of=label,
                    until_position=end,
                    last_position=0,
                    events_read=0,
                    events_applied=0,
                    events_left_out=0,
                    out_of_order=0,
                    generated_by=generated_by,
                    started_at=canonical_time(datetime.now(UTC).isoformat()),
                )
            )
        counts = _run(app, engine, projector, as_of, end, page, progress)
        with engine.begin() as conn:
            conn.execute(replay_info.update().values(finished_at=canonical_time(datetime.now(UTC).isoformat())))
    except SQLAlchemyError as exc:
        raise StorageError(
            f"the replay target failed: {exc}; the target is left unfinished (never answered from): "
            "fix it and replay into a new target"
        ) from exc
    read, applied, left_out, out_of_order, erased = counts
    dk = app.signed_mapper.data_keys
    return ReplaySummary(
        label,
        end,
        read,
        applied,
        left_out,
        out_of_order,
        events_erased=erased,
        erasures=tuple(dk.erasures()) if dk is not None and erased else (),
    )


def _summary_of(engine: Engine, info: ReplayInfo) -> ReplaySummary:
    with engine.connect() as conn:
        row = conn.execute(select(replay_info)).one()
    return ReplaySummary(
        info.as_of,
        int(row.until_position),
        int(row.events_read),
        int(row.events_applied),
        int(row.events_left_out),
        int(row.out_of_order),
        reused=True,
    )


def _run(
    app: FlagLedger,
    engine: Engine,
    projector: Projector,
    as_of: datetime | None,
    end: int,
    page: int,
    progress: Progress | None,
) -> tuple[int, int, int, int, int]:
    read = applied = left_out = out_of_order = erased = 0
    chunk: list[list[Row]] = []
    size = 0
    reported = 0  # the last position progress was told of: each is told once

    def flush() -> None:
        nonlocal read, applied, left_out, out_of_order, erased, size, reported
        with engine.begin() as conn:
            a, lo, ooo, gone = _apply(conn, app, projector, as_of, chunk)
            erased += gone
            last = chunk[-1][-1][0].id
            read += size
            applied, left_out, out_of_order = applied + a, left_out + lo, out_of_order + ooo
            for p in projector.projections:
                upsert(conn, tracking, [{"name": p.name, "position": last}], ["name"])
            conn.execute(
                replay_info.update().values(
                    last_position=last,
                    events_read=read,
                    events_applied=applied,
                    events_left_out=left_out,
                    out_of_order=out_of_order,
                )
            )
        if progress is not None:
            progress(last, end)
            reported = last
        chunk.clear()
        size = 0

    for batch in _batches(app, end, page):
        chunk.append(batch)
        size += len(batch)
        if size >= page:
            flush()
    if chunk:
        flush()
    elif progress is not None and reported != end:  # (a page that ended at the log's end told it already)
        progress(end, end)
    return read, applied, left_out, out_of_order, erased


def _apply(
    conn: Connection,
    app: FlagLedger,
    projector: Projector,
    as_of: datetime | None,
    chunk: Sequence[Sequence[Row]],
) -> tuple[int, int, int, int]:
    """Apply the kept events of one chunk of batches; returns (applied, left out, out of order, erased)."""
    mapper = app.signed_mapper
    keep = [as_of is None or _batch_time(b) <= as_of for b in chunk]
    later = {env.header.stream for b, k in zip(chunk, keep, strict=True) if k for _, env in b if env.header.version > 1}
    cut: set[str] = set()
    if as_of is not None and later:
        cut.update(
            str(s)
            for s in conn.execute(select(cut_streams.c.stream).where(cut_streams.c.stream.in_(sorted(later)))).scalars()
        )
    new_cuts: set[str] = set()
    applied = left_out = out_of_order = erased = 0
    w = PageWriter(conn, projector.cipher)
    for batch, kept in zip(chunk, keep, strict=True):
        streams = [env.header.stream for _, env in batch]
        behind = kept and any(s in cut for s in streams)  # continues a stream already cut at T
        if not kept or behind:
            left_out += len(batch)
            out_of_order += len(batch) if behind else 0
            new_cuts.update(s for s in streams if s not in cut)
            cut.update(streams)
            continue
        for n, env in batch:
            if env.header.enc == ENC_DK1 and _erased(mapper, env):
                erased += 1  # its person was erased: verified (by the batch read), projected as erased: not at all
                continue
            wanted = [p for p in projector.projections if n.topic in p.topics]
            if wanted:
                ev: Any = mapper.decode(env)
                for p in wanted:  # exactly as the live projector applies a page
                    if isinstance(p, BatchedProjection):
                        p.apply(w, ev, env, n.id)
                    else:
                        p.handle(w.conn, ev, env, n.id)
            applied += 1
    w.flush()
    if new_cuts:
        upsert(conn, cut_streams, [{"stream": s} for s in sorted(new_cuts)], ["stream"])
    return applied, left_out, out_of_order, erased


def _erased(mapper: SignedMapper, env: Envelope) -> bool:
    dk = mapper.data_keys
    return dk is None or dk.key(ref_of(env.payload)) is None
