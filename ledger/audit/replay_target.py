"""Where an as-of replay (:mod:`ledger.audit.replay`) writes, and the arguments that name it.

A replay holds protected details and must never land in the node's own databases: :func:`resolve_target`
refuses them and creates new SQLite targets private (0600 under a 0700 folder); URLs are shown with their
password hidden (:func:`safe_url`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ledger.domain.types import parse_moment
from ledger.errors import InputError
from ledger.files import private_dir, private_file
from ledger.storage import with_driver
from projections.base import create_engine
from projections.node import NodeSettings

__all__ = ["open_target", "parse_instant", "resolve_target", "safe_url", "same_pg_database"]


def parse_instant(value: str, what: str = "--as-of") -> datetime:
    """An ISO 8601 instant *with* a UTC offset (``2026-11-25T10:00:00+09:00`` or ``...Z``), as UTC.

    A bare local time is refused rather than guessed: an auditor's "10:00" in JST and a server's in UTC are
    nine hours apart, and a replay at the wrong instant answers the wrong question without any sign of it.
    One outside the ledger's calendar (``ledger.domain.types.FIRST_DAY``…``LAST_DAY``) is refused too.
    """
    return parse_moment(value, what)


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages and output."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def same_pg_database(a: str, b: str) -> bool:
    ua, ub = make_url(a), make_url(b)
    return (ua.host or "127.0.0.1", ua.port or 5432, ua.database or "postgres") == (
        ub.host or "127.0.0.1",
        ub.port or 5432,
        ub.database or "postgres",
    )


def resolve_target(config: NodeSettings, target: str | None, label: str) -> str:
    """The SQLAlchemy URL of the replay target; refuses anything that is the node's own databases.

    ``None`` makes a new SQLite file under ``DATA_DIR/audit/`` (0700: a replay holds protected details).
    A ``postgresql://`` URL names an existing, empty database; anything else is a path to a SQLite file.
    """
    if target is None:
        folder = private_dir(config.data_dir / "audit")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        # created 0600 before SQLite opens it (its -wal/-shm files take the database file's mode)
        return f"sqlite:///{private_file(folder / f'replay-{label}-at-{stamp}.sqlite').resolve()}"
    if "://" in target:
        scheme, rest = target.split("://", 1)
        if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            url = with_driver(target)
            live = config.views_url()
            if live.startswith("postgresql") and same_pg_database(url, live):
                raise InputError(
                    f"{safe_url(url)} is this node's own database: replay into a separate, empty database "
                    "(create one, e.g. `createdb flagledger_audit`)"
                )
            return url
        if scheme != "sqlite":
            raise InputError(f"unsupported target {safe_url(target)}: give a postgresql:// URL or a file path")
        path = Path(rest[1:] if rest.startswith("/") else rest)
    else:
        path = Path(target)
    path = path.expanduser().resolve()
    live_files = {(config.data_dir / n).resolve() for n in ("views.sqlite", "ledger.sqlite")}
    if path in live_files:
        raise InputError(f"{path} is one of this node's own databases: choose another target file")
    if path.is_dir():
        raise InputError(f"{path} is a directory: give a file name for the replay database")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        private_file(path)  # a replay holds protected details: 0600 (an existing file keeps its mode)
    return f"sqlite:///{path}"


def open_target(url: str) -> Engine:
    """An engine on a replay target (SQLite pragmas as for the live views)."""
    try:
        return create_engine(url)
    except (ArgumentError, SQLAlchemyError, ModuleNotFoundError) as exc:
        raise InputError(f"cannot use {safe_url(url)} as a replay target: {exc}") from exc
