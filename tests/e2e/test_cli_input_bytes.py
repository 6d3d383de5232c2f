"""Bytes on the command line that are not UTF-8: the real ``flagledger`` process refuses them with exit 2,
naming the option, before anything is stored — it used to print a traceback from the JSON encoder.

Threat: **a shell user** (junk pasted into ``--notes`` is stored for good, or crashes the command half-way).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.people import individual_number
from tests.support.staff import activation, cli_env

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))


def flagledger(data_dir: Path, *argv: str | bytes) -> subprocess.CompletedProcess[bytes]:
    text = [a for a in argv if isinstance(a, str)]
    env = cli_env(text, {**os.environ, "LC_ALL": "C.UTF-8"})
    done = subprocess.run([FLAGLEDGER, "--data-dir", str(data_dir), *argv], capture_output=True, env=env, check=False)
    follow = activation(text, done.stdout.decode()) if done.returncode == 0 else None
    if follow is not None:  # the person told their enrolment code activates it (tests/support/staff.py)
        assert flagledger(data_dir, *follow).returncode == 0
    return done


def test_notes_that_are_not_utf8_are_exit_2_naming_the_option(tmp_path: Path) -> None:
    d = tmp_path / "b"
    init = flagledger(d, "init", "--agency", "131024", "--name", "B市", "--kind", "municipality")
    assert init.returncode == 0, init.stderr
    assert flagledger(d, "staff", "enroll", "--as", "131024/admin", "sato", "--role", "requester").returncode == 0
    victim = individual_number()
    bad = flagledger(d, "case", "open", "--as", "131024/sato", "--victim", victim, "--notes", b"\xff\xfe\x80 DV")
    err = bad.stderr.decode(errors="replace")
    assert bad.returncode == 2 and "argument --notes: the value is not valid UTF-8 text" in err, err
    assert "Traceback" not in err and victim not in err
    ok = flagledger(d, "case", "open", "--as", "131024/sato", "--victim", victim, "--notes", "相談メモ")
    assert ok.returncode == 0 and "case_id" in json.loads(ok.stdout)
