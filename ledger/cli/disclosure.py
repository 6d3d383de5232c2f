"""``flagledger disclosure …``: a person's provision records outside the portal — the answer to a disclosure
request (開示請求) and the counter printout — through the portal's one filter, each hand-out recorded
(docs/channels.md). The same documents as ``POST /api/v1/disclosures`` and ``/api/v1/printouts``."""

from __future__ import annotations

import sys

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node
from ledger.cli.parsing import OneOf, option

disclosure = group("disclosure", "a person's provision records outside the portal: disclosure requests, printouts")

_FORMAT = OneOf(("json", "csv", "text"))


@command(disclosure, "request", help="answer a disclosure request (開示請求): this agency's records on the person")
@as_actor()
@option("--subject", required=True, help="whose records: individual number or pseudonym")
@option("--asked-by", default=None, help="who asks, if not the person: their registered proxy (number or pseudonym)")
@option("--reference", default="", help="the agency's own number for the request (受付番号)")
@option("--format", "fmt", type=_FORMAT, default="json", help="json (default), csv or text (for printing)")
def request(actor: Actor, subject: str, asked_by: str | None, reference: str, fmt: str) -> int:
    from projections.views_disclosure import disclosure_document, render

    sys.stdout.write(render(disclosure_document(node(), actor, subject, asked_by, reference), fmt))
    if fmt == "json":
        sys.stdout.write("\n")
    return 0


@command(disclosure, "printout", help="print the person's provision records at the counter, as the portal shows them")
@as_actor()
@option("--subject", required=True, help="whose records: individual number or pseudonym")
@option("--asked-by", default=None, help="who asks, if not the person: their registered proxy (number or pseudonym)")
@option("--reference", default="", help="the agency's own number for the request (受付番号)")
@option("--format", "fmt", type=_FORMAT, default="text", help="text (default, for printing), json or csv")
def printout(actor: Actor, subject: str, asked_by: str | None, reference: str, fmt: str) -> int:
    from projections.views_disclosure import counter_printout, render

    sys.stdout.write(render(counter_printout(node(), actor, subject, asked_by, reference), fmt))
    if fmt == "json":
        sys.stdout.write("\n")
    return 0
