"""How much one flagledger process takes on at once: PostgreSQL connections and concurrent API requests.

A process has two connection pools: the event store's (the eventsourcing library's psycopg pool) and the
views' (SQLAlchemy). Each keeps ``size`` connections open and opens up to ``overflow`` more while busy. A
one-shot command (``flagledger flag approve …``) works on one thread and takes the minimum, :data:`ONE_SHOT`;
``serve`` and ``node`` answer several API requests at once and take the configured sizes. A server whose
``max_connections`` are all taken for a moment (a burst of commands) refuses new connections; both pools then
wait for a slot, retrying for up to ``CONNECT_WAIT`` seconds, instead of failing the command.

Settings: ``config.json`` ``"capacity": {"pool_size": 4, "pool_overflow": 8, "api_concurrency": 8,
"shutdown_timeout": 10}``, overridden by ``FLAGLEDGER_DATABASE_POOL_SIZE``, ``FLAGLEDGER_DATABASE_POOL_OVERFLOW``,
``FLAGLEDGER_API_CONCURRENCY``, ``FLAGLEDGER_SHUTDOWN_TIMEOUT`` (and ``flagledger serve`` flags).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import Field

from ledger.errors import ConfigurationError
from ledger.settings import Section, section_config


class _Configured(Protocol):
    """What :meth:`Capacity.from_config` reads of a node's configuration (``ledger.runtime.config`` sits above
    this layer, so it is named by shape)."""

    @property
    def capacity(self) -> Mapping[str, Any]: ...

    @property
    def database_url(self) -> str | None: ...


__all__ = ["CONNECT_WAIT", "ONE_SHOT", "Capacity", "PoolSizes", "retry_while", "retry_while_server_full", "server_full"]

CONNECT_WAIT = 30.0  # seconds, as the event store's pool waits for a connection
TOO_MANY_CONNECTIONS = "53300"  # SQLSTATE: the server has no free connection slot
# a refused *connection* carries no SQLSTATE in psycopg (no result came back): the server's words tell it
FULL_SERVER_WORDS = ("too many clients", "too many connections", "remaining connection slots are reserved")
MAX_API_CONCURRENCY = 32  # anyio's 40 worker threads, less room for the node loop and a margin
MAX_SQLITE_CONCURRENCY = 13  # the event store library's SQLite pool (15), less the node loop and a margin

T = TypeVar("T")


@dataclass(frozen=True)
class PoolSizes:
    """Connections of each of a process's two pools: ``size`` kept open, up to ``overflow`` more when busy."""

    size: int
    overflow: int

    @property
    def most(self) -> int:
        return self.size + self.overflow


# one thread, one connection of each pool; the second covers a nested use instead of waiting for the first
ONE_SHOT = PoolSizes(1, 1)


class Capacity(Section):
    """What a long-running process (``serve``, ``node``) takes on at once."""

    model_config = section_config(env_ignore_empty=True)
    section: ClassVar[str] = "capacity"

    pool_size: int = Field(4, validation_alias="FLAGLEDGER_DATABASE_POOL_SIZE")
    pool_overflow: int = Field(8, validation_alias="FLAGLEDGER_DATABASE_POOL_OVERFLOW")
    # requests worked on at once; the rest wait in order (ledger.api.gate)
    api_concurrency: int = Field(8, validation_alias="FLAGLEDGER_API_CONCURRENCY")
    # seconds SIGTERM waits for requests in progress before cancelling the rest
    shutdown_timeout: int = Field(10, validation_alias="FLAGLEDGER_SHUTDOWN_TIMEOUT")

    @classmethod
    def from_config(cls, config: _Configured | None, **overrides: Any) -> Capacity:
        capacity = cls.load(config.capacity if config is not None else None, **overrides)
        capacity.check(sqlite=config is not None and not config.database_url)
        return capacity

    def check(self, sqlite: bool = False) -> None:
        if self.pool_size < 1 or self.pool_overflow < 0:
            raise ConfigurationError("capacity: pool_size must be at least 1 and pool_overflow at least 0")
        # the library's SQLite pool holds 15 connections, whatever is configured
        most = MAX_SQLITE_CONCURRENCY if sqlite else MAX_API_CONCURRENCY
        if not 1 <= self.api_concurrency <= most:
            raise ConfigurationError(f"capacity: api_concurrency must be 1-{most}" + (" on SQLite" if sqlite else ""))
        if self.pool_size + self.pool_overflow < self.api_concurrency + 2:
            # every request admitted needs a connection of each pool, and the node loop one more
            raise ConfigurationError(
                "capacity: pool_size + pool_overflow must be at least api_concurrency + 2 "
                f"({self.pool_size} + {self.pool_overflow} < {self.api_concurrency} + 2)"
            )
        if self.shutdown_timeout < 1:
            raise ConfigurationError("capacity: shutdown_timeout must be at least 1 second")

    @property
    def pools(self) -> PoolSizes:
        return PoolSizes(self.pool_size, self.pool_overflow)


def server_full(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL refusing a connection because every slot is taken."""
    if getattr(exc, "sqlstate", None) == TOO_MANY_CONNECTIONS:
        return True
    text = str(exc).lower()
    return any(words in text for words in FULL_SERVER_WORDS)


def retry_while(op: Callable[[], T], transient: Callable[[Exception], bool], wait: float) -> T:
    """``op()``, tried again with growing, spread-out pauses while it fails with an error ``transient`` accepts,
    for at most ``wait`` seconds; any other error, or the last one, is raised."""
    deadline = time.monotonic() + wait
    pause = 0.05
    while True:
        try:
            return op()
        except Exception as exc:
            left = deadline - time.monotonic()
            if not transient(exc) or left <= 0:
                raise
        # spread a burst's retries out, and keep trying until the wait is used up (not a pause short of it)
        time.sleep(min(pause * random.uniform(0.5, 1.5), left))
        pause = min(pause * 2, 1.0)


def retry_while_server_full(connect: Callable[[], T], wait: float = CONNECT_WAIT) -> T:
    """``connect()``, tried again with growing pauses while the server answers "too many clients"."""
    return retry_while(connect, server_full, wait)


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may use: those it is pinned to and, in a container, its CPU quota (cgroup v2
    ``cpu.max``) — a pod limited to half a CPU on a 32-CPU host gets one, not 32 (worker pools: ``audit
    verify``'s, the hub's openers)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) // int(period))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit readable: the CPUs are the limit
    return max(1, cpus)
