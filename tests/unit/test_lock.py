"""The dependency locks that `bash deploy/dev.sh demo|test` install from cover pyproject.toml: every declared
dependency is pinned to a version it allows, every pin carries hashes, and the runtime lock names the same versions
as the test lock (so `demo` runs what CI tested).

Defends against the broker operator / network (a tampered download is refused by its hash) and against a fresh
machine silently getting other versions than CI: a dependency added to pyproject.toml without `bash deploy/lock.sh`
fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "requirements.lock"
TEST = REPO / "deploy" / "requirements-test.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)")


def pins(lock: Path) -> dict[str, str]:
    found = {}
    for line in lock.read_text().splitlines():
        if m := PIN.match(line):
            found[canonicalize_name(m[1])] = m[2]
    return found


def declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return [Requirement(r) for r in reqs]


@pytest.mark.parametrize(("lock", "extra"), [(BASE, None), (TEST, "test")], ids=["runtime", "test"])
def test_every_declared_dependency_is_pinned_to_an_allowed_version(lock: Path, extra: str | None) -> None:
    locked = pins(lock)
    wrong = []
    for req in declared(extra):
        name = canonicalize_name(req.name)
        if name not in locked:
            wrong.append(f"{req}: not in {lock.name}")
        elif not req.specifier.contains(locked[name], prereleases=True):
            wrong.append(f"{req}: locked at {locked[name]}")
        # an extra such as eventsourcing[postgres] brings its own dependencies: they must be locked too
        wrong.extend(f"{req}: its extra's {dep} not locked" for dep in extra_deps(req) if dep not in locked)
    assert not wrong, f"run `bash deploy/lock.sh`: {wrong}"


def extra_deps(req: Requirement) -> list[str]:
    """Distributions an extra pulls in, as the lock must name them (the few this project uses)."""
    known = {("eventsourcing", "postgres"): ["psycopg", "psycopg-pool"], ("psycopg", "binary"): ["psycopg-binary"]}
    return [d for extra in req.extras for d in known.get((canonicalize_name(req.name), extra), [])]


def test_the_runtime_lock_names_the_test_locks_versions() -> None:
    base, test = pins(BASE), pins(TEST)
    assert base, "the runtime lock pins nothing"
    differ = {name: (v, test.get(name)) for name, v in base.items() if test.get(name) != v}
    assert not differ, f"runtime and test locks disagree: {differ}"


@pytest.mark.parametrize("lock", [BASE, TEST], ids=["runtime", "test"])
def test_every_pin_carries_a_hash(lock: Path) -> None:
    hashed: dict[str, bool] = {}
    current = ""
    for line in lock.read_text().splitlines():
        if m := PIN.match(line):
            current = m[1]
            hashed[current] = False
        elif current and line.strip().startswith("--hash=sha256:"):
            hashed[current] = True
    unhashed = sorted(name for name, ok in hashed.items() if not ok)
    assert hashed and not unhashed, f"{lock.name}: pins without a hash {unhashed}"
