"""What one process takes on at once: pool sizes reach the event store and the views engine, one-shot commands
take the minimum, and settings that could starve admitted requests of a connection are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.api.gate import ConcurrencyGate
from ledger.capacity import ONE_SHOT, Capacity, PoolSizes, server_full
from ledger.errors import ConfigurationError
from ledger.runtime.config import NodeConfig
from projections.base import create_engine

PG = "postgresql://flagledger@db:5432/agency_a"


def test_one_shot_commands_hold_one_connection_per_pool_and_servers_the_configured_sizes(tmp_path: Path) -> None:
    """Defends every agency on a shared PostgreSQL server from a burst of staff commands (an insider or a busy
    day must not exhaust its connections): a command keeps one connection per pool, a server its capacity."""
    config = NodeConfig(data_dir=tmp_path, database_url=PG, encryption=False)
    env = config.ledger_env()
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"]) == ("1", "1")
    served = config.ledger_env(Capacity.from_config(config).pools)
    assert (served["POSTGRES_POOL_SIZE"], served["POSTGRES_MAX_OVERFLOW"]) == ("4", "8")
    engine = create_engine(config.views_url(), ONE_SHOT)
    try:
        assert (engine.pool.size(), engine.pool._max_overflow) == (1, 1)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_capacity_comes_from_the_config_file_then_the_environment_then_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defends the operator's (administrator's) settings from being silently ignored."""
    config = NodeConfig(data_dir=tmp_path, capacity={"pool_size": 2, "pool_overflow": 10, "api_concurrency": 6})
    config.save()
    assert json.loads(config.path.read_text())["capacity"]["pool_size"] == 2
    loaded = NodeConfig.load(tmp_path)
    assert Capacity.from_config(loaded) == Capacity(pool_size=2, pool_overflow=10, api_concurrency=6)
    monkeypatch.setenv("FLAGLEDGER_API_CONCURRENCY", "4")
    monkeypatch.setenv("FLAGLEDGER_SHUTDOWN_TIMEOUT", "3")
    assert Capacity.from_config(loaded).api_concurrency == 4
    assert Capacity.from_config(loaded, api_concurrency=2).api_concurrency == 2
    assert Capacity.from_config(loaded).shutdown_timeout == 3
    assert Capacity.from_config(loaded).pools == PoolSizes(2, 10)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"pool_size": 0}, "pool_size must be at least 1"),
        ({"pool_overflow": -1}, "pool_overflow at least 0"),
        ({"api_concurrency": 0}, "api_concurrency must be 1-32"),
        ({"api_concurrency": 33, "pool_overflow": 40}, "api_concurrency must be 1-32"),
        ({"api_concurrency": 14, "pool_overflow": 40, "sqlite": True}, "api_concurrency must be 1-13 on SQLite"),
        ({"api_concurrency": 12}, "pool_size + pool_overflow must be at least api_concurrency + 2"),
        ({"shutdown_timeout": 0}, "shutdown_timeout"),
        ({"threads": 4}, "unknown capacity settings"),
        ({"pool_size": "many"}, "bad capacity setting"),
    ],
)
def test_settings_that_could_starve_a_request_are_refused(
    tmp_path: Path, settings: dict[str, object], words: str
) -> None:
    """Defends the request path (the perpetrator gains from an outage): more requests admitted than there are
    connections would make admitted requests wait on each other, so such settings do not start."""
    sqlite = bool(settings.pop("sqlite", False))
    config = NodeConfig(data_dir=tmp_path, capacity=settings, database_url=None if sqlite else PG)
    with pytest.raises(ConfigurationError, match=words.replace("+", r"\+")):
        Capacity.from_config(config)


def test_the_gate_admits_at_most_what_the_worker_threads_can_serve() -> None:
    """Defends the server from the lock-up of issue 16 (41 requests, 40 threads): no gate wider than the threads."""

    async def app(scope: object, receive: object, send: object) -> None:
        return None

    with pytest.raises(ValueError, match="1-32"):
        ConcurrencyGate(app, 40)  # type: ignore[arg-type]
    assert ConcurrencyGate(app, 8).limit == 8  # type: ignore[arg-type]


def test_a_full_server_is_told_by_its_words_as_psycopg_gives_no_code_for_a_refused_connection() -> None:
    """Defends a burst of commands from failing on a momentarily full PostgreSQL server (the administrator's
    work is not lost): the refusals worth waiting for are recognised, and nothing else is retried."""
    assert server_full(Exception("connection failed: FATAL:  sorry, too many clients already"))
    assert server_full(Exception('FATAL:  too many connections for role "agency_a"'))
    assert server_full(Exception("FATAL:  remaining connection slots are reserved for roles with privileges"))
    assert not server_full(Exception('FATAL:  password authentication failed for user "agency_a"'))
    assert not server_full(Exception("could not translate host name"))
