"""``flagledger view …``: the read models as each reader may see them (the same answers as the HTTP API)."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import DAY, argument, option
from ledger.runtime.bootstrap import Node

view = group("view", "read-model queries (portal, counter, queues, flags, timeline)")


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _node() -> Node:
    return node(pools=None)  # (as before the move to Click: the configured pools, not a one-shot's)


_PORTAL_AS = "the portal's system account, e.g. 131016/portal (its secret in FLAGLEDGER_SYSTEM_SECRET)"


@command(view, "portal", help="Mynaportal provision records as a viewer sees them (the portal's account only)")
@as_actor(help_=_PORTAL_AS, authenticate=False)  # (its own secret signs it in)
@option("--viewer", required=True, help="number or pseudonym whose credentials log in")
@option("--subject", required=True, help="whose records are displayed")
def portal(actor: Actor, viewer: str, subject: str) -> int:
    from ledger.cli.system import signed_in_system
    from projections.views import portal_records_for

    opened = _node()
    # never a staff member's read (exit 4, system_only), whatever their roles: the records are the person's
    out(_json(portal_records_for(opened, signed_in_system(opened, actor), viewer, subject)))
    return 0


@command(view, "self-info", help="Mynaportal self-information as a viewer sees it (the portal's account only)")
@as_actor(help_=_PORTAL_AS, authenticate=False)  # (its own secret signs it in)
@option("--viewer", required=True, help="number or pseudonym whose credentials log in")
@option("--subject", required=True, help="whose records are displayed")
def self_info(actor: Actor, viewer: str, subject: str) -> int:
    from ledger.cli.system import signed_in_system
    from projections.views import self_information_for

    opened = _node()
    out(_json(self_information_for(opened, signed_in_system(opened, actor), viewer, subject)))
    return 0


@command(view, "nationwide", help="is a person protected anywhere (role-filtered)")
@as_actor()
@option("--subject", required=True)
@option("--purpose", default=None, help="refused (exit 4): other agencies' holdings are never shown")
def nationwide(actor: Actor, subject: str, purpose: str | None) -> int:
    from projections.views import nationwide_view

    out(_json(nationwide_view(_node(), actor, subject, purpose=purpose)))
    return 0


@command(view, "counter", help="what the counter may tell about this agency's queries on a person")
@as_actor()
@option("--subject", required=True)
def counter(actor: Actor, subject: str) -> int:
    from projections.views import counter_view

    out(_json(counter_view(_node(), actor, subject)))
    return 0


@command(view, "flags", help="flags held by the actor's agency, with history")
@as_actor()
@option("--subject", default=None)
def flags(actor: Actor, subject: str | None) -> int:
    from projections.views import agency_flag_state

    for row in agency_flag_state(_node(), actor, subject):
        out(_json(row))
    return 0


@command(
    view,
    "queue",
    help="approvals, held requests, reviews due, protection-body requests; in hub mode the hub's consultations, "
    "cases and escalations",
)
@as_actor()
@option("--today", type=DAY, default=None)
def queue(actor: Actor, today: date | None) -> int:
    from consumers.linkage_queue import work_queue

    out(_json(work_queue(_node(), actor, today)))
    return 0


@command(view, "timeline", help="every event about a person (auditors; the read is recorded)")
@as_actor()
@option("--subject", required=True)
@option("--purpose", required=True)
def timeline(actor: Actor, subject: str, purpose: str) -> int:
    from projections.views import subject_timeline

    for entry in subject_timeline(_node(), actor, subject, purpose):
        out(_json(entry))
    return 0


@command(view, "liaison", help="resolve a liaison reference to your agency's holding (the read is recorded)")
@as_actor()
@argument("token")
@option("--purpose", required=True, help="why the protected person is looked up (recorded)")
def liaison(actor: Actor, token: str, purpose: str) -> int:
    from projections.views import resolve_liaison

    # recorded (an AccessRecord) before it is printed, as the API's /queries/liaison
    out(_json(resolve_liaison(_node(), actor, token, purpose=purpose)))
    return 0


@command(view, "positions", help="each projection's position against the log head")
def positions() -> int:
    opened = _node()
    head = opened.app.max_position()
    for name, pos in sorted(opened.projector.positions().items()):
        out({"projection": name, "position": pos, "log_head": head, "behind": max(head - pos, 0)})
    return 0
