"""How many processes `audit verify` starts by default: the CPUs it may use, its container's quota, at most 4."""

from __future__ import annotations

import os
from pathlib import Path

from ledger.audit.workers import default_workers

CPUS = len(os.sched_getaffinity(0))


def _quota(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "cpu.max"
    f.write_text(text)
    return f


def test_without_a_quota_one_per_usable_cpu_at_most_four(tmp_path: Path) -> None:
    assert default_workers(tmp_path / "absent") == min(4, CPUS)
    assert default_workers(_quota(tmp_path, "max 100000\n")) == min(4, CPUS)


def test_a_container_quota_caps_the_workers(tmp_path: Path) -> None:
    assert default_workers(_quota(tmp_path, "50000 100000\n")) == 1, "half a CPU: checked in one process"
    assert default_workers(_quota(tmp_path, "150000 100000\n")) == min(1, CPUS)
    assert default_workers(_quota(tmp_path, "800000 100000\n")) == min(4, CPUS)


def test_an_unreadable_quota_is_ignored(tmp_path: Path) -> None:
    assert default_workers(_quota(tmp_path, "garbage")) == min(4, CPUS)
