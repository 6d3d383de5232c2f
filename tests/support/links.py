"""Number changes the way staff make them since issue 18: a requester asks, a different approver approves."""

from __future__ import annotations

from ledger.app import Actor, FlagLedger

REASON = "個人番号変更通知 (number-change notice) seen at the counter"


def link(
    app: FlagLedger, agency: str, old: str, new: str, requester: str = "req", approver: str = "apr"
) -> tuple[str, str]:
    """Link ``old`` → ``new`` at ``agency`` through the four-eyes path; (old, new) pseudonyms."""
    rid = app.request_link(Actor(agency, requester), old, new, REASON)
    done = app.approve_link(Actor(agency, approver), rid)
    return str(done["old"]), str(done["new"])


def unlink(app: FlagLedger, agency: str, old: str, requester: str = "req", approver: str = "apr") -> dict[str, object]:
    """Undo ``agency``'s link of ``old`` through the four-eyes path; the approval's answer."""
    rid = app.request_unlink(Actor(agency, requester), old, "wrong person linked")
    return app.approve_link(Actor(agency, approver), rid)
