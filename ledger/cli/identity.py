"""``flagledger identity …``: individual-number changes, four eyes at the linking agency (issue 18).

``link`` and ``unlink`` only ask; a different staff member of the same agency runs ``approve`` (or ``reject``),
and only then does the link change. Rules and what an unlink keeps protecting: docs/operations.md,
"Number changes".
"""

from __future__ import annotations

from uuid import UUID

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import UUID_ID, argument, option

identity = group("identity", "individual-number changes")


@command(identity, "link", help="ask to link an old number to the new one (another staff member approves)")
@as_actor()
@option("--old", required=True)
@option("--new", required=True)
@option("--reason", required=True, help="why: e.g. the number-change notice (個人番号変更通知) seen")
def link(actor: Actor, old: str, new: str, reason: str) -> int:
    rid = node().app.request_link(actor, old, new, reason)
    out({"request_id": str(rid), "kind": "link", "status": "pending"})
    return 0


@command(identity, "unlink", help="ask to undo this agency's link of an old number (wrong link, or a second change)")
@as_actor()
@option("--old", required=True)
@option("--reason", required=True)
@option(
    "--second-change",
    is_flag=True,
    default=False,
    help="the person's number changed again: keep every protection on both numbers and the old card retired, "
    "then link the current number to the newer one",
)
def unlink(actor: Actor, old: str, reason: str, second_change: bool) -> int:
    rid = node().app.request_unlink(actor, old, reason, second_change=second_change)
    out({"request_id": str(rid), "kind": "second_change" if second_change else "unlink", "status": "pending"})
    return 0


@command(identity, "approve", help="approve another staff member's link or unlink request")
@as_actor()
@argument("request_id", type=UUID_ID)
@option("--note", default="")
def approve(actor: Actor, request_id: UUID, note: str) -> int:
    done = node().app.approve_link(actor, request_id, note)
    out({**done, "status": "approved"})
    return 0


@command(identity, "reject", help="reject another staff member's link or unlink request")
@as_actor()
@argument("request_id", type=UUID_ID)
@option("--reason", required=True)
def reject(actor: Actor, request_id: UUID, reason: str) -> int:
    node().app.reject_link(actor, request_id, reason)
    out({"request_id": str(request_id), "status": "rejected"})
    return 0


@command(identity, "requests", help="this agency's link, unlink and second-change requests waiting for a decision")
@as_actor()
def requests(actor: Actor) -> int:
    for row in node().app.pending_link_requests(actor):
        out(row)
    return 0
