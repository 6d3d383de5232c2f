"""The README's tour, pasted into bash as a newcomer would: every command succeeds, the flag is set under four eyes,
the query is held, and the log verifies.

Defends against the perpetrator indirectly: a municipal operator whose first walkthrough fails (an invalid number,
a command that is not on PATH) learns the tool from guesses instead of from the documented four-eyes path.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def tour_script() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## A short tour") :]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README.md: the tour has no bash block"
    return match[1]


def test_the_readme_tour_runs_as_pasted(tmp_path: Path) -> None:
    script = tour_script()
    assert "source .venv/bin/activate" in script  # the documented way onto PATH, replaced below by this interpreter's
    script = script.replace("source .venv/bin/activate", "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGLEDGER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmp_path)  # the tour's `mktemp -d` lands here
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # its `flagledger login` session file, not the account's
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"the tour failed:\n{done.stdout}\n{done.stderr}"
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    statuses = [a.get("status") for a in answers]
    assert "executed" in statuses and "in_progress" in statuses  # set under four eyes; the query held
    counter = next(a for a in answers if "protection" in a)
    assert counter["protection"]["protected"] is True
    assert sorted(counter["protection"]["flags"]) == ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]
    assert any(a.get("ok") is True and a.get("events", 0) > 0 for a in answers)  # audit verify
    assert list(tmp_path.glob("*/b/config.json")), "the tour's data directory was not made under TMPDIR"
    assert [a["staff"] for a in answers if "signs_with_session" in a] == ["admin", "admin2", "admin2"]  # logins, whoami
    assert list((tmp_path / "config" / "flagledger" / "sessions").iterdir()) == [], "signed out at the end"
