"""A node database stopped at an older revision of the runtime migration chain, to test one migration on rows
an older node left (tests/integration/test_migration_*.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

import ledger.runtime.migrations
from projections.base import create_engine
from tests.support.postgres import temp_database


@contextmanager
def empty_node_database(backend: str | None, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of the backend's kind (SQLite file, or a fresh PostgreSQL database dropped after)."""
    if backend is None:
        made = create_engine(f"sqlite:///{tmp_path / 'node.sqlite'}")
        try:
            yield made
        finally:
            made.dispose()
        return
    with temp_database() as pg:
        made = create_engine(pg.replace("postgresql://", "postgresql+psycopg://"))
        try:
            yield made
        finally:
            made.dispose()


def at_revision(engine: Engine, revision: str) -> None:
    """Run the runtime chain's revisions up to ``revision`` only."""
    config = Config()
    config.set_main_option("script_location", os.path.dirname(ledger.runtime.migrations.__file__))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
