"""``flagledger consumers parked|replay``: messages the consumer parked (poison, or held), and their replay."""

from __future__ import annotations

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import PARKED_ID, argument, option

consumers = group("consumers", "parked (poison) messages")


@command(consumers, "parked", help="list parked messages")
def parked() -> int:
    from consumers.parked import parked as parked_rows

    for row in parked_rows(node()):
        out(row)
    return 0


@command(consumers, "replay", help="re-run a parked message after fixing its cause")
@argument("id", type=PARKED_ID)
@option(
    "--accept-revoked-key",
    is_flag=True,
    help="apply an event signed by a key revoked since (code revoked_key_late), once its agency confirmed it: "
    "one administrator proposes (--as, --note), a second one approves (--as); each step is a ledger event",
)
@as_actor(
    required=False,
    authenticate=False,  # (authenticated below, only when a person is needed)
    help_="the administrator taking this step (with --accept-revoked-key; default: the person signed in)",
)
@option("--note", default="", help="how the originating agency confirmed it sent the event (proposer)")
def replay(id: int, accept_revoked_key: bool, actor: Actor | None, note: str) -> int:
    from consumers.parked import replay_parked
    from consumers.revoked_acceptance import accept_revoked

    if accept_revoked_key:
        from ledger.cli.base import signed_in

        step = accept_revoked(node(), id, signed_in(actor), note)
        if step.outcome is None:
            out(
                {
                    "id": id,
                    "outcome": "proposed",
                    "acceptance": step.acceptance_id,
                    "next": f"a second administrator: consumers replay {id} --accept-revoked-key --as AGENCY/STAFF",
                }
            )
            return 0
        outcome = step.outcome
    else:
        outcome = replay_parked(node(), id)
    out({"id": id, "outcome": outcome.kind, "reason": outcome.reason})
    return 0 if outcome.kind != "parked" else 5
