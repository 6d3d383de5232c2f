"""The consultation joined to an agency node in hub mode (issue 19/20, docs/linkage.md): the provider's four-eyes
decision on a query the hub marked ``staff`` leaves as a ``staff_answer`` signed by the two people who made it,
and a holder's staff give their advice on a consultation.

* **As provider**: the hub's ``advice_relay`` (the holders' advice combined, unnamed) and ``escalation`` (no
  advice by the deadline, an answer refused) are kept per routed request (``linkage_case_notes``). The reviewer's
  proposal and the approver's approval (:func:`propose`, :func:`approve`: the command line's ``provision
  propose`` / ``approve`` in hub mode) each sign the consultation's decision statement — the provider, the hub's
  request id, the status the proposal gives, the advice and its basis — with the person's own staff key
  (``FlagLedger.sign_act``: unlocked and certified, never the node's key), kept in ``linkage_decisions``. Before
  the advice came or the deadline passed there is nothing to sign (``staff_decision_required``), so nothing is
  proposed; an approval on another basis than the proposal's is refused (propose again). Before the approval
  is recorded the node runs the hub's own check (``check_decision``, with the roles of
  ``ledger.log.staff_roles.decision_role_problem``): a reviewer's proposal and an approver's approval, as this
  agency's shared roster certifies them, neither an administrator — otherwise ``staff_role``, nothing approved,
  nothing sent; the push checks again against the roster as it stands then. The bridge's push
  sends the answer once the batch releases it, as :func:`staff_answer` makes it.
* **Decide again** (:func:`reopen`): the hub refuses a decision taken on the deadline's escalation when the
  holders' advice reached it after the escalation (the late advice may say ``do_not_disclose``), and tells this
  node once (``escalation`` ``decide_again``, after relaying the advice). The node reopens the request
  (``ProvisionRequest.Reopened``: held again, no proposal), forgets the refused decision's signatures and marks
  it unanswered, so it is back in the staff's queue with the advice now relayed and the reviewer and approver
  decide again — that answer the hub relays. Only the hub's message reopens: a peer's is parked before it is
  opened (``open_from_hub``), and no staff act records ``Reopened``. Once: a replayed message is dropped by its
  event id, and a decided request is reopened only once (``ProvisionRequest.reopen``).
* **As holder**: :func:`advise` keeps one advice per consultation (``linkage_advice``), sent at the next push.

A shell user holding the node's keys holds no staff key, so signs no decision; an administrator with one
person's key signs one half (the hub checks both against the roster the node sends it).
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, delete, insert, select, update

from consumers.linkage_receipt import HUB_STAFF
from ledger.app import Actor, FlagLedger
from ledger.domain.types import Action
from ledger.errors import Code, NotFoundError, StateConflict
from ledger.linkage.consultation import (
    ADVISED,
    DECIDE_AGAIN,
    ESCALATED,
    NO_ADVICE_BY_DEADLINE,
    AdviceMessage,
    AdviceRelay,
    Escalation,
    StaffAnswer,
    check_decision,
    decision_statement,
)
from ledger.log.staff_roster import RosterState
from ledger.runtime.tables import (
    linkage_advice,
    linkage_case_notes,
    linkage_consultations,
    linkage_decisions,
    linkage_routed,
)

__all__ = ["STATUS", "advise", "approve", "basis", "cases", "note", "propose", "reopen", "staff_answer"]

STATUS = {"provide": "answered", "refuse": "not_provided"}  # what the querier hears (QuerierAnswer.of)
PROPOSED, APPROVED = "proposed", "approved"


def note(conn: Connection, message: AdviceRelay | Escalation, at: str) -> None:
    """Keep what the hub said about one of this agency's held routed requests (in the applying transaction)."""
    known = conn.execute(
        select(linkage_routed.c.hub_request_id).where(linkage_routed.c.hub_request_id == message.request_id)
    ).first()
    if known is None:
        raise NotFoundError(f"a {message.kind} about no query routed here")
    reason = message.reason if isinstance(message, Escalation) else ""
    conn.execute(
        insert(linkage_case_notes).values(
            hub_request_id=message.request_id, kind=message.kind, advice=message.advice, reason=reason, at=at
        )
    )


