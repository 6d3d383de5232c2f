"""Open and acknowledged security incidents per alerted agency, for the work queue and the node's metrics.

The breach report (``flagledger incident report``) reads the incidents from the log itself, never from here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table

from ledger.log.envelope import Envelope
from projections.base import BatchedProjection, PageWriter, metadata
from projections.portal import canonical_time

__all__ = ["IncidentProjection", "incidents"]

RAISED = "ledger.domain.incidents:Incident.Raised"
ACKNOWLEDGED = "ledger.domain.incidents:Incident.Acknowledged"

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("agency", String(32), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("code", String(40), nullable=False),
    Column("origin", String(40), nullable=False),  # as the message claims
    Column("stream", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("topic", String(200), nullable=False),
    Column("subjects", String(2000), nullable=False),  # comma-separated pseudonyms (log's, then claimed)
    Column("parked_id", Integer, nullable=False),
    Column("origin_held", Integer, nullable=False),
    Column("raised_at", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # open | acknowledged
    Column("acknowledged_by", String(64)),
    Column("acknowledged_at", String(32)),
    Index("ix_incidents_agency_status", "agency", "status", "raised_at"),
)


class IncidentProjection(BatchedProjection):
    name = "incidents"
    tables = (incidents,)
    topics = frozenset({RAISED, ACKNOWLEDGED})

    def apply(self, w: PageWriter, event: Any, env: Envelope, position: int) -> None:
        h = env.header
        at = canonical_time(h.time)
        if h.topic == RAISED:
            w.upsert(
                incidents,
                {
                    "incident_id": h.stream,
                    "agency": event.agency,
                    "kind": event.kind,
                    "code": event.code,
                    "origin": event.origin,
                    "stream": event.stream,
                    "version": int(event.stream_version),
                    "topic": event.topic,
                    "subjects": ",".join([*event.subjects, *event.claimed_subjects]),
                    "parked_id": int(event.parked_id),
                    "origin_held": int(bool(event.origin_held)),
                    "raised_at": at,
                    "status": "open",
                    "acknowledged_by": None,
                    "acknowledged_at": None,
                },
            )
        else:
            w.update(
                incidents,
                {"incident_id": h.stream},
                {"status": "acknowledged", "acknowledged_by": event.by, "acknowledged_at": at},
            )
