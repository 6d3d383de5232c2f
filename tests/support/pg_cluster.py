"""A private PostgreSQL cluster for tests that read the server's own files: its WAL, a WAL archive, base backups.

The machine's shared server (127.0.0.1:5432) allows no replication connection (``pg_hba.conf``: ``all`` does not
match ``replication``), archives nothing, and its WAL is every other test's too. So such a test runs its own
cluster: ``initdb`` in a temporary directory (as the ``postgres`` account when the suite runs as root — the server
refuses to run as root), on a free loopback port, WAL archived by ``cp`` into ``archive/`` beside it, replication
trusted from loopback (initdb's default ``pg_hba.conf``). Stopped by its postmaster's PID and removed afterwards,
whatever happened. :func:`unavailable` says why none can be made here (the test then skips saying so).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.tansu import free_port

__all__ = ["Cluster", "bindir", "private_cluster", "started_copy", "unavailable"]

_OWNER = "postgres"  # the account the server runs as when the suite runs as root


def bindir() -> Path | None:
    """The directory of ``initdb``, ``pg_ctl``, ``pg_basebackup`` of one PostgreSQL version (Debian keeps them
    under /usr/lib/postgresql/N/bin; /usr/bin's ``pg_basebackup`` is a wrapper that picks a version)."""
    found = shutil.which("initdb")
    if found:
        real = Path(found).resolve().parent
        if (real / "pg_ctl").exists() and (real / "pg_basebackup").exists():
            return real
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_basebackup").exists():
            return candidate
    return None


def unavailable() -> str | None:
    """Why no private cluster can run here, or None."""
    if bindir() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) on this machine"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_OWNER)
        except KeyError:
            return f"running as root and there is no {_OWNER!r} account to run a private PostgreSQL cluster as"
        if shutil.which("runuser") is None:
            return "running as root and no runuser to run a private PostgreSQL cluster as another account"
    return None


def _as_owner(argv: Sequence[str]) -> list[str]:
    return ["runuser", "-u", _OWNER, "--", *argv] if os.geteuid() == 0 else list(argv)


def _run(argv: Sequence[str], what: str, timeout: float, log: Path | None = None, cwd: Path | None = None) -> None:
    """Run a server tool; a failure says what failed and why (its output, the server's log)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}\n{tail}".strip())


def _give_to_owner(path: Path) -> None:
    if os.geteuid() != 0:
        return
    owner = pwd.getpwnam(_OWNER)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, owner.pw_uid, owner.pw_gid)


@dataclass
class Cluster:
    """A running private cluster: ``home`` holds ``data/`` (its data directory, ``pg_wal/`` in it), ``archive/``
    (its archived WAL segments) and ``server.log``."""

    home: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def archive_current_segment(self, timeout: float = 30.0) -> str:
        """Checkpoint, close the current WAL segment and wait until the archiver copied it (so the archive holds
        every WAL record written so far); the segment's name."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert row is not None
            segment = str(row[0])
            deadline = time.monotonic() + timeout
            while not (self.archive / segment).exists():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the private cluster did not archive {segment} within {timeout:.0f} s")
                time.sleep(0.1)
        return segment

    def base_backup(self, into: Path) -> Path:
        """A plain-format base backup with the WAL it needs (``pg_basebackup -X stream``), as an operator takes
        one; made readable by the cluster's account (so it can be started as a cluster of its own)."""
        _run(
            [
                str(self.bin / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"),
                *("-D", str(into), "-X", "stream", "-c", "fast", "--no-sync"),
            ],
            "pg_basebackup",
            120,
        )
        _give_to_owner(into)
        return into


def _start(bin: Path, data: Path, port: int, log: Path, options: Sequence[str]) -> int:
    opts = " ".join(
        [
            f"-p {port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={data.parent}",
            "-c max_connections=40",
            "-c shared_buffers=16MB",
            *options,
        ]
    )
    try:
        _run(
            _as_owner([str(bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", opts, "start"]),
            f"starting a private PostgreSQL server on {data}",
            90,
            log,
        )
    except (RuntimeError, subprocess.TimeoutExpired):
        with contextlib.suppress(OSError, ValueError, IndexError):  # a postmaster still starting: stop it too
            _stop(bin, data, int((data / "postmaster.pid").read_text().split()[0]))
        raise
    return int((data / "postmaster.pid").read_text().split()[0])


def _stop(bin: Path, data: Path, pid: int) -> None:
    """Stop the postmaster ``pid`` (pg_ctl first; then the PID itself if it is still there)."""
    subprocess.run(
        _as_owner([str(bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"]),
        check=False,
        capture_output=True,
        timeout=60,
    )
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 0)  # still running: pg_ctl could not stop it
        os.kill(pid, signal.SIGKILL)


@contextmanager
def private_cluster(settings: Sequence[str] = ()) -> Iterator[Cluster]:
    """A fresh cluster (1 MB WAL segments, WAL archived into ``archive/``, ``wal_compression`` off as by default),
    stopped and removed afterwards. ``settings``: more ``-c name=value`` options."""
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    bin = bindir()
    assert bin is not None
    home = Path(tempfile.mkdtemp(prefix="flagledger-pg-"))
    pid: int | None = None
    try:
        home.chmod(0o755)  # the cluster's account must reach data/ and archive/ (each its own, 0700)
        (home / "archive").mkdir()
        _give_to_owner(home)
        _run(
            _as_owner(
                [
                    str(bin / "initdb"),
                    *("-D", str(home / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8"),
                    *("--locale=C", "--no-sync", "--wal-segsize=1"),
                ]
            ),
            "initdb",
            180,
            cwd=home,
        )
        port = free_port()
        archive = f"test ! -f {home}/archive/%f && cp %p {home}/archive/%f"
        options = [
            "-c wal_level=replica",
            "-c archive_mode=on",
            f"-c archive_command='{archive}'",
            "-c wal_compression=off",
            "-c fsync=off",  # durability is not under test; what is written to the files is the same
            *settings,
        ]
        pid = _start(bin, home / "data", port, home / "server.log", options)
        yield Cluster(home, port, bin)
    finally:
        if pid is not None:
            _stop(bin, home / "data", pid)
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def started_copy(data: Path, bin: Path) -> Iterator[str]:
    """Start a cluster on a copied data directory — a base backup as an insider restores it: the server
    replays the WAL the backup carries, then serves what the backup held — and yield its admin DSN."""
    port = free_port()
    (data / "standby.signal").unlink(missing_ok=True)
    (data / "recovery.signal").unlink(missing_ok=True)
    data.chmod(0o700)
    pid = _start(bin, data, port, data.parent / f"{data.name}.log", ["-c archive_mode=off"])
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        _stop(bin, data, pid)
