"""``flagledger provision …``: information provision requests, held ones decided by two people."""

from __future__ import annotations

from uuid import UUID

from consumers.linkage_staff import ask, consultations, query
from ledger import clock
from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import PROPOSAL_VERSION, UUID_ID, WHOLE, OneOf, argument, choices, option
from ledger.domain.answers import CopyState
from ledger.domain.types import Action, Applicant
from ledger.runtime.linkage import hub_mode

provision = group("provision", "information provision requests")


@command(provision, "request", help="query a providing agency about a subject")
@as_actor()
@option("--provider", required=True)
@option("--subject", required=True)
@option("--item", type=WHOLE, required=True, help="table 2 item number")
@option("--procedure", required=True)
@option("--info-kind", required=True)
@option("--applicant", default="unknown", type=choices(Applicant))
def request(
    actor: Actor, provider: str, subject: str, item: int, procedure: str, info_kind: str, applicant: str
) -> int:
    n = node()
    if hub_mode(n.config) and provider not in n.app.hosted:  # issue 19: another agency, through the hub
        rid = ask(n.app, n.engine, actor, provider, subject, legal_item=item, procedure=procedure, info_kind=info_kind)
        out({"request_id": rid, "through": "hub", **query(n.engine, actor.agency, rid)})
        return 0
    ans = n.app.request_provision(
        actor, provider, subject, legal_item=item, procedure=procedure, info_kind=info_kind, applicant=applicant
    )
    out({"request_id": ans.request_id, "status": ans.status, "message": ans.message})
    return 0


@command(provision, "asked", help="a query asked through the hub (hub mode): queued, sent, or its answer")
@as_actor()
@argument("hub_request")
def asked(actor: Actor, hub_request: str) -> int:
    n = node()
    n.app.authorise_any(actor, Action.REQUEST_PROVISION)
    out(query(n.engine, actor.agency, hub_request))
    return 0


@command(provision, "consultations", help="the hub's consultations to this agency as a holder (hub mode)")
@as_actor()
def consultations_(actor: Actor) -> int:
    n = node()
    n.app.authorise(actor, Action.REVIEW_HELD)  # as probe notices: staff who decide held requests
    out({"consultations": consultations(n.engine, actor.agency)})
    return 0


@command(provision, "propose", help="propose to provide or refuse a held request")
@as_actor()
@argument("request_id", type=UUID_ID)
@option("--decision", required=True, type=OneOf(["provide", "refuse"]))
@option("--applicant-check", required=True, type=choices(Applicant))
@option("--note", default="")
def propose(actor: Actor, request_id: UUID, decision: str, applicant_check: str, note: str) -> int:
    node().app.propose_decision(actor, request_id, decision, applicant_check, note)
    out(
        {
            "request_id": str(request_id),
            "proposed": decision,
            "next": "a second person approves it: `view queue` shows its proposal_version, then "
            "`provision approve REQUEST_ID --proposal VERSION`",
        }
    )
    return 0


@command(provision, "approve", help="approve the proposed decision on a held request")
@as_actor()
@argument("request_id", type=UUID_ID)
@option(
    "--proposal",
    type=PROPOSAL_VERSION,
    required=True,
    metavar="VERSION",
    help="the proposal you approve: its proposal_version in `view queue`; one proposed again since is refused",
)
def approve(actor: Actor, request_id: UUID, proposal: int) -> int:
    status = node().app.approve_decision(actor, request_id, proposal)
    out({"request_id": str(request_id), "status": status})
    return 0


@command(provision, "status", help="what the querying agency sees (the querying or the providing agency only)")
@as_actor()
@argument("request_id", type=UUID_ID)
def status(actor: Actor, request_id: UUID) -> int:
    ans = node().app.provision_answer(actor, request_id)
    out({"request_id": ans.request_id, "status": ans.status, "message": ans.message})
    return 0


@command(provision, "copy", help="note the provider's copy of an information kind about a person (該当なし, check)")
@as_actor()
@option("--subject", required=True)
@option("--info-kind", required=True)
@option(
    "--state",
    required=True,
    type=choices(CopyState),
    help="no_data (該当なし) or check: requests go to staff; registered: answered automatically again",
)
def copy(actor: Actor, subject: str, info_kind: str, state: str) -> int:
    node().app.note_copy(actor, subject, info_kind, state)
    out({"agency": actor.agency, "info_kind": info_kind, "state": state})
    return 0


@command(provision, "release", help="the batch step: release decided answers due by the last batch time")
@as_actor()
def release(actor: Actor) -> int:
    out(node().app.release_answers(actor, clock.now()))
    return 0


@command(provision, "overdue", help="held requests past their due date, and whom they were escalated to")
@as_actor()
def overdue(actor: Actor) -> int:
    out({"agency": actor.agency, "overdue": node().app.overdue(actor, clock.now())})
    return 0
