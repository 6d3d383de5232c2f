"""Run inside a private mount namespace on a tiny tmpfs (see test_disk_full.py): fill the disk, try commands.

``python -m tests.faults.diskfull_driver SRC MOUNT OUT``: copies the node SRC onto the tmpfs at MOUNT, then for
several amounts of free space left by a ballast file, tries a command through the application and one through
the CLI, records what happened, checks the log after each failure, frees the space and repeats the command.
Writes a JSON report to OUT/report.json and copies the node back to OUT/node for the caller's checks.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.errors import FlagLedgerError
from ledger.runtime.bootstrap import open_node
from tests.conftest import B
from tests.support.people import individual_number
from tests.support.staff import password_of

# bytes left free by the ballast at each attempt
FREE_BYTES = tuple(int(k) << 10 for k in os.environ.get("FLAGLEDGER_DISKFULL_FREE_KIB", "0,24").split(","))


def fill(mount: Path, leave: int) -> Path:
    """Write a ballast file until the filesystem is full, then give back ``leave`` bytes."""
    ballast = mount / "ballast"
    # unbuffered: a buffered writer keeps the part of a chunk the full disk refused and fails again on close
    with ballast.open("wb", buffering=0) as fh:
        chunk = b"\0" * (64 << 10)
        while True:
            try:
                fh.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    size = ballast.stat().st_size
    os.truncate(ballast, max(0, size - leave))
    return ballast


def attempt(fn: Any) -> dict[str, Any]:
    try:
        fn()
        return {"ok": True}
    except FlagLedgerError as exc:
        return {"ok": False, "ours": True, "code": exc.code, "message": str(exc)}
    except Exception as exc:  # anything else is a finding: reported, never swallowed silently
        return {"ok": False, "ours": False, "type": type(exc).__name__, "message": str(exc)}


def main(src: Path, mount: Path, out: Path) -> None:
    node_dir = mount / "node"
    shutil.copytree(src, node_dir)
    rng = random.Random(7)
    flagledger = str(Path(sys.executable).with_name("flagledger"))
    report: list[dict[str, Any]] = []
    for leave in FREE_BYTES:
        node = open_node(node_dir)
        for who in ("req", "apr", "op"):  # this driver is a process of its own: the cast unlocks their keys
            node.app.unlock(B, who, password_of(B, who))
        before = node.app.max_position()
        subject = individual_number(rng)
        ballast = fill(mount, leave)

        def command(node: Any = node, subject: str = subject) -> None:
            rid = node.app.request_flags(Actor(B, "req"), subject, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
            node.app.approve_request(Actor(B, "apr"), rid)
            node.app.execute_request(Actor(B, "op"), rid)
            node.projector.catch_up()

        row: dict[str, Any] = {"free_bytes": leave, "full": attempt(command)}
        row["audit_ok_while_full"] = verify_log(node.app).ok
        row["events_while_full"] = node.app.max_position() - before
        cli_subject = individual_number(rng)
        args = ["--data-dir", str(node_dir), "flag", "request", "--as", f"{B}/req", "--subject", cli_subject]
        env = {**os.environ, "FLAGLEDGER_PASSWORD": password_of(B, "req")}
        cli = subprocess.run([flagledger, *args, "--flag", "NO_AUTO_RESPONSE"], capture_output=True, text=True, env=env)
        row["cli_full"] = {"rc": cli.returncode, "stderr": cli.stderr[-2000:]}
        ballast.unlink()  # space returns
        row["after"] = attempt(command)
        cli = subprocess.run([flagledger, *args, "--flag", "NO_AUTO_RESPONSE"], capture_output=True, text=True, env=env)
        row["cli_after"] = {"rc": cli.returncode, "stderr": cli.stderr[-2000:]}
        row["audit_ok_after"] = verify_log(node.app).ok
        node.close()
        report.append(row)
    shutil.copytree(node_dir, out / "node")
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
