"""What every Alembic chain of ours must hold — the node's, the hub's, the portal's — checked the same way.

Each chain is a package exposing ``HEAD``, ``upgrade(engine)`` (``None`` when it made the tables at head at once,
else the revision it found), ``lock(conn)``, ``migrate(conn)`` and ``current(conn)``. The tests of each chain
keep what is their own (the old shapes they adopt, the rows they keep) and share these.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import ModuleType

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from ledger.storage import create_engine
from tests.support.postgres import temp_database

__all__ = ["migrate_at_once", "new_and_migrated_schemas", "schema", "script_heads", "two_databases"]

REPO = Path(__file__).resolve().parents[2]


def schema(engine: Engine) -> dict[str, object]:
    """Every table's columns (name, type, nullability, default), primary key and indexes."""
    found = inspect(engine)
    return {
        name: (
            [(c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in found.get_columns(name)],
            found.get_pk_constraint(name)["constrained_columns"],
            sorted(str(ix) for ix in found.get_indexes(name)),
        )
        for name in sorted(found.get_table_names())
    }


def script_heads(chain: ModuleType) -> list[str]:
    """The heads of the chain's revision scripts, as Alembic reads them (one, and the chain's ``HEAD``)."""
    config = Config()
    config.set_main_option("script_location", str(Path(str(chain.__file__)).parent))
    return list(ScriptDirectory.from_config(config).get_heads())


@contextmanager
def two_databases(backend: str | None, tmp_path: Path) -> Iterator[list[str]]:
    """Two empty databases of the backend's kind (SQLite files, or fresh PostgreSQL databases), as URLs."""
    with ExitStack() as stack:
        if backend is None:
            yield [f"sqlite:///{tmp_path / f'{n}.sqlite'}" for n in ("one", "two")]
        else:
            yield [
                stack.enter_context(temp_database()).replace("postgresql://", "postgresql+psycopg://") for _ in range(2)
            ]


def new_and_migrated_schemas(chain: ModuleType, urls: list[str]) -> tuple[dict[str, object], dict[str, object]]:
    """The tables a new database gets at head at once (``urls[0]``), and those every revision run in turn makes
    of an empty one (``urls[1]``) — both at ``HEAD`` after."""
    new, migrated = (create_engine(u) for u in urls)
    try:
        assert chain.upgrade(new) is None
        with migrated.connect() as conn, conn.begin():
            chain.lock(conn)
            chain.migrate(conn)
        for engine in (new, migrated):
            with engine.connect() as conn:
                assert chain.current(conn) == chain.HEAD
        return schema(new), schema(migrated)
    finally:
        new.dispose()
        migrated.dispose()


MIGRATE = """
import importlib, sys, time
from ledger.storage import create_engine
upgrade = importlib.import_module(sys.argv[1]).upgrade
engine = create_engine(sys.argv[2])
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
print(repr(upgrade(engine)))
"""


def migrate_at_once(chain: str, url: str, processes: int) -> list[str]:
    """``processes`` processes opening ``url`` at the same moment, each upgrading it with the chain (a module
    name); what each ``upgrade`` returned, sorted. Exactly one should find the database to adopt or make."""
    importlib.import_module(chain)  # a wrong name fails here, not in a child's stderr
    start = time.time() + 4  # every process imported and connected by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, chain, url, str(start)],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * processes, [err[-2000:] for _, err in results]
    return sorted(out.strip() for out, _ in results)
