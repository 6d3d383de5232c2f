"""The console's intake pages (issue #21, docs/year.md §5): a requester opens a case (受付) for the victim, with the
perpetrator named, asks for the victim's flags on it and proposes a companion (同伴者: a child who fled with
her) with a flag request of the companion's own; the year queue's companion and perpetrator prompts are acted on
from its page too (ledger/api/console_prompts.py). Every flag request goes through the app's chain
(ledger/app/companions.py): approved by another person and executed by an operator under 承認待ち, each act
signed — by the person's security key (the form's assertion, options from ``…/options``) or, with no certified
key, by the staff key their sign-in unlocked.

Persons are shown by the agency's 宛名番号 only (ledger/api/console_names.py): numbers typed here are turned into
pseudonyms at once, and no page carries a pseudonym, not even in a hidden field — forms name a case by its id.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from ledger.api.auth import Principal
from ledger.api.console import ASSERTION_MAX, Session, _page, _refused, _session, console_act
from ledger.api.console_acts import signed_options
from ledger.api.console_references import record_reference
from ledger.api.console_requests import REASON_LABELS
from ledger.api.deps import LockedNode
from ledger.api.webauthn_keys import act_proof_for, signs_with_key
from ledger.domain import bounds
from ledger.domain.types import Action, Flag, Reason
from ledger.errors import FlagLedgerError, NotFoundError
from ledger.runtime.bootstrap import Node
from ledger.runtime.reference_numbers import clean_reference

__all__ = ["RELATION_LABELS", "router"]

router = APIRouter(prefix="/console", include_in_schema=False)

RELATION_LABELS = {"child": "子", "other": "その他の同伴者"}
Number = Annotated[str, Form(max_length=bounds.SUBJECT.max)]
Csrf = Annotated[str, Form(max_length=128)]
Note = Annotated[str, Form(max_length=bounds.NOTE.max)]
Reference = Annotated[str, Form(max_length=60)]
Flags = Annotated[list[str], Form(max_length=4)]
Assertion = Annotated[str, Form(max_length=ASSERTION_MAX)]


def _reference(node: Node, who: Principal, subject: str, reference: str) -> None:
    if reference.strip():
        record_reference(node, who.actor, subject, reference)


def _case(node: Node, who: Principal, case_id: UUID) -> dict[str, Any]:
    for case in node.app.open_cases(who.actor):
        if case["case_id"] == str(case_id):
            return case
    raise NotFoundError("no open case of your agency has that id")


@router.get("/cases", response_class=HTMLResponse)
def cases(request: Request, node: LockedNode, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        who.require(node, Action.OPEN_CASE)
        open_cases = node.app.open_cases(who.actor)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    reasons = [(r.value, REASON_LABELS.get(r.value, r.value)) for r in Reason]
    return _page(request, node, who, "cases.html", cases=open_cases, reasons=reasons)


@router.post("/cases")
def open_case(
    request: Request,
    node: LockedNode,
    victim: Number,
    csrf: Csrf,
    victim_reference: Reference = "",
    perpetrator: Annotated[str, Form(max_length=bounds.SUBJECT.max)] = "",
    perpetrator_reference: Reference = "",
    reason: Annotated[str, Form(max_length=32)] = Reason.DV.value,
    session: Session = None,
) -> Response:
    """受付: the case is opened (no flag yet); its page asks for the victim's flags and the companion's."""
    opened: list[UUID] = []

    def open_it(who: Principal) -> str:
        for ref in (victim_reference, perpetrator_reference):
            if ref.strip():
                clean_reference(ref)  # a mistyped number refuses the form before anything is recorded
        perps = [perpetrator] if perpetrator.strip() else []
        opened.append(node.app.open_case(who.actor, victim, perpetrators=perps, reason=reason))
        _reference(node, who, victim, victim_reference)
        if perps:
            _reference(node, who, perpetrator, perpetrator_reference)
        return "case_opened"

    response = console_act(request, node, session, csrf, Action.OPEN_CASE, open_it, "/console/cases")
    if opened:  # to the new case's own page
        response.headers["location"] = f"/console/cases/{opened[0]}?done=case_opened"
    return response


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, node: LockedNode, case_id: UUID, session: Session = None) -> Response:
    who = None
    try:
        who = _session(node, session)
        who.require(node, Action.OPEN_CASE)
        case = _case(node, who, case_id)
        queue = node.app.year_queue(who.actor)
    except FlagLedgerError as exc:
        return _refused(request, node, who, exc)
    prompts = {k: [p for p in queue.get(k, []) if p["case_id"] == str(case_id)] for k in ("companions", "perpetrators")}
    return _page(
        request,
        node,
        who,
        "case.html",
        case=case,
        prompts=prompts,
        flags=[f.value for f in Flag],
        relation_labels=RELATION_LABELS,
        reason_labels=REASON_LABELS,
        sign_with_key=signs_with_key(node, who.actor),
    )


# -- the victim's flags on the case (one signed request) ------------------------------------------------------
@router.post("/cases/{case_id}/flags/options")
def victim_flags_options(
    request: Request,
    node: LockedNode,
    case_id: UUID,
    flags: Flags,
    csrf: Csrf,
    explanation: Note = "",
    session: Session = None,
) -> Response:
    rid = uuid4()

    def statement(who: Principal) -> bytes:
        case = _case(node, who, case_id)
        return node.app.request_statement(
            who.actor, rid, case["victim"], flags, reason=case["reason"], case_id=case_id, explanation=explanation
        )

    return signed_options(request, node, session, csrf, Action.REQUEST_FLAG, statement, {"request_id": str(rid)})


@router.post("/cases/{case_id}/flags")
def victim_flags(
    request: Request,
    node: LockedNode,
    case_id: UUID,
    flags: Flags,
    csrf: Csrf,
    explanation: Note = "",
    request_id: Annotated[UUID | None, Form()] = None,
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    """The victim's flags, requested on the case (so a later set also covers its attached companions)."""

    def ask(who: Principal) -> str:
        case = _case(node, who, case_id)
        proof = act_proof_for(node, request, who.actor, assertion, request_id, "request", "request_id")
        node.app.request_flags(
            who.actor,
            case["victim"],
            flags,
            reason=case["reason"],
            case_id=case_id,
            explanation=explanation,
            proof=proof,
            request_id=request_id if proof is not None else None,
        )
        return "requested"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, ask, f"/console/cases/{case_id}")


