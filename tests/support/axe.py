"""axe-core (from npm, installed by deploy/browser-deps.sh into build/axe/) run inside a console page in the
browser test: every page a staff member works on must have no WCAG 2.1 A/AA violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).resolve().parents[2] / "build" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The WCAG 2.1 A/AA violations axe-core finds on the page as it is now (with the offending nodes)."""
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `bash deploy/browser-deps.sh` (npm install into build/axe)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated through the DevTools protocol, which the console's CSP (no inline scripts) does not block;
        # the test never weakens the page's own policy (bypass_csp) to run it
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", TAGS
    )
    return list(result["violations"])


def assert_accessible(page: Any, name: str) -> None:
    """0 violations, else the rule ids, their help and the first offending elements, so the fix is obvious."""
    found = axe_violations(page)
    lines = [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}" for v in found]
    assert not found, f"{name}: {len(found)} WCAG 2.1 A/AA violation(s) on {page.url}:\n" + "\n".join(lines)
