"""``audit verify`` on several cores: worker processes check the events, this process checks the chains.

Everything ``audit verify`` checks of one event alone — the row against its signed header, the payload against
its digest, the batch signature against a key valid at the event's time, that the payload decodes — needs
nothing from any other event, and is nine tenths of the work (figure "audit verify of the whole log"). Worker
processes do it for pages of the log (position ranges), each reading its pages from the store itself, and
send back per event only what the chain check needs: stream, version, ``prev`` and the event's own hash.
This process takes the pages in log order and checks each stream's chain (:class:`ChainCheck`, with the
bounded :class:`~ledger.log.stream_heads.StreamHeads`). The one-process audit runs the same two steps on each page
in place, so both name the same first bad event: :func:`check_rows` stops at the first event of a page that
fails and says whether it failed before its chain link would have been checked (it could not be read, or its
row disagrees with its header) or after (signature, digest, decoding); the chain check covers every event
before it, and that event too in the second case, and reports whichever comes first.

Workers are *spawned* (not forked): a forked child would inherit this process's open database connections,
which SQLite forbids using or closing across a fork. Starting one costs a few hundred milliseconds, so small
logs are checked in this process (``min_events``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from sys import intern
from typing import TYPE_CHECKING

from ledger.capacity import usable_cpus
from ledger.errors import Code, FlagLedgerError, StorageError

if TYPE_CHECKING:
    from ledger.app import FlagLedger
    from ledger.log.check import LogCheck
    from ledger.log.findings import Finding, VerifyReport
    from ledger.log.mapper import SignedMapper
    from ledger.log.rows import LogRow
    from ledger.log.signing import KeyRecord
    from ledger.log.stream_heads import StreamHeads

__all__ = ["MIN_EVENTS", "ChainCheck", "check_rows", "default_workers", "verify_in_workers"]

MIN_EVENTS = 50_000  # below this a one-process audit finishes in about the time a worker takes to start
_UNKNOWN_KEY = frozenset({"unknown_key", "unknown_agency"})

# per event that passed the worker's checks: position, stream, version, topic, prev, own hash (hex), whether
# its batch signature differs from the previous event's in the page (the first event's: True), and for the
# check of the whole log (ledger.log.check): origin, own hash (bytes), index in its batch, batch size, the
# log head the batch signed (size −1 for envelope v1) and the batch signature
Link = tuple[int, str, int, str, str, str, bool, str, bytes, int, int, int, bytes, bytes]


def default_workers(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """One worker per CPU this process may use, at most 4 (each holds ~60 MB); the chain check is a tenth of the work.

    "May use": the CPUs it is pinned to and, in a container, its CPU quota (cgroup v2 ``cpu.max``) — a pod
    limited to half a CPU on a 32-CPU host gets one process, not four competing for that half.
    """
    return min(4, usable_cpus(cgroup))


@dataclass(frozen=True)
class CheckerSpec:
    """What a worker needs to check events as the auditing process would: the store and the key registry."""

    env: dict[str, str]
    keys: tuple[KeyRecord, ...]
    # the node's per-subject data keys (file, key-encryption key hex): events erased there read as erased here
    data_keys: tuple[str, str] | None = None


@dataclass(frozen=True)
class PageResult:
    links: list[Link]
    first_signature: bytes  # of the first event that passed (b"": none did)
    last_signature: bytes  # of the last event that passed
    finding: Finding | None = None  # the first event of the page that failed
    chain_first: bool = False  # the failing event is the last link: check its chain before the finding
    error: str | None = None  # the page could not be read (storage): the audit stops with this
    # (position, stream, version, topic, data key ref) of the events whose data key is destroyed
    erased: tuple[tuple[int, str, int, str, str], ...] = ()


def data_keys_in_a_device(app: FlagLedger) -> bool:
    """Whether this node's data keys unwrap only inside a device (the pkcs11 key store's key-encryption key):
    worker processes cannot be handed the key, so the audit checks events in its own process."""
    from ledger.log.datakeys import AesKek

    dk = app.signed_mapper.data_keys
    return dk is not None and dk.path.exists() and not isinstance(dk.wrapper, AesKek)


def _data_keys_spec(app: FlagLedger) -> tuple[str, str] | None:
    from ledger.log.datakeys import AesKek

    dk = app.signed_mapper.data_keys
    if dk is None or not dk.path.exists():  # no person's key kept here (and the audit makes no secret)
        return None
    kek = dk.wrapper
    if not isinstance(kek, AesKek):
        raise StorageError("the data keys are wrapped inside a device: audit with --workers 1")
    return (str(dk.path), kek.secret.hex())


# -- in the worker process --------------------------------------------------------------------------------
_checker: _PageChecker | None = None


def _start_worker(spec: CheckerSpec) -> None:
    global _checker
    _checker = _PageChecker(spec)


def _check_page(start: int, stop: int, limit: int) -> PageResult:
    assert _checker is not None, "worker used before it started"
    return _checker.check(start, stop, limit)


class _PageChecker:
    def __init__(self, spec: CheckerSpec) -> None:
        from eventsourcing.persistence import InfrastructureFactory, JSONTranscoder
        from eventsourcing.utils import Environment

        from ledger.app import FlagLedger
        from ledger.log.mapper import SignedMapper
        from ledger.log.signing import KeyRing

        env = dict(spec.env)
        env["CREATE_TABLE"] = "n"  # the auditing process opened the store: only read it here
        factory = InfrastructureFactory.construct(Environment(FlagLedger.name, env))
        transcoder = factory.transcoder()
        if isinstance(transcoder, JSONTranscoder):
            FlagLedger.register_transcodings(None, transcoder)  # type: ignore[arg-type]
        self.recorder = factory.application_recorder()
        self.mapper = SignedMapper(transcoder, cipher=factory.cipher(), keyring=KeyRing.from_records(spec.keys))
        self.mapper.read_v1 = True  # as the auditing process's mapper
        if spec.data_keys is not None:
            from ledger.log.datakeys import AesKek, DataKeys

            path, kek = spec.data_keys
            self.mapper.data_keys = DataKeys(Path(path), AesKek(bytes.fromhex(kek)))

    def check(self, start: int, stop: int, limit: int) -> PageResult:
        from ledger.log.rows import log_rows

        try:
            return check_rows(self.mapper, log_rows(self.recorder, start, limit, stop=stop))
        except StorageError as exc:
            return PageResult([], b"", b"", error=str(exc))


def check_rows(mapper: SignedMapper, rows: Sequence[LogRow]) -> PageResult:
    """The checks of ``audit verify`` that need no other event, for one page in order, stopping at the first
    failure; the chain check follows in :class:`ChainCheck`."""
    from ledger.domain.authority import foreign_writer_reason, payload_violation
    from ledger.log.findings import row_finding
    from ledger.log.subject_payload import ErasedPayload

    open_, check_fields, verify, decodes = mapper.open, mapper.check_fields, mapper.verify, mapper.check_decodes
    links: list[Link] = []
    add = links.append
    first_sig = last_sig = b""
    erased: list[tuple[int, str, int, str, str]] = []
    for n in rows:
        position, row_stream, _, version, topic, state = n
        if state is None:
            return PageResult(
                links,
                first_sig,
                last_sig,
                row_finding(
                    n,
                    "the stored event is not a byte string (its cell holds text or a number: edited outside "
                    "flagledger)",
                    Code.MALFORMED,
                ),
            )
        try:
            env = open_(state)
            check_fields(env, row_stream, version, topic)
        except FlagLedgerError as exc:
            return PageResult(links, first_sig, last_sig, row_finding(n, str(exc), exc.code))
        h = env.header
        s = env.seal
        sig = s.signature
        leaf = env.leaf_hash
        add(
            (
                position,
                h.stream,
                version,
                topic,
                h.prev,
                leaf.hex(),
                sig != last_sig,
                h.origin,
                leaf,
                s.leaf_index,
                s.size,
                s.log_size,
                s.log_root,
                sig,
            )
        )
        try:
            verify(env)
            try:
                bad = payload_violation(topic, h.origin, decodes(env), h.stream, version)
            except ErasedPayload as gone:  # signature, digest and chain hold; the content is gone for good
                erased.append((position, h.stream, version, topic, gone.ref.hex()))
                bad = None
        except FlagLedgerError as exc:
            return PageResult(
                links, first_sig, last_sig, row_finding(n, str(exc), exc.code), chain_first=True, erased=tuple(erased)
            )
        if bad is not None:  # e.g. a stream opened in another agency's name
            reason = foreign_writer_reason(h.stream, version, topic, h.origin, bad)
            return PageResult(
                links,
                first_sig,
                last_sig,
                row_finding(n, reason, Code.FOREIGN_WRITER),
                chain_first=True,
                erased=tuple(erased),
            )
        if not first_sig:
            first_sig = sig
        last_sig = sig
    return PageResult(links, first_sig, last_sig, erased=tuple(erased))


# -- in the auditing process ------------------------------------------------------------------------------
class ChainCheck:
    """The auditing process's part: each checked page's links, in log order, against every stream's chain.

    Used for the pages of the workers and, in one process, for pages checked in place by :func:`check_rows`,
    so both audits decide in one place which event is the first bad one and what was counted before it.
    """

    def __init__(self, heads: StreamHeads, report: VerifyReport, log: LogCheck) -> None:
        self.heads = heads
        self.report = report
        self.log = log
        self.events = self.batches = 0
        self.last_sig = b""

    def take(self, result: PageResult) -> bool:
        """Check one page's links; False once the first bad event is found (then the report names it)."""
        from ledger.domain.authority import append_violation
        from ledger.log.findings import chain_finding, owner_finding

        if result.error is not None:
            raise StorageError(result.error)
        get_head, set_head = self.heads.get, self.heads.set  # bound once: this loop runs per event
        log = self.log
        see, add = log.see, log.add
        report = self.report
        report.erased.extend(result.erased)
        events, batches = self.events, self.batches
        checked = len(result.links) - (1 if result.chain_first else 0)
        for i, link in enumerate(result.links):
            position, stream, version, topic, prev, own, new_batch, origin = link[:8]
            see(position)
            head = get_head(stream)
            bad = chain_finding(position, stream, version, topic, prev, head)
            if bad is None and head is not None and (head[2] != origin or topic.rpartition(".")[0] != head[3]):
                why = append_violation(topic, origin, (head[2], head[3]))  # another agency's stream, or aggregate
                if why is not None:
                    bad = owner_finding(position, stream, version, topic, origin, why)
            if bad is not None:
                report.first_bad = self._hole_first(bad, head)
                break
            if i == checked:  # the failing event: its chain held, so the page's finding stands
                break
            bad = add(position, stream, version, topic, *link[7:])
            if bad is not None:
                report.first_bad = bad
                break
            if head is None:
                set_head(stream, version, own, new=True, owner=origin, aggregate=intern(topic.rpartition(".")[0]))
            else:
                set_head(stream, version, own, new=False, owner=head[2], aggregate=head[3])
            events += 1
            if new_batch if i else result.first_signature != self.last_sig:
                batches += 1
        self.events, self.batches = events, batches
        if report.first_bad is None and result.finding is not None:
            finding = result.finding
            if finding.code in _UNKNOWN_KEY:  # its key's registration may be what is missing
                finding = self._hole_before(finding, "is signed by a key this log does not register")
            report.first_bad = finding
        if report.first_bad is not None:
            self.finish()
            return False
        if result.first_signature:
            self.last_sig = result.last_signature
        return True

    def _hole_before(self, bad: Finding, what: str) -> Finding:
        """``bad`` may be the effect of an event deleted before it: name the first hole in the log's positions
        since the last vouched-for event, if there is one before it (see :mod:`ledger.log.check`)."""
        from ledger.log.findings import Finding

        log = self.log
        if log.gap is None or log.gap >= bad.position:
            return bad
        return Finding(
            log.gap,
            "",
            0,
            "",
            f"position {log.gap} is missing from the log: the event at position {bad.position} ({bad.topic} "
            f"v{bad.version} of stream {bad.stream}) {what}, and no event since position {log.vouched_position} "
            f"is vouched for by this node's signed batches ({bad.reason})",
            "missing",
            log.gap_index,
        )

    def _hole_first(self, bad: Finding, head: tuple[int, str, str, str] | None) -> Finding:
        """A stream that skips versions is missing an event: the first hole in the positions, if before it."""
        expected = (head[0] if head is not None else 0) + 1
        if bad.version <= expected:
            return bad
        return self._hole_before(bad, f"skips its stream from v{expected - 1} to v{bad.version}")

    def finish(self) -> None:
        report = self.report
        if report.first_bad is None:
            report.first_bad = self.log.finish()
        report.events, report.batches = self.events, self.batches
        if report.first_bad is None:  # a failed report counts no streams
            report.streams = self.heads.streams
            report.heads_spilled = self.heads.spilled


