"""``flagledger year …``: a protected person's year — moves and handover, named risks, the support-measure
term, emergency flags, the clock's step and the year's queue (docs/year.md)."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out, unlocked
from ledger.cli.parsing import DAY, UUID_ID, argument, choices, option
from ledger.domain.moves import MoveSource
from ledger.domain.types import Flag, Reason

year = group("year", "moves and handover, the support-measure term, emergency flags")


@command(year, "move", help="record a protected person's residence change (転出/転入): a handover request")
@as_actor()
@option("--subject", required=True, help="individual number or pseudonym")
@option("--to", "to_agency", required=True, help="the municipality moved to")
@option("--from", "from_agency", default="", help="the municipality moved from (if known here)")
@option("--moved-on", type=DAY, required=True)
@option("--source", default="counter", type=choices(MoveSource))
def move(actor: Actor, subject: str, to_agency: str, from_agency: str, moved_on: date, source: str) -> int:
    mid = node().app.record_move(
        actor, subject, to_agency=to_agency, from_agency=from_agency, moved_on=moved_on, source=source
    )
    out({"move_id": str(mid) if mid else None, "recorded": mid is not None})
    return 0


@command(year, "registry-move", help="a residence change received from the residence registry for AGENCY")
@option("--agency", required=True)
@option("--subject", required=True)
@option("--to", "to_agency", required=True)
@option("--from", "from_agency", default="")
@option("--moved-on", type=DAY, required=True)
def registry_move(agency: str, subject: str, to_agency: str, from_agency: str, moved_on: date) -> int:
    mid = node().app.receive_residence_change(
        agency, subject, to_agency=to_agency, from_agency=from_agency, moved_on=moved_on
    )
    out({"move_id": str(mid) if mid else None, "recorded": mid is not None})
    return 0


@command(year, "queue", help="handovers, last-holder releases, term reminders and escalations, emergency flags")
@as_actor()
def queue(actor: Actor) -> int:
    out(node().app.year_queue(actor))
    return 0


@command(year, "step", help="record the reminders and escalations the clock says are due")
@option("--agency", default=None)
def step(agency: str | None) -> int:
    out({"recorded": node().app.year_step(agency)})
    return 0


@command(year, "apply", help="record the person's support-measure application (申出): a one-year term")
@as_actor()
@option("--subject", required=True)
@option("--applied-on", type=DAY, required=True)
def apply(actor: Actor, subject: str, applied_on: date) -> int:
    app = node().app
    app.record_application(actor, subject, applied_on)
    term = app.term(actor.agency, subject)
    out({"ends_on": term.ends_on if term else None})
    return 0


@command(year, "extend", help="record the person's extension request (延長申出)")
@as_actor()
@option("--subject", required=True)
@option("--requested-on", type=DAY, required=True)
def extend(actor: Actor, subject: str, requested_on: date) -> int:
    out({"ends_on": node().app.request_extension(actor, subject, requested_on)})
    return 0


@command(year, "lapse-propose", help="propose the lapse of a term (requester); no flag is lifted")
@as_actor()
@option("--subject", required=True)
@option("--note", required=True, help="why the term lapses")
def lapse_propose(actor: Actor, subject: str, note: str) -> int:
    node().app.propose_lapse(actor, subject, note)
    out({"lapse": "proposed"})
    return 0


@command(year, "lapse-approve", help="approve a proposed lapse (another person, approver); no flag is lifted")
@as_actor()
@option("--subject", required=True)
@option("--note", default="")
def lapse_approve(actor: Actor, subject: str, note: str) -> int:
    node().app.approve_lapse(actor, subject, note)
    out({"lapse": "approved"})
    return 0


@command(year, "risk", help="name the risk of releasing before the new municipality holds (propose)")
@as_actor()
@option("--subject", required=True)
@option("--flag", multiple=True, required=True, type=choices(Flag))
@option("--risk", required=True, help="who may learn what if protection stops here")
def risk(actor: Actor, subject: str, flag: tuple[str, ...], risk: str) -> int:
    did = node().app.propose_release_risk(unlocked(actor), subject, list(flag), risk)
    out({"decision_id": str(did), "status": "proposed"})
    return 0


@command(year, "risk-approve", help="approve a named risk (another person than its proposer)")
@as_actor()
@argument("decision_id", type=UUID_ID)
def risk_approve(actor: Actor, decision_id: UUID) -> int:
    node().app.approve_release_risk(unlocked(actor), decision_id)
    out({"decision_id": str(decision_id), "status": "approved"})
    return 0


@command(year, "provisional", help="set an emergency flag alone (designated person), in force at once")
@as_actor()
@option("--subject", required=True)
@option("--flag", multiple=True, required=True, type=choices(Flag))
@option("--reason", default="dv", type=choices(Reason))
@option("--explanation", required=True, help="why it cannot wait for the approval chain")
def provisional(actor: Actor, subject: str, flag: tuple[str, ...], reason: str, explanation: str) -> int:
    rid = node().app.set_provisional(unlocked(actor), subject, list(flag), reason=reason, explanation=explanation)
    out({"request_id": str(rid), "status": "provisional"})
    return 0


@command(year, "co-approve", help="co-approve an emergency flag (another person, within a business day)")
@as_actor()
@argument("request_id", type=UUID_ID)
@option("--note", default="")
def co_approve(actor: Actor, request_id: UUID, note: str) -> int:
    node().app.co_approve_provisional(unlocked(actor), request_id, note)
    out({"request_id": str(request_id), "status": "co_approved"})
    return 0
