"""Query functions over the projections, with the role filtering each audience needs.

Audiences and what they may learn:

* **Mynaportal** (:func:`portal_records`, :func:`self_information`): whoever logs in with the subject's
  credentials (the subject, or anyone holding the subject's card: the system cannot tell them apart) or a
  *registered, active* proxy. Everyone gets the same filtered view; anyone else gets nothing.
  A record is hidden when it was created before the end of any ``NON_DISCLOSURE`` interval that any agency
  held on any pseudonym of the person (an open interval ends never). That hides every record while the
  flag applies, and keeps hidden, after release, every record that was hidden (those created while the
  flag applied and those before it); records created after the last release are shown. Self-information
  (what agencies hold about the person, modelled as the items they have provided about the person) is not
  shown at all while ``NO_AUTO_RESPONSE`` applies nationwide. Served (API, CLI) only to the portal's
  system account (:func:`portal_records_for`, :func:`self_information_for`): never to any staff member.
* **Staff** (:func:`nationwide_view`, :func:`counter_view`): staff of any agency see *that* a person is
  protected, which flags, and opaque liaison references; staff of a holding agency see their own holding,
  and nobody sees which other agencies hold flags (whatever purpose they state).
* **The agency itself** (:func:`agency_flag_state`, :func:`work_queue`).
* **Auditors** (:func:`subject_timeline`): everything their own agency did about the person, recorded as a
  read; never another agency's events (its intake notes, or its flags: who protects the person).

Every function taking a ``Node`` first applies events not yet projected, so reads follow writes. Whatever
decides what an audience may see (who is protected, the portal's access and cutoff, what a shown record says)
comes from the verified log (:mod:`projections.verified`), not from rows of the views database; listings (work
queues, an agency's own flags, timelines) read the views, which ``flagledger audit views`` checks.

Each audience's functions live in their own module (:mod:`projections.views_portal`,
:mod:`projections.views_staff`, :mod:`projections.views_queues`); this one names them all for callers and
holds the auditors' timeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from ledger.app import Actor
from ledger.domain.types import Action
from ledger.log.view_cipher import ViewCipher
from projections.node import NodeParts
from projections.timeline import DETAIL, timeline_events
from projections.view_reads import aliases, fresh, view_cipher
from projections.views_portal import (
    Holding,
    PortalRecord,
    PortalView,
    SelfInfoView,
    portal_records,
    portal_records_for,
    self_information,
    self_information_for,
)
from projections.views_queues import (
    HELD_LISTING,
    HELD_LISTING_PURPOSE,
    INCIDENT_LISTING,
    INCIDENT_LISTING_PURPOSE,
    AgencyFlag,
    HeldRequest,
    IncidentEntry,
    PendingApproval,
    ProbeNoticeEntry,
    ProtectionBodyRequest,
    ReviewDue,
    WorkQueue,
    agency_flag_state,
    body_requests,
    held_requests,
    open_incidents,
    pending_approvals,
    probe_notices,
    reviews_due,
    work_queue,
)
from projections.views_staff import (
    CounterAnswer,
    CounterView,
    NationwideView,
    counter_view,
    liaison_ref,
    nationwide_view,
    resolve_liaison,
)

__all__ = [
    "HELD_LISTING",
    "HELD_LISTING_PURPOSE",
    "INCIDENT_LISTING",
    "INCIDENT_LISTING_PURPOSE",
    "AgencyFlag",
    "CounterAnswer",
    "CounterView",
    "HeldRequest",
    "Holding",
    "IncidentEntry",
    "NationwideView",
    "PendingApproval",
    "PortalRecord",
    "PortalView",
    "ProbeNoticeEntry",
    "ProtectionBodyRequest",
    "ReviewDue",
    "SelfInfoView",
    "TimelineEntry",
    "WorkQueue",
    "agency_flag_state",
    "aliases",
    "body_requests",
    "counter_view",
    "held_requests",
    "liaison_ref",
    "nationwide_view",
    "open_incidents",
    "pending_approvals",
    "portal_records",
    "portal_records_for",
    "probe_notices",
    "resolve_liaison",
    "reviews_due",
    "self_information",
    "self_information_for",
    "subject_timeline",
    "work_queue",
]


# -- auditors ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineEntry:
    position: int
    at: str
    event: str
    agency: str
    actor: str | None
    subject: str
    detail: dict[str, Any]


def timeline_rows(
    conn: Connection, cipher: ViewCipher, subjects: Sequence[str], agency: str | None = None
) -> list[TimelineEntry]:
    """The timeline rows of ``subjects``; with ``agency``, only the events that agency signed, and any
    ``holders`` field (a probe notice's) cut down to that agency (see :func:`subject_timeline`). A row whose
    data key is destroyed (its person erased, the views not yet rebuilt) is left out."""
    query = select(timeline_events).where(timeline_events.c.subject.in_(list(subjects)))
    if agency is not None:
        query = query.where(timeline_events.c.agency == agency)
    rows = conn.execute(query.order_by(timeline_events.c.position, timeline_events.c.subject)).all()
    seen: set[int] = set()
    out = []
    for r in rows:
        if r.position in seen:  # one event about two pseudonyms of the same person (a number change)
            continue
        opened = cipher.open(DETAIL, r.detail)
        if opened is None:
            continue
        seen.add(r.position)
        detail = json.loads(opened)
        if agency is not None and isinstance(detail.get("holders"), list):
            detail["holders"] = [h for h in detail["holders"] if h == agency]
        out.append(TimelineEntry(r.position, r.at, r.event, r.agency, r.actor, r.subject, detail))
    return out


def subject_timeline(node: NodeParts, actor: Actor, subject: str, purpose: str) -> list[TimelineEntry]:
    """Every event ``actor``'s own agency signed about the person, in log order. Auditors only; the read
    itself is recorded first.

    Only the reader's agency's events (issue 18): on a node hosting several agencies, another agency's
    intake notes, approvals and reads are its own business, and another agency's shared events (its
    ``Protection`` stream, the probe notices it sent) would say who protects the person. A probe notice
    of the reader's own agency lists only the reader's agency among its holders.
    """
    node.app.permit(actor, Action.AUDIT)
    s = node.app.subject(subject)
    node.app.record_access(actor, s, "subject timeline", purpose)
    fresh(node)
    with node.engine.connect() as conn:
        return timeline_rows(conn, view_cipher(node), aliases(conn, s), actor.agency)
