"""``flagledger erase …``: erase a person's data at the end of retention, two administrators (issue 22).

``request`` asks (whom, why); another administrator of the agency runs ``approve`` (or ``reject``), which records
the approval and the erasure in the log, destroys the person's data keys and scrubs the node's files
(docs/erasure.md). ``audit verify`` then reports the erased events as erased, with that approval.
"""

from __future__ import annotations

from uuid import UUID

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import UUID_ID, argument, option

erase = group("erase", "erase a person's data (four eyes; the log still verifies)")


@command(erase, "request", help="ask to erase a person's data (another administrator approves)")
@as_actor()
@option("--subject", required=True, help="the person: individual number or pseudonym")
@option("--reason", required=True, help="why: e.g. the retention period of the case ended")
def request(actor: Actor, subject: str, reason: str) -> int:
    rid = node().app.request_erasure(actor, subject, reason)
    out({"request_id": str(rid), "status": "pending"})
    return 0


@command(erase, "approve", help="approve another administrator's erasure request: destroys the person's data keys")
@as_actor()
@argument("request_id", type=UUID_ID)
@option("--note", default="")
def approve(actor: Actor, request_id: UUID, note: str) -> int:
    from ledger.runtime.erasure_scrub import scrub_after_erasure

    opened = node()
    done = opened.app.approve_erasure(actor, request_id, note)
    scrub_after_erasure(opened)
    out({**done, "status": "erased"})
    return 0


@command(erase, "reject", help="reject another administrator's erasure request")
@as_actor()
@argument("request_id", type=UUID_ID)
@option("--reason", required=True)
def reject(actor: Actor, request_id: UUID, reason: str) -> int:
    node().app.reject_erasure(actor, request_id, reason)
    out({"request_id": str(request_id), "status": "rejected"})
    return 0


@command(
    erase,
    "reapply",
    help="destroy again the data keys the log records as erased (after restoring a backup of the data directory)",
)
def reapply() -> int:
    from ledger.runtime.erasure_scrub import scrub_after_erasure
    from ledger.runtime.subject_keys import reapply_erasures

    opened = node()
    destroyed = reapply_erasures(opened.app)
    if destroyed:
        scrub_after_erasure(opened)
    out({"destroyed": destroyed})
    return 0
