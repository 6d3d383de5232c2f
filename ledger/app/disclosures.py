"""Recording a person's provision records handed out outside the portal: a disclosure request's document (開示請求)
or a counter printout (issue 21, "Other channels"; docs/channels.md). What the document holds is decided on the read
side (:mod:`projections.views_disclosure`, through the portal's one filter); here is only its record, saved before
the document is returned, so a hand-out nobody recorded cannot happen through these paths.
"""

from __future__ import annotations

from uuid import UUID

from ledger.app.access import LedgerAccess
from ledger.app.values import Actor
from ledger.domain.disclosures import Channel, DisclosureRecord
from ledger.domain.types import Action, parse_enum

__all__ = ["disclosure_records", "record_disclosure"]


def record_disclosure(
    app: LedgerAccess,
    actor: Actor,
    *,
    subject: str,
    asked_by: str,
    access: str,
    channel: str,
    shown: int,
    withheld: int,
    reference: str = "",
) -> UUID:
    """Record one hand-out by ``actor`` (counter staff: ``counter_lookup``); pseudonyms in. The withheld count is
    recorded, never which records nor who queried them. An over-long reference raises InputError, saving nothing."""
    app.authorise(actor, Action.COUNTER_LOOKUP)
    rec = DisclosureRecord(
        agency=actor.agency,
        staff=actor.staff,
        subject=subject,
        asked_by=asked_by,
        access=access,
        channel=parse_enum(Channel, channel, "channel").value,
        shown=shown,
        withheld=withheld,
        reference=reference,
    )
    app.save_as(actor.agency, rec)
    return rec.id


def disclosure_records(app: LedgerAccess, actor: Actor, subject: str | None = None) -> list[DisclosureRecord]:
    """The hand-outs ``actor``'s agency recorded (optionally about one person), oldest first: for its auditors."""
    app.authorise(actor, Action.AUDIT)
    wanted = None if subject is None else app.subject(subject)
    found = [
        r
        for r in app._aggregates(DisclosureRecord, "Made")
        if r.agency == actor.agency and (wanted is None or r.subject == wanted)
    ]
    return sorted(found, key=lambda r: r.created_on)
