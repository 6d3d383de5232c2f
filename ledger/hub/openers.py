"""Opening and verifying a poll's messages (issue #19), in worker processes when the poll is large.

Each delivery of the poll is opened with the hub's sealing key (HPKE) and its signature checked under the
sender's key valid at the poll's time (Ed25519, ≈ 111 µs a message on an idle core: more than the 100 µs a
message that 10k events/s leaves); an agency's digest is unpacked and each message it carries opened as if it
had come alone; one that does not open is kept, with its code and reason, to be parked in its place. Nothing
here touches the database: what a message *means* is decided by the loop, in topic order, afterwards
(``ledger.hub.poll``).

**Workers** (:class:`Openers`): a poll of at least :data:`MIN_MESSAGES` is cut into one contiguous slice per
worker process, each opened there, and the slices' items joined again in their order — the same items, in the
same order, with the same refusals as :func:`open_all` in this process, so the apply order and exactly-once
(decided by the loop's one transaction, not here) are unchanged. A smaller poll (a quiet inbox: a round trip
to the workers costs more than it saves) is opened in this process. As ``audit verify``'s, the workers are
*spawned*, not forked (a fork would inherit the hub's open database connections), one per CPU this process may
use (``ledger.capacity.usable_cpus``), at most :data:`MAX_WORKERS`, started at the first large poll (or
:meth:`Openers.start`) and kept. No poll waits for a spawn: until every worker is ready, a large poll is opened
in this process. :meth:`Openers.close` (the hub's stop) hands idle workers their exit and terminates any still
starting after :data:`CLOSE_GRACE`: a SIGTERM stops the hub within seconds, leaving no worker behind. Workers
ignore SIGINT (a terminal's Ctrl-C reaches the whole process group): the hub stops them itself.

What a worker holds: the hub's private sealing key, handed over a pipe to its own child process (the key is
in this process already; the worker is the same user on the same host, and exits when its parent does), and
the directory's public sender keys. A sealing key that cannot be exported (held in a device) opens in this
process only. When the directory's keys change (a reloaded directory, a revoked key) the workers are
restarted with the new ones before the next poll is opened (in this process while they start): a revoked
key is never trusted by a worker holding the old list. A worker that dies mid-poll costs only speed: the
poll is opened in this process, and the workers restarted at the next large poll.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing import get_context

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.capacity import usable_cpus
from ledger.errors import Code, FlagLedgerError
from ledger.hub.digests import carried
from ledger.linkage.digests import DIGEST_KIND
from ledger.linkage.directory import Directory
from ledger.linkage.names import HUB
from ledger.linkage.sealing import Opened, SenderKeys, read_header, ring_keys, unseal
from ledger.linkage.transport import Delivery
from ledger.log.signing import KeyRecord, KeyRing

__all__ = ["CLOSE_GRACE", "MAX_WORKERS", "MIN_MESSAGES", "Item", "Openers", "open_all"]

MIN_MESSAGES = 32  # a poll below this is opened in this process: the workers' round trip costs more
MAX_WORKERS = 4  # each holds ≈ 60 MB (the interpreter and the hub's modules)
CLOSE_GRACE = 1.0  # seconds close() gives the workers to exit (an idle one: milliseconds) before terminating them


@dataclass(frozen=True)
class Item:
    """One message of the poll, opened — or refused while opening, with its code and reason."""

    delivery: Delivery
    sender: str | None
    event_id: str | None
    opened: Opened | None = None
    refused: tuple[str, str] | None = None


def open_all(sealing: X25519PrivateKey, sender_keys: SenderKeys, deliveries: Sequence[Delivery]) -> list[Item]:
    """Every delivery opened in order (an agency's digest: the messages it carries, each in its place)."""
    items: list[Item] = []
    for delivery in deliveries:
        _open(sealing, sender_keys, delivery, items, inner=False)
    return items


def _open(
    sealing: X25519PrivateKey, sender_keys: SenderKeys, delivery: Delivery, items: list[Item], inner: bool
) -> None:
    sender = event_id = None
    try:
        header = read_header(delivery.value)
        sender, event_id = header.sender, header.event_id
        opened = unseal(sealing, HUB, delivery.value, sender_keys)
        # parked from here on, it keeps no bytes the hub's key opens: a registration's number among them
        delivery = replace(delivery, value=b"")
        if opened.kind == DIGEST_KIND and not inner:  # an agency's digest: each message handled as if alone
            for one in carried(delivery, opened):
                _open(sealing, sender_keys, one, items, inner=True)
            return
        items.append(Item(delivery, sender, event_id, opened))
    except FlagLedgerError as exc:
        items.append(Item(delivery, sender, event_id, refused=(exc.code, str(exc))))
    except (ValueError, RecursionError) as exc:  # a decoder's own refusal of hostile bytes: parked all the same
        items.append(Item(delivery, sender, event_id, refused=(Code.MALFORMED, f"{type(exc).__name__}: {exc}")))


def _exportable(key: X25519PrivateKey) -> bytes | None:
    try:
        return key.private_bytes_raw()
    except (AttributeError, TypeError, ValueError, NotImplementedError):  # a key held in a device
        return None


class Openers:
    """The hub loop's worker processes for opening large polls (module doc); ``workers`` 0: none, every poll
    in this process; None: one per usable CPU, at most :data:`MAX_WORKERS`."""

    def __init__(self, sealing: X25519PrivateKey, workers: int | None = None, min_messages: int = MIN_MESSAGES):
        self.sealing = sealing
        self.workers = min(MAX_WORKERS, usable_cpus()) if workers is None else max(0, workers)
        self.min_messages = min_messages
        self._raw = _exportable(sealing) if self.workers else None
        self._pool: ProcessPoolExecutor | None = None
        self._keys: tuple[KeyRecord, ...] | None = None  # the sender keys the running workers were given
        self._warming: list[Future[None]] = []  # each worker's first task: all done, the workers are ready

    def open(self, directory: Directory, at: datetime, deliveries: Sequence[Delivery]) -> list[Item]:
        """The poll's items, in order, opened under the directory's sender keys valid at ``at``."""
        if self._raw is None or len(deliveries) < self.min_messages:
            return open_all(self.sealing, directory.sender_keys(at), deliveries)
        pool = self._ready(tuple(directory.ring.records()))
        if pool is None:
            # the workers are still starting: a poll (at most a few hundred messages, milliseconds here) never
            # waits for a spawn — seconds on a busy machine, during which a SIGTERM's stop would wait too
            return open_all(self.sealing, directory.sender_keys(at), deliveries)
        # one slice per worker and one for this process, which would otherwise only wait for them
        size = -(-len(deliveries) // (self.workers + 1))
        futures: list[Future[list[Item]]] = [
            pool.submit(_open_slice, list(deliveries[i : i + size]), at) for i in range(size, len(deliveries), size)
        ]
        mine = open_all(self.sealing, directory.sender_keys(at), deliveries[:size])
        try:
            return [*mine, *(item for future in futures for item in future.result())]
        except BrokenProcessPool:  # a worker died (killed, out of memory): opened here; restarted next time
            self.close()
            return open_all(self.sealing, directory.sender_keys(at), deliveries)

    def start(self, directory: Directory, wait: bool = True) -> None:
        """Start the workers now (spawning one takes a second or more: the first large poll need not wait);
        ``wait``: until every worker is ready. Until then large polls are opened in this process."""
        if self._raw is not None:
            self._ready(tuple(directory.ring.records()))
            if wait:
                for future in self._warming:
                    future.exception()

    def _ready(self, keys: tuple[KeyRecord, ...]) -> ProcessPoolExecutor | None:
        """The pool, if every worker has started under ``keys``; else None, the workers (re)started meanwhile."""
        if self._pool is not None and keys != self._keys:
            self.close()  # the directory's keys changed: no worker keeps trusting the old list
        if self._pool is None:
            assert self._raw is not None
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(self._raw, keys)
            )
            self._keys = keys
            # the executor spawns a process when a task finds none idle: tasks sent at once, while the first
            # is still starting, start them all
            self._warming = [self._pool.submit(_ready) for _ in range(self.workers)]
        if not all(future.done() for future in self._warming):
            return None
        if any(future.exception() is not None for future in self._warming):
            self.close()  # a worker that could not start: this poll here, the workers tried again at the next
            return None
        return self._pool

    def close(self) -> None:
        """Stop the workers, within :data:`CLOSE_GRACE` seconds: one still starting (importing the hub's
        modules, seconds on a busy machine) is terminated rather than waited for — a SIGTERM's stop stays
        prompt, and no worker holding the hub's key outlives the hub's process."""
        pool, self._pool, self._keys, self._warming = self._pool, None, None, []
        if pool is None:
            return
        processes = list(pool._processes.values())  # gone from the executor once shut down
        pool.shutdown(wait=False, cancel_futures=True)  # each idle worker handed its exit
        deadline = time.monotonic() + CLOSE_GRACE
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(1.0)
            if process.is_alive():
                process.kill()
                process.join()


# -- in the worker process --------------------------------------------------------------------------------
_worker: tuple[X25519PrivateKey, KeyRing] | None = None


def _start_worker(raw: bytes, keys: tuple[KeyRecord, ...]) -> None:
    global _worker
    # a Ctrl-C reaches the terminal's whole process group: the hub stops on it and closes its workers itself,
    # a worker interrupted mid-slice would only print a traceback and break the pool under the stopping loop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = (X25519PrivateKey.from_private_bytes(raw), KeyRing.from_records(keys))
    parent = os.getppid()
    threading.Thread(target=_orphaned, args=(parent, os._exit), daemon=True).start()


def _orphaned(parent: int, leave: Callable[[int], object]) -> None:
    """Exit once the hub's process is gone (killed with SIGKILL, it shuts down no pool): no worker outlives it
    holding the hub's key."""
    stop = threading.Event()
    while os.getppid() == parent:
        stop.wait(1.0)
    leave(0)


def _ready() -> None:
    return None


def _open_slice(deliveries: list[Delivery], at: datetime) -> list[Item]:
    assert _worker is not None, "worker used before it started"
    sealing, ring = _worker
    return open_all(sealing, ring_keys(ring, at), deliveries)
