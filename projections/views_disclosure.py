"""A person's provision records outside the portal: the disclosure request's document (個人情報の開示請求) and the
counter printout (issue 21, "Other channels"; docs/channels.md).

Both are the portal's display by another road, so both take the portal's roads: who may ask is the portal's
access rule (:meth:`projections.verified.VerifiedState.portal_access`: the person, or their active proxy), what is
shown is the portal's one filter (:func:`projections.record_filter.filtered`), each record's fields come from its
signed event, and the outcome is worded as on the portal. The perpetrator Q asking A for his own records while
flagged ``NON_DISCLOSURE`` gets no record naming C, the municipality that queried A about him (the seed's case 1).

* **Disclosure** (``disclosure_document``): the records the handling agency holds, i.e. those it took part in as
  querier or provider.
* **Printout** (``counter_printout``): the portal's display of the person, printed at a counter.

Each hand-out is recorded (``DisclosureRecord``: who handled it, for whom, who asked, how many shown and
withheld) before the document is returned. The document says nothing about what was left out: every document
carries the same fixed notice, protected or not, so its wording tells nothing either.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass

from ledger.app import Actor
from ledger.app.disclosures import record_disclosure
from ledger.domain.disclosures import Channel
from ledger.domain.types import Action
from ledger.errors import Code, PermissionDenied
from projections.node import NodeParts
from projections.record_check import RecordFacts
from projections.record_filter import Scope, filtered
from projections.view_reads import portal_reader
from projections.views_portal import _outcome as portal_outcome

__all__ = ["NOTICE", "DisclosedRecord", "DisclosureDocument", "counter_printout", "disclosure_document", "render"]

# on every document, whatever was or was not withheld: a notice only on some would say who is protected
NOTICE = "法令の定めにより開示しない記録は、この文書に記載していません。"
FORMATS = ("json", "csv", "text")


@dataclass(frozen=True)
class DisclosedRecord:
    request_id: str
    made_at: str
    querier: str
    provider: str
    procedure: str
    legal_item: int
    info_kind: str
    outcome: str  # the portal's words: "provided" | "in_progress" | "not_provided"


@dataclass(frozen=True)
class DisclosureDocument:
    channel: str  # "disclosure" | "printout"
    agency: str  # the agency handing it out
    subject: str  # the person's pseudonym
    access: str  # "self" | "proxy": who asked, as the portal decides it
    reference: str  # the agency's own number for the request (受付番号), may be empty
    record_id: str  # the DisclosureRecord of this hand-out
    records: tuple[DisclosedRecord, ...]
    notice: str = NOTICE


def disclosure_document(
    node: NodeParts, actor: Actor, subject: str, asked_by: str | None = None, reference: str = ""
) -> DisclosureDocument:
    """The answer to ``asked_by``'s disclosure request (default: the person themself) at ``actor``'s agency:
    the person's records that agency took part in, through the portal's filter; recorded first."""

    def own(facts: RecordFacts) -> bool:
        return actor.agency in (facts.querier, facts.provider)

    return _hand_out(node, actor, Channel.DISCLOSURE, subject, asked_by, reference, own)


def counter_printout(
    node: NodeParts, actor: Actor, subject: str, asked_by: str | None = None, reference: str = ""
) -> DisclosureDocument:
    """The person's provision-record display printed at ``actor``'s counter, as the portal shows it; recorded."""
    return _hand_out(node, actor, Channel.PRINTOUT, subject, asked_by, reference, None)


def _hand_out(
    node: NodeParts,
    actor: Actor,
    channel: Channel,
    subject: str,
    asked_by: str | None,
    reference: str,
    scope: Scope | None,
) -> DisclosureDocument:
    node.app.permit(actor, Action.COUNTER_LOOKUP)
    reader = portal_reader(node)
    reader.fresh()
    s = node.app.subject(subject)
    who = node.app.subject(asked_by) if asked_by else s
    access, person = node.state.portal_access(who, s)
    if access == "none":
        raise PermissionDenied(
            "only the person, or their registered proxy, may ask for the person's provision records "
            "(a retired number's card names nobody)",
            code=Code.NOT_ENTITLED,
        )
    result = filtered(reader.records, person, scope, count=True)
    rid = record_disclosure(
        node.app,
        actor,
        subject=s,
        asked_by=who,
        access=access,
        channel=channel.value,
        shown=len(result.shown),
        withheld=result.withheld or 0,
        reference=reference,
    )
    records = tuple(
        DisclosedRecord(
            f.request_id,
            f.created_at,
            f.querier,
            f.provider,
            f.procedure,
            f.legal_item,
            f.info_kind,
            portal_outcome(status),
        )
        for f, status in result.shown
    )
    return DisclosureDocument(channel.value, actor.agency, s, access, reference, str(rid), records)


_COLUMNS = ("request_id", "made_at", "querier", "provider", "procedure", "legal_item", "info_kind", "outcome")
_TITLE = {"disclosure": "保有個人情報開示決定（情報提供等記録）", "printout": "情報提供等記録（窓口印刷）"}


def render(doc: DisclosureDocument, fmt: str) -> str:
    """The document as JSON (its fields), CSV (one row per record, the notice last) or text for printing."""
    if fmt == "json":
        return json.dumps(asdict(doc), ensure_ascii=False)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(_COLUMNS)
        for r in doc.records:
            w.writerow([getattr(r, c) for c in _COLUMNS])
        w.writerow([f"# {doc.notice}"])
        return buf.getvalue()
    lines = [
        _TITLE[doc.channel],
        f"交付機関: {doc.agency}    受付番号: {doc.reference or '-'}    記録番号: {doc.record_id}",
        "",
    ]
    for r in doc.records:
        lines.append(
            f"{r.made_at}  照会: {r.querier}  提供: {r.provider}  {r.procedure} (別表第二 {r.legal_item}) "
            f"{r.info_kind}  {r.outcome}  [{r.request_id}]"
        )
    if not doc.records:
        lines.append("記録はありません。")
    lines += ["", doc.notice]
    return "\n".join(lines) + "\n"
