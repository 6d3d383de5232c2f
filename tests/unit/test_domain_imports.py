"""The domain package imports no storage, transport, key or application code (checked in a fresh interpreter:
this suite's conftest imports the application itself). Threat: an insider with one agency's data dir — a
rule in ledger/domain/ that could read the store, a key or the network could be steered by editing them;
kept pure, the rules are what the tests in tests/unit/domain/ (run with I/O refused) say they are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ledger.domain

DOMAIN = Path(ledger.domain.__file__).parent
FORBIDDEN_ROOTS = {
    "sqlalchemy",
    "kafka",
    "psycopg",
    "psycopg_pool",
    "sqlite3",
    "cryptography",
    "fastapi",
    "projections",
    "consumers",
}
FORBIDDEN = {
    "eventsourcing.persistence",
    "eventsourcing.application",
    "eventsourcing.sqlite",
    "eventsourcing.postgres",
    "ledger.app",
    "ledger.runtime.bootstrap",
    "ledger.log.signing",
    "ledger.log.cipher",
    "ledger.log.mapper",
    "ledger.log.pseudonym",
    "ledger.log.stream_ids",
    "ledger.files",
}


def test_the_domain_modules_pull_in_no_infrastructure() -> None:
    modules = sorted(f"ledger.domain.{p.stem}" for p in DOMAIN.glob("*.py") if p.stem != "__init__")
    assert "ledger.domain.flags" in modules and len(modules) >= 12
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    assert set(modules) <= loaded
    assert not {m for m in loaded if m.split(".")[0] in FORBIDDEN_ROOTS}
    assert not loaded & FORBIDDEN