def verify_in_workers(
    app: FlagLedger,
    heads: StreamHeads,
    report: VerifyReport,
    workers: int,
    page: int,
    progress: Callable[[int, int], None] | None,
    log: LogCheck,
) -> None:
    """Fill ``report`` (events, batches, streams, first_bad) for the log up to its current end."""
    end = app.max_position()
    spec = CheckerSpec(dict(app.env), tuple(app.keyring.records()), _data_keys_spec(app))
    chain = ChainCheck(heads, report, log)
    pages = iter(range(1, end + 1, page))
    in_flight: deque[Future[PageResult]] = deque()
    try:
        with ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(spec,)
        ) as pool:

            def submit() -> None:
                start = next(pages, None)
                if start is not None:
                    in_flight.append(pool.submit(_check_page, start, min(end, start + page - 1), page))

            for _ in range(2 * workers):  # enough queued that no worker waits for this process
                submit()
            while in_flight:
                result = in_flight.popleft().result()
                submit()
                if not chain.take(result):
                    for f in in_flight:
                        f.cancel()
                    return
                if progress is not None and result.links:
                    progress(result.links[-1][0], end)
    except BrokenProcessPool as exc:
        raise StorageError(
            f"an audit worker process died ({exc}); nothing was concluded. Run `flagledger audit verify "
            "--workers 1` to check the log in one process"
        ) from exc
    chain.finish()