def reopen(app: FlagLedger, conn: Connection, agency: str, message: Escalation) -> bool:
    """On the hub's ``decide_again`` (in the applying transaction, before anything is written in it): reopen the
    request it names, decided here and refused at the hub, for a new decision; whether it was reopened now.

    The event is saved first, on its own: if the applying transaction then fails, the message comes again,
    finds the request reopened (nothing recorded twice) and clears what the refused decision left."""
    if message.reason != DECIDE_AGAIN:
        return False
    r = linkage_routed.c
    row = conn.execute(select(r.local_request_id, r.answered).where(r.hub_request_id == message.request_id)).first()
    if row is None:
        raise NotFoundError(f"a {message.kind} about no query routed here")
    if not row.local_request_id:  # not received here yet: nothing decided the hub could have refused
        return False
    # whatever the push's mark says (a crash may have lost it after the send): the hub refused a decision it got
    request = app.provision_request(UUID(row.local_request_id))
    now = request.reopen()
    if now:
        app.save_as(agency, request)
    if request.reopened and not request.decided:  # held again: the refused decision's signatures are void
        conn.execute(delete(linkage_decisions).where(linkage_decisions.c.local_request_id == row.local_request_id))
        conn.execute(
            update(linkage_routed).where(r.hub_request_id == message.request_id).values(answered="in_progress")
        )
    return now


def basis(conn: Connection, hub_request_id: str) -> tuple[str, str] | None:
    """(advice, basis) the staff may decide on now — as ``ledger.linkage.consultation.Case.basis``; None while
    the holders are still being asked."""
    rows = conn.execute(
        select(linkage_case_notes)
        .where(linkage_case_notes.c.hub_request_id == hub_request_id)
        .order_by(linkage_case_notes.c.id)
    ).all()
    relayed = [r for r in rows if r.kind == AdviceRelay.kind]
    if relayed:
        return relayed[-1].advice, ADVISED
    late = [r for r in rows if r.kind == Escalation.kind and r.reason == NO_ADVICE_BY_DEADLINE]
    return (late[-1].advice, ESCALATED) if late else None


def _routed(engine: Engine, request_id: UUID) -> Any:
    """The routed query behind a local request, if the hub marked it ``staff`` (it needs a signed answer)."""
    with engine.connect() as conn:
        return conn.execute(
            select(linkage_routed).where(
                linkage_routed.c.local_request_id == str(request_id), linkage_routed.c.staff_answer == HUB_STAFF
            )
        ).first()


def _statement(engine: Engine, agency: str, hub_request_id: str, decision: str) -> tuple[bytes, tuple[str, str]]:
    with engine.connect() as conn:
        found = basis(conn, hub_request_id)
    if found is None:
        raise StateConflict(
            "the holders have not advised and the deadline has not passed: nothing to decide on yet",
            code=Code.STAFF_DECISION_REQUIRED,
        )
    return decision_statement(agency, hub_request_id, STATUS[decision], "", *found), found


def _keep(
    app: FlagLedger, engine: Engine, request_id: UUID, act: str, actor: Actor, signed: dict[str, str], statement: bytes
) -> None:
    t = linkage_decisions
    with engine.begin() as conn:
        conn.execute(delete(t).where(t.c.local_request_id == str(request_id), t.c.act == act))
        if act == PROPOSED:  # a new proposal: an approval of the old one vouches for nothing
            conn.execute(delete(t).where(t.c.local_request_id == str(request_id)))
        conn.execute(
            insert(t).values(
                local_request_id=str(request_id),
                act=act,
                staff=actor.staff,
                key_id=signed["key_id"],
                signature=signed["signature"],
                statement=hashlib.sha256(statement).hexdigest(),
                at=app.clock().isoformat(),
            )
        )


def propose(
    app: FlagLedger, engine: Engine, actor: Actor, request_id: UUID, decision: str, applicant_check: str, note: str = ""
) -> None:
    """The reviewer's proposal, signed with their staff key when the hub awaits a staff answer."""
    row = _routed(engine, request_id)
    if row is None:
        app.propose_decision(actor, request_id, decision, applicant_check, note)
        return
    app.authorise(actor, Action.REVIEW_HELD)
    if decision not in STATUS:
        raise StateConflict("decision must be 'provide' or 'refuse'")
    statement, _ = _statement(engine, actor.agency, row.hub_request_id, decision)
    signed = app.sign_act(actor, statement)  # before the act: no unsigned proposal is left behind
    app.propose_decision(actor, request_id, decision, applicant_check, note)
    _keep(app, engine, request_id, PROPOSED, actor, signed, statement)


def approve(app: FlagLedger, engine: Engine, actor: Actor, request_id: UUID, proposal_version: int) -> str:
    """The approver's approval, signed with their staff key over the statement the reviewer signed."""
    row = _routed(engine, request_id)
    if row is None:
        return app.approve_decision(actor, request_id, proposal_version)
    app.authorise(actor, Action.APPROVE_HELD)
    proposal = app.provision_request(request_id).proposal
    if proposal is None:
        raise StateConflict("no decision has been proposed for this held request")
    statement, found = _statement(engine, actor.agency, row.hub_request_id, proposal["decision"])
    with engine.connect() as conn:
        first = conn.execute(
            select(linkage_decisions).where(
                linkage_decisions.c.local_request_id == str(request_id), linkage_decisions.c.act == PROPOSED
            )
        ).first()
    if first is None or first.statement != hashlib.sha256(statement).hexdigest():
        raise StateConflict(
            "the proposal was not signed on the advice that stands now (the hub relayed more since): propose again",
            code=Code.STALE_PROPOSAL,
        )
    signed = app.sign_act(actor, statement)
    # the hub's own check, run here first (the same function): both keys, and the roles — a reviewer's proposal,
    # an approver's approval, neither an administrator — in this agency's roster as it stands now
    answer = StaffAnswer(
        row.hub_request_id, STATUS[proposal["decision"]], "", *found, first.key_id, first.signature,
        str(signed["key_id"]), str(signed["signature"]),
    )  # fmt: skip
    check_decision(app.roster(actor.agency), actor.agency, answer)
    status = app.approve_decision(actor, request_id, proposal_version)
    _keep(app, engine, request_id, APPROVED, actor, signed, statement)
    return status


