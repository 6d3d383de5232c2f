"""Projections caught up by a child process, so that a node's ingest and its projections use two cores.

The node loop (``flagledger consumers node``) spends about half of each Kafka poll verifying and appending
and half projecting; in one interpreter the two add up (figure "ingest from Kafka"). Here the projector
runs in a process of its own (``python -m ledger.runtime.follower DATA_DIR``), opened from the same data
directory, and the loop only wakes it after each poll. Nothing about consistency depends on it: every reader
catches up itself before it answers (the decisions' ``VerifiedState``, the views' ``_fresh``), several
processes may catch up one database at once (see ``projections.base``), and a follower that dies loses no
event — the node starts a new one and meanwhile projects inline.

The child is a plain subprocess, not ``multiprocessing``: ``spawn`` would re-import the parent's main
module and ``fork`` would copy the parent's database connections and Kafka network thread. Its stdin is
the wake-up line (a byte per poke; end of file — the parent closed it or died — stops it); its stdout says
``ready`` once the node is open, or why it could not open it.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import select as sql_select
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import FlagLedgerError, StorageError

__all__ = ["Follower"]

log = logging.getLogger("flagledger.projections")

IDLE_SECONDS = 0.5  # catch up this often unwoken: events written by other processes of the node (API, CLI)
RESTART_PAUSE = 10.0  # after a failed start, how long the node projects inline before trying again
_ROOT = Path(__file__).resolve().parents[1]


class Follower:
    """A child process that keeps the node's projections caught up; :meth:`poke` wakes it.

    ``engine``: the views database of the parent's node, to read how far the projections are.
    """

    def __init__(self, data_dir: Path, engine: Engine, idle_seconds: float = IDLE_SECONDS) -> None:
        self.data_dir = Path(data_dir)
        self.engine = engine
        self.idle_seconds = idle_seconds
        self.restarts = 0
        self._next_start = 0.0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start the child and wait until it has opened the node (raises ``StorageError`` if it cannot)."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger.runtime.follower", str(self.data_dir), str(self.idle_seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert process.stdin is not None and process.stdout is not None
        os.set_blocking(process.stdin.fileno(), False)  # a poke never waits for a busy child
        self._process = process
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline().decode(errors="replace").strip() if ready else ""
        if line != "ready":
            gone = process.poll() is not None
            reason = line or (f"exit code {process.returncode}" if gone else f"no answer in {timeout:.0f} s")
            self.close(timeout=5)
            raise StorageError(
                f"the projections process did not start ({reason}); fix the cause and restart the node, "
                "or run it with --projections inline"
            )

    def poke(self) -> None:
        """New events may be in the log: catch up now rather than at the next idle tick."""
        process = self._process
        if process is None or process.stdin is None:
            return
        try:
            os.write(process.stdin.fileno(), b".")
        except BlockingIOError:  # the pipe is full of earlier pokes: the child has been woken already
            pass
        except (BrokenPipeError, ValueError, OSError):  # it died: ensure_running() notices and restarts it
            pass

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def position(self) -> int:
        """The log position every projection has reached (read from the views database)."""
        from projections.base import tracking

        try:
            with self.engine.connect() as conn:
                positions = [int(p) for p in conn.execute(sql_select(tracking.c.position)).scalars()]
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the projections' positions: {exc}") from exc
        return min(positions, default=0)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ensure_running(self) -> bool:
        """True if the child is running; if it died, start a new one (counted in ``restarts``) and say False,
        so the caller projects inline for this round."""
        if self.alive():
            return True
        if time.monotonic() < self._next_start:
            return False  # a start failed a moment ago: project inline for now, try again later
        code = self._process.returncode if self._process is not None else None
        log.error("the projections process exited (code %s); starting a new one, projecting inline meanwhile", code)
        self.close(timeout=5)
        self.restarts += 1
        try:
            self.start()
        except StorageError as exc:
            self._next_start = time.monotonic() + RESTART_PAUSE
            log.error("%s; trying again in %.0f s", exc, RESTART_PAUSE)
        return False

    def wait_for(self, position: int, seconds: float) -> bool:
        """Wait until every projection has reached ``position`` (tests, benchmarks)."""
        deadline = time.monotonic() + seconds
        while self.position() < position:
            if time.monotonic() > deadline or not self.alive():
                return self.position() >= position
            self.poke()
            time.sleep(0.002)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the current page (a page is one transaction: stopping never leaves half of one)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # end of file: the child's signal to stop
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the projections process did not stop in %.0f s; terminating it", timeout)
            process.terminate()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


def follow(data_dir: Path, idle: float) -> int:
    """The child: open the node, then catch up whenever woken (or every ``idle`` seconds) until stdin ends."""
    from ledger.capacity import ONE_SHOT
    from ledger.runtime.bootstrap import open_node

    try:
        node = open_node(data_dir, pools=ONE_SHOT)  # one thread: one connection per pool
    except Exception as exc:  # told to the parent, which says what to do next
        print(f"{type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return 1
    print("ready", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads stdout from now on: a full pipe would block
    wake = sys.stdin.fileno()
    failures, retry_at = 0, 0.0
    try:
        while True:
            timeout = max(0.0, retry_at - time.monotonic()) if failures else idle
            readable, _, _ = select.select([wake], [], [], timeout)
            if readable and not os.read(wake, 1 << 16):  # drain every poke so far; b"": the parent is gone
                return 0
            if failures and time.monotonic() < retry_at:
                continue  # woken during a back-off: the database is still away, wait out the rest
            try:
                node.projector.catch_up()
                failures = 0
            except FlagLedgerError as exc:  # e.g. the database is away: nothing of a failed page was kept
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures - 1, 6))
                retry_at = time.monotonic() + delay
                log.error("projections: %s [%s]; retrying in %.1f s", exc, exc.code, delay)
    finally:
        node.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.exit(follow(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else IDLE_SECONDS))
