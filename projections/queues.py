"""Work queues: flag requests awaiting approval, held provision requests, requests from protection bodies,
and probe notices (someone asked about a person this agency protects).

Reviews due are read from the flag-state projection's ``agency_flags`` (its review dates) by
:mod:`projections.views`; they need no table of their own.

Held provision requests: the ``Received`` event carries the request's attributes and the ``Held`` or
``AutoProvided`` event that follows it (same stream, same sealed batch) carries none, so a row is written on
``Received`` and deleted again on ``AutoProvided``: the table only keeps requests that were ever held.

Probe notices: one row per (request, holding agency) named by a ``ProbeNotice``, whichever node received the
request; the notice reaches the holders' nodes like any other shared event (consumers/ingest.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table, Text, select

from ledger.domain import bounds
from ledger.log.envelope import Envelope
from projections.base import BatchedProjection, PageWriter, metadata
from projections.portal import canonical_time

__all__ = [
    "HELD_APPLICANT",
    "HELD_INFO_KIND",
    "HELD_PROCEDURE",
    "HELD_QUERIER",
    "PROBE_KEYLESS",
    "PROBE_PROCEDURE",
    "PROBE_PROVIDER",
    "PROBE_QUERIER",
    "QueueProjection",
    "body_queue",
    "flag_queue",
    "held_queue",
    "probe_queue",
    "request_subjects",
]

# the sealed columns' names (their cells' associated data)
HELD_QUERIER = "queue_held_requests.querier"
HELD_PROCEDURE = "queue_held_requests.procedure"
HELD_INFO_KIND = "queue_held_requests.info_kind"
HELD_APPLICANT = "queue_held_requests.applicant"
PROBE_PROVIDER = "queue_probe_notices.provider"
PROBE_QUERIER = "queue_probe_notices.querier"
PROBE_PROCEDURE = "queue_probe_notices.procedure"
# a notice whose request has not arrived (never seen: a provider's Received precedes its notice in its log) is
# sealed under a key of its own, named by the request; erasing the person does not reach that key
PROBE_KEYLESS = "request:"

FLAG_REQUEST = "ledger.domain.flags:FlagRequest."
BODY_SENT = "ledger.domain.flags:BodyRequest.Sent"
PROVISION = "ledger.domain.provision:ProvisionRequest."
PROBE_SENT = "ledger.domain.provision:ProbeNotice.Sent"

flag_queue = Table(
    "queue_flag_requests",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("agency", String(bounds.AGENCY_CODE.max), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("subject", String(bounds.SUBJECT.max), nullable=False),
    Column("flags", String(80), nullable=False),  # comma-separated, sorted
    Column("reason", String(bounds.ENUM.max), nullable=False),
    Column("review_date", String(bounds.DATE.max)),
    Column("requested_by", String(bounds.STAFF_ID.max), nullable=False),
    Column("requested_at", String(32), nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("approvals", Text, nullable=False),  # comma-separated staff ids, in order
    Column("status", String(12), nullable=False),
    Column("decided_by", String(bounds.STAFF_ID.max)),
    Column("updated_at", String(32), nullable=False),
    Column("body_request_id", String(36), index=True),
    Index("ix_queue_flag_requests_agency_status", "agency", "status"),
)

held_queue = Table(
    "queue_held_requests",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("provider", String(bounds.AGENCY_CODE.max), nullable=False),
    # querier, procedure, info_kind, applicant: sealed under the person's data key (ledger.log.view_cipher)
    Column("querier", Text, nullable=False),
    Column("subject", String(bounds.SUBJECT.max), nullable=False),
    Column("legal_item", Integer, nullable=False),
    Column("procedure", Text, nullable=False),
    Column("info_kind", Text, nullable=False),
    Column("applicant", Text, nullable=False),  # as stated by the querying agency
    Column("received_at", String(32), nullable=False),
    Column("status", String(24), nullable=False),
    Column("proposal", String(12)),
    Column("applicant_check", String(bounds.ENUM.max)),  # as confirmed with the querying agency (Point 5)
    Column("proposed_by", String(bounds.STAFF_ID.max)),
    Column("proposal_version", Integer),  # the DecisionProposed event's version: an approval names it
    Column("decided_by", String(bounds.STAFF_ID.max)),
    Column("decided_at", String(32)),
    Index("ix_queue_held_provider_status", "provider", "status", "received_at"),
)

body_queue = Table(
    "queue_body_requests",
    metadata,
    Column("body_request_id", String(36), primary_key=True),
    Column("body", String(bounds.AGENCY_CODE.max), nullable=False),
    Column("municipality", String(bounds.AGENCY_CODE.max), nullable=False, index=True),
    Column("subject", String(bounds.SUBJECT.max), nullable=False),
    Column("flags", String(80), nullable=False),
    Column("reason", String(bounds.ENUM.max), nullable=False),
    Column("sent_by", String(bounds.STAFF_ID.max), nullable=False),
    Column("sent_at", String(32), nullable=False),
)

probe_queue = Table(
    "queue_probe_notices",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("holder", String(bounds.AGENCY_CODE.max), primary_key=True),
    Column("notice_id", String(36), nullable=False),
    # sealed under the person's data key (ledger.log.view_cipher): text of any length
    Column("provider", Text, nullable=False),
    Column("querier", Text, nullable=False),
    Column("legal_item", Integer, nullable=False),
    Column("procedure", Text, nullable=False),
    Column("sent_at", String(32), nullable=False),
    Index("ix_queue_probe_holder", "holder", "sent_at"),
)

# every provision request's subject, so a probe notice (which names only the request) can show about whom
request_subjects = Table(
    "queue_request_subjects",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("subject", String(bounds.SUBJECT.max), nullable=False),
)


class QueueProjection(BatchedProjection):
    name = "work_queues"
    schema_version = 2  # 2: probe notices and held requests sealed under the person's data key
    tables = (flag_queue, held_queue, body_queue, probe_queue, request_subjects)
    topics = frozenset(
        {FLAG_REQUEST + e for e in ("Requested", "Approved", "Rejected", "Executed")}
        | {BODY_SENT, PROBE_SENT}
        | {
            PROVISION + e
            for e in ("Received", "AutoProvided", "Held", "DecisionProposed", "ManuallyProvided", "Refused", "Reopened")
        }
    )

    def apply(self, w: PageWriter, event: Any, env: Envelope, position: int) -> None:
        h = env.header
        kind = h.topic.rsplit(".", 1)[1]
        at = canonical_time(h.time)
        if h.topic.startswith(FLAG_REQUEST):
            self._flag_request(w, kind, event, h.stream, at)
        elif h.topic == BODY_SENT:
            w.upsert(
                body_queue,
                {
                    "body_request_id": h.stream,
                    "body": event.agency,
                    "municipality": event.municipality,
                    "subject": event.subject,
                    "flags": ",".join(sorted(event.flags)),
                    "reason": event.reason,
                    "sent_by": event.sent_by,
                    "sent_at": at,
                },
            )
        elif h.topic == PROBE_SENT:
            request = str(event.request_id)
            # who asked, through which provider, for what: where the person may now live — sealed under the
            # person's data key (docs/erasure.md); the notice names only the request, whose subject the provider's
            # Received (earlier in its log, hence in ours) gave
            subject = (
                w.memo.get(("request_subject", request))
                or w.conn.execute(
                    select(request_subjects.c.subject).where(request_subjects.c.request_id == request)
                ).scalar()
            )
            owner = str(subject) if subject else PROBE_KEYLESS + request
            seal = w.cipher.seal
            sealed = {
                "provider": seal(owner, PROBE_PROVIDER, event.agency),
                "querier": seal(owner, PROBE_QUERIER, event.querier),
                "procedure": seal(owner, PROBE_PROCEDURE, event.procedure),
            }
            for holder in sorted(set(event.holders)):
                w.upsert(
                    probe_queue,
                    {
                        "request_id": request,
                        "holder": holder,
                        "notice_id": h.stream,
                        "legal_item": int(event.legal_item),
                        "sent_at": at,
                        **sealed,
                    },
                )
        else:
            self._provision(w, kind, event, h.stream, at)

    @staticmethod
    def _flag_request(w: PageWriter, kind: str, event: Any, stream: str, at: str) -> None:
        # writes by primary key go through the page's writer (batched); the approval count needs a read,
        # which sends the page's pending writes first
        key = {"request_id": stream}
        if kind == "Requested":
            w.upsert(
                flag_queue,
                {
                    "request_id": stream,
                    "agency": event.agency,
                    "kind": event.kind,
                    "subject": event.subject,
                    "flags": ",".join(sorted(event.flags)),
                    "reason": event.reason,
                    "review_date": event.review_date,
                    "requested_by": event.requested_by,
                    "requested_at": at,
                    "approvals_required": int(event.approvals_required),
                    "approvals": "",
                    "status": "pending",
                    "decided_by": None,
                    "updated_at": at,
                    "body_request_id": str(event.body_request_id) if event.body_request_id else None,
                },
            )
        elif kind == "Approved":
            row = w.conn.execute(
                select(flag_queue.c.approvals, flag_queue.c.approvals_required).where(flag_queue.c.request_id == stream)
            ).first()
            if row is None:
                return
            approvals = [a for a in str(row.approvals).split(",") if a] + [event.by]
            status = "approved" if len(approvals) >= int(row.approvals_required) else "pending"
            w.update(flag_queue, key, {"approvals": ",".join(approvals), "status": status, "updated_at": at})
        else:
            status = "rejected" if kind == "Rejected" else "executed"
            w.update(flag_queue, key, {"status": status, "decided_by": event.by, "updated_at": at})

    @staticmethod
    def _provision(w: PageWriter, kind: str, event: Any, stream: str, at: str) -> None:
        key = {"request_id": stream}
        if kind == "Received":
            # a probe notice names the request, not the person; on another node it may arrive first
            w.upsert(request_subjects, {"request_id": stream, "subject": event.subject})
            w.memo[("request_subject", stream)] = event.subject
            subject, seal = event.subject, w.cipher.seal
            w.upsert(
                held_queue,
                {
                    "request_id": stream,
                    "provider": event.agency,
                    "querier": seal(subject, HELD_QUERIER, event.querier),
                    "subject": subject,
                    "legal_item": int(event.legal_item),
                    "procedure": seal(subject, HELD_PROCEDURE, event.procedure),
                    "info_kind": seal(subject, HELD_INFO_KIND, event.info_kind),
                    "applicant": seal(subject, HELD_APPLICANT, event.applicant),
                    "received_at": at,
                    "status": "received",
                    "proposal": None,
                    "applicant_check": None,
                    "proposed_by": None,
                    "proposal_version": None,
                    "decided_by": None,
                    "decided_at": None,
                },
            )
        elif kind == "AutoProvided":
            w.delete(held_queue, key)
        elif kind == "Held":
            w.update(held_queue, key, {"status": "held"})
        elif kind == "Reopened":  # the hub refused the decision (decide again): held, as before any proposal
            undecided = dict.fromkeys(("proposal", "applicant_check", "proposed_by", "proposal_version"))
            w.update(held_queue, key, {"status": "held", **undecided, "decided_by": None, "decided_at": None})
        elif kind == "DecisionProposed":
            w.update(
                held_queue,
                key,
                {
                    "proposal": event.decision,
                    "applicant_check": event.applicant_check,
                    "proposed_by": event.by,
                    "proposal_version": int(event.originator_version),
                },
            )
        else:
            status = "provided_manually" if kind == "ManuallyProvided" else "refused"
            w.update(held_queue, key, {"status": status, "decided_by": event.approved_by, "decided_at": at})
