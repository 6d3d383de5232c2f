"""The node's scheduled ``flagledger audit views``: a child process every ``every`` seconds, its result kept.

The check rebuilds every view, which takes as long as ``projections rebuild`` (about 15k events/s here): run in
the node's loop it would stop replication for that long, so it runs as a child process (``flagledger audit
views``), started when due and collected when it has finished; the node loop only looks whether it has.
Its JSON report and exit code become ``node-status.json``'s ``audit_views`` and the
``flagledger_views_audit_*`` metrics. The first run starts with the node; each next one ``every`` seconds after
the previous one finished, so the detection window for a changed view row is at most ``every`` plus one run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ledger.files import open_private, private_dir

__all__ = ["DEFAULT_EVERY", "ScheduledViewsAudit"]

DEFAULT_EVERY = 3600.0  # seconds between the end of one check and the start of the next
_ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("flagledger.node")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ScheduledViewsAudit:
    def __init__(self, data_dir: Path, every: float = DEFAULT_EVERY) -> None:
        self.data_dir = Path(data_dir)
        self.every = every
        self.folder = self.data_dir / "audit"
        self._process: subprocess.Popen[bytes] | None = None
        self._files: tuple[IO[Any], IO[Any]] | None = None
        self._due = time.monotonic()  # the first check starts with the node
        self._started_at: str | None = None
        self.last: dict[str, Any] | None = None  # the last finished run (see status)
        self.runs = 0

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def tick(self) -> bool:
        """Start a check when one is due, collect one that finished; True when a result just came in."""
        if not self.enabled:
            return False
        if self._process is not None:
            if self._process.poll() is None:
                return False
            self._collect()
            return True
        if time.monotonic() >= self._due:
            self._start()
        return False

    def _start(self) -> None:
        private_dir(self.folder)
        out = open_private(self.folder / "views-check.out", "wb")
        err = open_private(self.folder / "views-check.err", "wb")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        # not `-m ledger.cli.main`: run as __main__, its sub-commands would register on another module object
        cmd = [
            sys.executable,
            "-c",
            "import sys; from ledger.cli.main import main; sys.exit(main())",
            "--data-dir",
            str(self.data_dir),
            "audit",
            "views",
            "--quiet",
        ]
        self._files = (out, err)
        self._started_at = _now()
        self._process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)

    def _collect(self) -> None:
        process, files = self._process, self._files
        assert process is not None and files is not None
        self._process, self._files = None, None
        for fh in files:
            fh.close()
        code = process.returncode
        out = (self.folder / "views-check.out").read_text(errors="replace").strip().splitlines()
        err = (self.folder / "views-check.err").read_text(errors="replace").strip().splitlines()
        report: dict[str, Any] = {}
        if out:
            try:
                report = json.loads(out[-1])
            except ValueError:
                report = {}
        result = "equal" if code == 0 else ("different" if code == 6 and report else "failed")
        self.last = {
            "started_at": self._started_at,
            "finished_at": _now(),
            "result": result,
            "exit_code": code,
            "position": report.get("position"),
            "rows": report.get("rows"),
            "seconds": report.get("seconds"),
            "first_difference": report.get("first_difference"),
            "error": None if result != "failed" else (err[-1] if err else f"exit code {code}"),
        }
        self.runs += 1
        self._due = time.monotonic() + self.every
        if result == "different":
            diff = report.get("first_difference") or {}
            log.error("ALARM: the views differ from a rebuild from the log: %s", diff.get("text"))
        elif result == "failed":
            log.error("audit views failed: %s", self.last["error"])
        else:
            log.info("audit views: the views equal a rebuild from the log at position %s", report.get("position"))

    def status(self) -> dict[str, Any]:
        """What ``node-status.json`` says under ``audit_views``."""
        if not self.enabled:
            return {"enabled": False}
        return {
            "enabled": True,
            "every_seconds": self.every,
            "running_since": self._started_at if self._process is not None else None,
            "runs": self.runs,
            "last": self.last,
        }

    def close(self, timeout: float = 10.0) -> None:
        """Stop a check still running (a half-done check changes nothing; its scratch is removed by the child)."""
        process, files = self._process, self._files
        self._process, self._files = None, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # KeyboardInterrupt: the child removes its scratch on the way out
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if files is not None:
            for fh in files:
                fh.close()