def staff_answer(
    engine: Engine,
    agency: str,
    hub_request_id: str,
    local_request_id: str,
    status: str,
    roster: RosterState | None = None,
) -> StaffAnswer:
    """The signed answer to send for a decided request; ``staff_signature_required`` if the two signatures of
    this status on the standing advice are not both kept (decided outside :func:`propose` / :func:`approve`).
    With ``roster`` (the agency's own, as it stands when the push sends), checked as the hub will check it
    (``check_decision``): a role withdrawn since the approval refuses it here (``staff_role``), not at the hub."""
    with engine.connect() as conn:
        found = basis(conn, hub_request_id)
        rows = {
            r.act: r
            for r in conn.execute(
                select(linkage_decisions).where(linkage_decisions.c.local_request_id == local_request_id)
            )
        }
    first, second = rows.get(PROPOSED), rows.get(APPROVED)
    if found is None or first is None or second is None:
        raise StateConflict("the decision carries no two staff signatures", code=Code.STAFF_SIGNATURE_REQUIRED)
    digest = hashlib.sha256(decision_statement(agency, hub_request_id, status, "", *found)).hexdigest()
    if first.statement != digest or second.statement != digest:
        raise StateConflict("the staff signed another decision than the one made", code=Code.STAFF_SIGNATURE_REQUIRED)
    answer = StaffAnswer(
        hub_request_id, status, "", *found, first.key_id, first.signature, second.key_id, second.signature
    )
    answer.check()
    if roster is not None:
        check_decision(roster, agency, answer)
    return answer


def cases(engine: Engine) -> list[dict[str, Any]]:
    """This agency's held routed requests the hub marked ``staff``, with what the hub said of each (the advice
    relayed, escalations) and the basis the staff may decide on (None: still waiting for the holders)."""
    with engine.connect() as conn:
        routed = conn.execute(
            select(linkage_routed)
            .where(linkage_routed.c.staff_answer == HUB_STAFF)
            .order_by(linkage_routed.c.hub_request_id)
        ).all()
        out = []
        for r in routed:
            notes = conn.execute(
                select(linkage_case_notes)
                .where(linkage_case_notes.c.hub_request_id == r.hub_request_id)
                .order_by(linkage_case_notes.c.id)
            ).all()
            found = basis(conn, r.hub_request_id)
            out.append(
                {
                    "request_id": r.local_request_id,
                    "querier": r.querier,
                    "advice": found[0] if found else None,
                    "basis": found[1] if found else None,
                    "escalations": [n.reason for n in notes if n.kind == Escalation.kind],
                    "reopened": any(n.reason == DECIDE_AGAIN for n in notes if n.kind == Escalation.kind),
                    "answered": r.answered,
                }
            )
    return out


def advise(app: FlagLedger, engine: Engine, actor: Actor, request_id: str, advice: str) -> dict[str, Any]:
    """As holder: ``actor``'s agency's advice on the consultation ``request_id`` (once; the same advice again
    is a no-op), sent to the hub at the bridge's next push."""
    app.authorise(actor, Action.REVIEW_HELD)  # those who see consultations, as probe notices
    AdviceMessage(request_id, advice).check()
    with engine.begin() as conn:
        consulted = conn.execute(
            select(linkage_consultations.c.request_id).where(
                linkage_consultations.c.request_id == request_id, linkage_consultations.c.holder == actor.agency
            )
        ).first()
        if consulted is None:
            raise NotFoundError("no consultation of this agency with that id")
        given = conn.execute(select(linkage_advice).where(linkage_advice.c.request_id == request_id)).first()
        if given is not None:
            if given.advice != advice:
                raise StateConflict(f"{given.staff} advised {given.advice} on this consultation already")
        else:
            conn.execute(
                insert(linkage_advice).values(
                    request_id=request_id,
                    holder=actor.agency,
                    advice=advice,
                    staff=actor.staff,
                    advised_at=app.clock().isoformat(),
                    sent=0,
                )
            )
    return {"request_id": request_id, "advice": advice, "sent": bool(given is not None and given.sent)}
