"""The standard test node, built once per test process and copied for each test that asks for it.

Most tests start from the same node: A, B, C and a support centre, encrypted, with the standard staff enrolled
through the two-administrator path (tests/conftest.py). Building it signs some 150 events and activates about
30 credentials: 1.5–5 s a test, which was most of the suite's time. A copy of the data directory (and, on
PostgreSQL, a database made with ``CREATE DATABASE … TEMPLATE``) is the same node: the same log, keys, roster and
views, opened as any data directory is, with the cast's keys unlocked as :func:`tests.conftest.enrol_standard_staff`
leaves them. Two nodes in one test are never both copies (their keys would be one agency's twice), and a test
that changes the environment ``init`` reads (``FLAGLEDGER_*``), or keeps keys in a token, gets a fresh node.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from ledger.runtime.bootstrap import AgencySpec, Node, init_node, open_node
from ledger.runtime.config import NodeConfig
from tests.support.postgres import ADMIN_DSN, ensure_server
from tests.support.staff import SECOND_ADMIN, password_of

__all__ = ["NodeTemplates"]

# read per test: the autouse fixture gives each test its own session directory; the rest must match the build
_PER_TEST = frozenset({"FLAGLEDGER_CONFIG_DIR"})
_SERVER = "postgresql://postgres@127.0.0.1:5432/"  # where tests.support.postgres.temp_database makes databases


def _environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("FLAGLEDGER_") and k not in _PER_TEST))


class NodeTemplates:
    """Per process: the built standard node for SQLite and for PostgreSQL, and copies of it."""

    def __init__(self, agencies: tuple[AgencySpec, ...], cast: tuple[str, ...], enrol: Callable[[Node], None]):
        self.agencies = agencies
        self.cast = ("admin", SECOND_ADMIN, *cast)
        self.enrol = enrol
        self._root: Path | None = None
        # (backend kind, the FLAGLEDGER_* environment init read) -> the built data directory and database
        self._built: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Path, str | None]] = {}

    def copy(self, data_dir: Path, database_url: str | None) -> Node | None:
        """The standard node at ``data_dir`` (on ``database_url``, a fresh empty database, dropped by its
        owner), or None where a copy would not be the node ``init`` makes now."""
        if os.environ.get("FLAGLEDGER_TEST_KEYS") or os.environ.get("FLAGLEDGER_KEYS_BACKEND"):
            return None  # keys in a token: not in the data directory
        if database_url is not None and not database_url.startswith(_SERVER):
            return None  # another server (e.g. a test's own cluster): the template is not there
        kind = "postgres" if database_url else "sqlite"
        key = (kind, _environment())
        template_dir, template_db = self._built.get(key) or self._build(key)
        shutil.copytree(template_dir, data_dir, symlinks=True)
        if database_url is not None:
            assert template_db is not None
            name = database_url.rsplit("/", 1)[1]
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
            config = NodeConfig.load(data_dir)
            config.database_url = database_url
            config.save()
        node = open_node(data_dir)
        for spec in self.agencies:
            roster = node.app.roster(spec.code)
            for who in self.cast:
                if roster is not None and roster.current_key(who) is not None:
                    node.app.unlock(spec.code, who, password_of(spec.code, who))
        return node

    def _build(self, key: tuple[str, tuple[tuple[str, str], ...]]) -> tuple[Path, str | None]:
        kind = key[0]
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="flagledger-template-"))
            atexit.register(self._remove)
        url = None
        template_db = None
        if kind == "postgres":
            ensure_server()
            template_db = f"fl_template_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{template_db}"')
            url = f"{_SERVER}{template_db}"
        path = self._root / f"{kind}-{len(self._built)}"
        node = init_node(path, self.agencies, database_url=url)
        try:
            self.enrol(node)
        finally:
            node.close()
        self._built[key] = (path, template_db)
        return path, template_db

    def _remove(self) -> None:
        for _, template_db in self._built.values():
            if template_db is None:
                continue
            try:
                with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{template_db}" WITH (FORCE)')
            except psycopg.Error:
                pass  # the server is gone: nothing left to drop
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
