"""``audit verify``: walk the whole log, check every signature and chain link, name the first bad event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ledger.app import FlagLedger
from ledger.audit.erasures import explain_erasures
from ledger.audit.staff_signatures import check_staff_signatures
from ledger.audit.workers import (
    MIN_EVENTS,
    ChainCheck,
    check_rows,
    data_keys_in_a_device,
    default_workers,
    verify_in_workers,
)
from ledger.errors import FlagLedgerError, InputError
from ledger.log.check import LogCheck
from ledger.log.findings import Finding, VerifyReport
from ledger.log.rows import log_rows
from ledger.log.stream_heads import DEFAULT_CAPACITY, StreamHeads

if TYPE_CHECKING:
    from ledger.app.checkpoints import Checkpoint

__all__ = ["Finding", "VerifyReport", "verify_log"]


def verify_log(
    app: FlagLedger,
    progress: Callable[[int, int], None] | None = None,
    page: int = 1000,
    trusted: Sequence[Checkpoint] = (),
    heads_in_memory: int = DEFAULT_CAPACITY,
    workers: int | None = None,
    min_events: int = MIN_EVENTS,
) -> VerifyReport:
    """Check every event in log order, and the log as a whole; stop at the first bad event.

    Per event: the row agrees with its signed header, the payload with its digest, the batch signature
    with a key valid at the event's time, and ``prev`` with the hash of the stream's previous event
    (so an edited, deleted or reordered event breaks the chain of its stream); and its signer may write it
    (:mod:`ledger.domain.authority`: the stream's owner, a payload in the signer's own name; code ``foreign_writer``).
    The whole log (:mod:`ledger.log.check`): the tree rebuilt from every event must be the one each of this
    node's batches signed before it, and match every checkpoint of this node's agencies, every ``trusted`` one
    kept outside this log (a peer's copy, an exported head: catches a truncated tail) and the log head row.
    At most ``heads_in_memory`` stream heads are kept in memory; older ones spill to a temporary table
    (:mod:`ledger.log.stream_heads`).

    With ``workers`` > 1 (default: one per CPU) and a log of at least ``min_events`` events, worker processes
    check the events and this one the chains (:mod:`ledger.audit.workers`); the report is the same as with one
    process. Not when the data keys unwrap only inside an HSM (the pkcs11 key store): the workers could not
    open them, so one process checks everything.
    """
    if workers is None:
        workers = default_workers()
    if workers < 1:
        raise InputError("--workers must be at least 1")
    log, checkpoints = _log_check(app, trusted, page)
    with StreamHeads(heads_in_memory) as heads:
        parallel = workers > 1 and app.max_position() >= min_events and _store_is_shared(app)
        if parallel and not data_keys_in_a_device(app):  # with keys in an HSM: one process (docs/keys.md)
            report = VerifyReport()
            verify_in_workers(app, heads, report, workers, page, progress, log)
        else:
            report = _verify_events(app, heads, progress, page, log)
    explain_erasures(app, report)
    staff = check_staff_signatures(app, page)
    report.staff_findings, report.before_staff_signing = staff.findings, staff.before_staff_signing
    report.before_staff_roles = staff.before_staff_roles
    report.staff_signed = staff.signed
    if report.first_bad is None and staff.findings:
        report.first_bad = staff.findings[0]
    report.checkpoints = checkpoints
    report.tree_size, report.own_batches_checked, report.v1_events = log.tree.size, log.v2_own, log.v1_events
    problem = app.key_problem
    if problem is not None:
        # a key event that could not be applied when the node was opened (the walk re-checks it like any
        # event, with this node's own keys from its config): named if nothing earlier is — unless all it
        # showed is a key the log does not register, the effect of a key event deleted or moved, which the
        # walk names where it was
        bad = report.first_bad
        earlier = problem.position is not None and bad is not None and problem.position < bad.position
        if bad is None or (earlier and problem.code not in _UNKNOWN_KEY):
            report.first_bad = Finding(
                problem.position or 0,
                problem.stream,
                problem.version,
                problem.topic,
                f"this key event cannot be applied: {problem.reason}",
                problem.code,
            )
    return report


_UNKNOWN_KEY = frozenset({"unknown_key", "unknown_agency"})


def _log_check(app: FlagLedger, trusted: Sequence[Checkpoint], page: int) -> tuple[LogCheck, int]:
    """The whole-log check, primed with the head row (read first: it describes a prefix of what is read
    after it, whoever writes meanwhile) and the checkpoints."""
    from ledger.audit.checkpoints import collect_checkpoints  # imported here: it imports this package's types

    head_row, head_error = None, None
    read_head = getattr(app.recorder, "read_head", None)
    if read_head is not None:
        try:
            head_row = read_head()
        except FlagLedgerError as exc:
            head_error = str(exc)
    found = collect_checkpoints(app, trusted, page)
    log = LogCheck(frozenset(app.hosted), found.heads, found.covers, found.stop, head_row, head_error)
    return log, found.count


def _verify_events(
    app: FlagLedger, heads: StreamHeads, progress: Callable[[int, int], None] | None, page: int, log: LogCheck
) -> VerifyReport:
    """The audit in this process: each page checked in place, then its chains (as the workers' pages are)."""
    mapper = app.signed_mapper
    report = VerifyReport()
    chain = ChainCheck(heads, report, log)
    end = app.max_position()
    start = 1
    while True:
        rows = log_rows(app.recorder, start, page)
        if not chain.take(check_rows(mapper, rows)):
            return report
        if progress is not None and rows:
            progress(rows[-1][0], end)
        if len(rows) < page:
            break
        start = rows[-1][0] + 1
    chain.finish()
    return report


def _store_is_shared(app: FlagLedger) -> bool:
    """Whether another process can open this store (an in-memory SQLite database is this process's alone)."""
    name = str(app.env.get("SQLITE_DBNAME", ""))
    return app.env.get("PERSISTENCE_MODULE") != "eventsourcing.sqlite" or not (
        name == ":memory:" or "mode=memory" in name
    )
