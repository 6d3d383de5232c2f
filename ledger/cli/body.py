"""``flagledger body send``: a protection body (police, consultation centre) asks a municipality to set flags."""

from __future__ import annotations

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import choices, option
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
