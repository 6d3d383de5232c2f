"""``flagledger body …``: a protection body (support centre, child guidance centre, police) asks a municipality
to set flags and reads the outcome; the municipality's inbox; the law catalogue (docs/bodies.md)."""

from __future__ import annotations

from uuid import UUID

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import UUID_ID, argument, choices, option
from ledger.domain.law import catalogue
from ledger.domain.types import Flag, Reason

body = group("body", "protection-body requests")


@command(body, "send", help="ask a municipality to set flags")
@as_actor()
@option("--municipality", required=True)
@option("--subject", required=True)
@option("--flag", multiple=True, required=True, type=choices(Flag))
@option("--reason", default="dv", type=choices(Reason))
def send(actor: Actor, municipality: str, subject: str, flag: tuple[str, ...], reason: str) -> int:
    bid = node().app.send_body_request(actor, municipality, subject, list(flag), reason)
    out({"body_request_id": str(bid)})
    return 0


@command(body, "list", help="your body's requests and what the municipality did (requested, approved, ...)")
@as_actor()
def list_(actor: Actor) -> int:
    for row in node().app.body_requests(actor):
        out(row)
    return 0


@command(body, "show", help="one of your body's requests and its outcome")
@as_actor()
@argument("body_request_id", type=UUID_ID)
def show(actor: Actor, body_request_id: UUID) -> int:
    out(node().app.body_request_outcome(actor, body_request_id))
    return 0


@command(body, "inbox", help="protection-body requests sent to your municipality, and what was done")
@as_actor()
def inbox(actor: Actor) -> int:
    for row in node().app.body_inbox(actor):
        out(row)
    return 0


@command(body, "law", help="the law catalogue: legal basis → procedure → information kinds a query may name")
def law() -> int:
    out(catalogue().as_dict())
    return 0