# -- a companion (同伴者): listed with a flag request of their own -------------------------------------------------
@router.post("/cases/{case_id}/companions/options")
def companion_options(
    request: Request,
    node: LockedNode,
    case_id: UUID,
    companion: Number,
    csrf: Csrf,
    relation: Annotated[str, Form(max_length=16)] = "child",
    flags: Annotated[list[str], Form(max_length=4)] = [],  # noqa: B006 (FastAPI copies a form default)
    explanation: Note = "",
    session: Session = None,
) -> Response:
    rid = uuid4()

    def statement(who: Principal) -> bytes:
        return node.app.companion_statement(
            who.actor, rid, case_id, companion, relation=relation, flags=flags, explanation=explanation
        )

    return signed_options(request, node, session, csrf, Action.OPEN_CASE, statement, {"request_id": str(rid)})


@router.post("/cases/{case_id}/companions")
def propose_companion(
    request: Request,
    node: LockedNode,
    case_id: UUID,
    companion: Number,
    csrf: Csrf,
    companion_reference: Reference = "",
    relation: Annotated[str, Form(max_length=16)] = "child",
    flags: Annotated[list[str], Form(max_length=4)] = [],  # noqa: B006 (FastAPI copies a form default)
    explanation: Note = "",
    request_id: Annotated[UUID | None, Form()] = None,
    assertion: Assertion = "",
    session: Session = None,
) -> Response:
    def propose(who: Principal) -> str:
        if companion_reference.strip():
            clean_reference(companion_reference)
        proof = act_proof_for(node, request, who.actor, assertion, request_id, "request", "request_id")
        node.app.propose_companion(
            who.actor,
            case_id,
            companion,
            relation=relation,
            flags=flags,
            explanation=explanation,
            proof=proof,
            request_id=request_id,
        )
        _reference(node, who, companion, companion_reference)
        return "companion_proposed"

    return console_act(request, node, session, csrf, Action.OPEN_CASE, propose, f"/console/cases/{case_id}")
