"""The year queue's prompts on a case page (issue #21, docs/year.md): NON_DISCLOSURE on each perpetrator, and
what each attached companion lacks of the victim's flags. One button may open several flag requests, and each
is its own signed act, checked by the app, a peer's ingest and ``audit verify`` exactly as a request made alone:

* a person with no certified security key: the staff key their password sign-in unlocked signs each request;
* a person with one: ``…/options`` answers one WebAuthn challenge per request (the SHA-256 of that request's
  own statement, its request id chosen here), ``static/webauthn.js`` asks the key once for each — the page says
  which person each touch is for, by the agency's 宛名番号 — and the post carries one assertion per request.
  Each assertion is matched to the prompted request whose statement it signed and verified against the roster
  before any request is saved, so a post short of one, or with one made for something else, records nothing.

No batch signature: a peer checks each flag change against that request's own statement, so one assertion over
a list would need every peer and the audit to learn the list. Persons are named by the page only by 宛名番号;
the options name none (ids, challenges and the 宛名番号 the page already shows).
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from ledger.api.auth import Principal
from ledger.api.console import ASSERTION_MAX, Session, _check_csrf, _session, console_act
from ledger.api.console_acts import _refusal
from ledger.api.console_names import namers
from ledger.api.deps import LockedNode
from ledger.api.webauthn_keys import act_proof, begin_act, signs_with_key
from ledger.app.credentials import WebAuthnProof
from ledger.domain.types import Action
from ledger.errors import Code, FlagLedgerError, InputError, PermissionDenied, StateConflict
from ledger.log.webauthn_proof import b64url, challenge_for, unb64url
from ledger.runtime.bootstrap import Node

__all__ = ["MAX_PROMPTED", "router"]

router = APIRouter(prefix="/console", include_in_schema=False)

MAX_PROMPTED = 16  # requests one prompt button opens (a case's perpetrators or companions): each one touch
Csrf = Annotated[str, Form(max_length=128)]
Assertions = Annotated[str, Form(max_length=MAX_PROMPTED * (ASSERTION_MAX + 64))]


def _statement(node: Node, who: Principal, case_id: UUID, item: dict[str, Any], rid: UUID) -> bytes:
    return node.app.request_statement(
        who.actor,
        rid,
        item["subject"],
        item["flags"],
        reason=item["reason"],
        case_id=case_id,
        explanation=item["explanation"],
    )


def _prompts(node: Node, who: Principal, case_id: UUID, which: str) -> list[dict[str, Any]]:
    items = node.app.case_prompts(who.actor, case_id, which)
    if not items:  # asked meanwhile (another tab, a colleague): say so rather than "requested"
        raise StateConflict("nothing is prompted on this case any more: reload the page")
    if len(items) > MAX_PROMPTED:
        raise InputError(f"more than {MAX_PROMPTED} requests at once: request some on the flag request page")
    return items


@router.post("/cases/{case_id}/prompted/{which}/options")
def prompted_options(
    request: Request, node: LockedNode, case_id: UUID, which: str, csrf: Csrf, session: Session = None
) -> Response:
    """One WebAuthn challenge per prompted request (``acts``): the browser asks the key for each in turn."""
    try:
        who = _session(node, session)
        _check_csrf(node, who, csrf)
        who.require(node, Action.REQUEST_FLAG)
        person = namers(node, who.actor.agency)["person"]
        acts = []
        for item in _prompts(node, who, case_id, which):
            rid = uuid4()
            options = begin_act(node, request, who.actor, _statement(node, who, case_id, item, rid))
            acts.append({"request_id": str(rid), "person": person(item["subject"]), "publicKey": options})
    except FlagLedgerError as exc:
        return _refusal(exc)
    return JSONResponse({"acts": acts})


def _signed(
    node: Node, request: Request, who: Principal, case_id: UUID, items: list[dict[str, Any]], sent: str
) -> list[tuple[UUID, WebAuthnProof]]:
    """Each prompted request paired with the request id and assertion that signed its statement, each verified
    against the roster here (nothing saved yet). Refused: an entry that signs none of them, or one left unsigned."""
    try:
        entries = json.loads(sent)
        given = [(UUID(str(e["request_id"])), str(e["assertion"])) for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError("the security keys' answers are malformed", field="assertions") from exc
    if not given or len(given) > MAX_PROMPTED:
        raise InputError("sign each prompted request with your security key", field="assertions")
    proofs = []
    for rid, assertion in given:
        proof = act_proof(node, request, who.actor, assertion)
        if proof is None:  # an empty answer, from a person with no certified key
            raise InputError("sign each prompted request with your security key", field="assertions")
        try:
            challenge = json.loads(unb64url(proof.client_data)).get("challenge")
        except (ValueError, AttributeError) as exc:
            raise InputError("the security key's answer is malformed", field="assertions") from exc
        proofs.append((rid, proof, challenge))
    out: list[tuple[UUID, WebAuthnProof]] = []
    for item in items:
        match = None
        for rid, proof, challenge in proofs:
            statement = _statement(node, who, case_id, item, rid)
            if challenge == b64url(challenge_for(statement)):
                node.app.sign_act(who.actor, statement, proof)  # the roster's check, before anything is saved
                match = (rid, proof)
                break
        if match is None or match[0] in {rid for rid, _ in out}:
            raise StateConflict("the prompts on this case changed since you signed: reload the page and sign again")
        out.append(match)
    if len(out) != len(proofs):
        raise PermissionDenied("an answer signs no request prompted on this case", code=Code.STAFF_SIGNATURE)
    return out


@router.post("/cases/{case_id}/prompted/{which}")
def prompted_requests(
    request: Request,
    node: LockedNode,
    case_id: UUID,
    which: str,
    csrf: Csrf,
    assertions: Assertions = "",
    session: Session = None,
) -> Response:
    """Open the requests the year queue prompts for on this case (``perpetrators`` or ``companions``), each its
    own signed act: by the person's security key (one assertion per request, ``assertions``) or, with no
    certified key, by the staff key their sign-in unlocked."""

    def ask(who: Principal) -> str:
        items = _prompts(node, who, case_id, which)
        if not assertions and signs_with_key(node, who.actor):
            act_proof(node, request, who.actor, "")  # refused: the console never signs for them with a server key
        signed = _signed(node, request, who, case_id, items, assertions) if assertions else None
        for n, item in enumerate(items):
            rid, proof = signed[n] if signed is not None else (None, None)
            node.app.request_flags(
                who.actor,
                item["subject"],
                item["flags"],
                reason=item["reason"],
                case_id=case_id,
                explanation=item["explanation"],
                proof=proof,
                request_id=rid,
            )
        return "requested"

    return console_act(request, node, session, csrf, Action.REQUEST_FLAG, ask, f"/console/cases/{case_id}")
