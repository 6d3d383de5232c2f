"""A person's provision records outside the portal over HTTP (docs/channels.md): the answer to a disclosure
request (開示請求) and the counter printout, through the portal's one filter, each hand-out recorded before it is
returned. The subject is in the body (POST), never in a URL."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import AfterValidator, Field, StringConstraints

from ledger.api.deps import Caller, CurrentNode
from ledger.api.schemas import ERROR_RESPONSES, Body, Subject
from ledger.domain import bounds
from ledger.domain.disclosures import REFERENCE
from ledger.domain.types import Action
from projections.views_disclosure import DisclosureDocument, counter_printout, disclosure_document, render

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["disclosure"], responses=ERROR_RESPONSES)


def _clean(value: str) -> str:
    why = bounds.bad_text(value)
    if why is not None:
        raise ValueError(f"the text {why}")
    return value


class HandOutIn(Body):
    subject: Subject
    asked_by: Subject | None = Field(None, description="who asks, if not the person: their registered proxy")
    reference: Annotated[str, StringConstraints(max_length=REFERENCE.max), AfterValidator(_clean)] = Field(
        "", description="the agency's own number for the request (受付番号)"
    )
    format: Literal["json", "csv", "text"] = Field("json", description="csv and text come as text, not JSON")


_DOCUMENT = {
    200: {
        "description": "the document (JSON), or as CSV or text for printing",
        "content": {"text/csv": {}, "text/plain": {}},
    }
}
_MEDIA = {"csv": "text/csv; charset=utf-8", "text": "text/plain; charset=utf-8"}


def _answer(doc: DisclosureDocument, fmt: str) -> DisclosureDocument | Response:
    if fmt == "json":
        return doc
    return Response(render(doc, fmt), media_type=_MEDIA[fmt])


@router.post(
    "/disclosures",
    response_model=DisclosureDocument,
    responses=_DOCUMENT,  # type: ignore[arg-type]
    summary="answer a disclosure request (開示請求): your agency's records on the person, non-disclosure applied",
)
def disclosure(body: HandOutIn, node: CurrentNode, who: Caller) -> DisclosureDocument | Response:
    who.require(node, Action.COUNTER_LOOKUP)
    return _answer(disclosure_document(node, who.actor, body.subject, body.asked_by, body.reference), body.format)


@router.post(
    "/printouts",
    response_model=DisclosureDocument,
    responses=_DOCUMENT,  # type: ignore[arg-type]
    summary="print the person's provision records at the counter, as the portal shows them (recorded)",
)
def printout(body: HandOutIn, node: CurrentNode, who: Caller) -> DisclosureDocument | Response:
    who.require(node, Action.COUNTER_LOOKUP)
    return _answer(counter_printout(node, who.actor, body.subject, body.asked_by, body.reference), body.format)
