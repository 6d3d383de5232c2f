"""What the linkage hub brought an agency node in hub mode about protection-body requests (issue 19,
docs/bodies.md), read by the application (``ledger.app.bodies.HubBodyFacts``).

Kept by the bridge (``consumers.linkage_bodies``): at a municipality, ``linkage_body_requests`` (each request
the hub routed to it, under its own subject, the hub's id as the request's); at a body,
``linkage_body_outcomes`` (each step of the answer to one of its own requests, from the municipality it asked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.runtime.tables import linkage_body_outcomes, linkage_body_requests
from ledger.storage import storage_error

__all__ = ["HubBodyRequests", "RelayedOutcome", "RoutedBody"]


@dataclass(frozen=True)
class RoutedBody:
    """A request the hub routed to ``municipality``: the fields the application reads of a ``BodyRequest``."""

    id: UUID
    agency: str  # the body
    municipality: str
    subject: str
    flags: list[str]
    reason: str
    created_on: datetime
    sent_by: str = ""  # the body's staff member is not sent through the hub


@dataclass(frozen=True)
class RelayedOutcome:
    """One step of a municipality's answer, relayed: the fields the application reads of a ``BodyOutcome``."""

    agency: str  # the municipality the request was sent to: the hub relays from it only
    body_request_id: UUID
    flag_request_id: UUID
    kind: str
    flags: list[str]
    status: str
    on: str


class HubBodyRequests:
    def __init__(self, engine: Engine, agency: str) -> None:
        self.engine, self.agency = engine, agency

    def _rows(self, stmt: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(stmt))
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the body requests the hub brought", exc) from exc

    def _routed(self, row: Any) -> RoutedBody:
        return RoutedBody(
            UUID(row.id),
            row.body,
            self.agency,
            row.subject,
            row.flags.split(","),
            row.reason,
            datetime.fromisoformat(row.received_at),
        )

    def find(self, body_request_id: UUID) -> RoutedBody | None:
        rows = self._rows(select(linkage_body_requests).where(linkage_body_requests.c.id == body_request_id.hex))
        return self._routed(rows[0]) if rows else None

    def received(self) -> list[RoutedBody]:
        return [self._routed(r) for r in self._rows(select(linkage_body_requests))]

    def outcomes(self) -> list[RelayedOutcome]:
        return [
            RelayedOutcome(
                r.municipality,
                UUID(r.body_request_id),
                UUID(r.flag_request_id),
                r.kind,
                r.flags.split(","),
                r.status,
                r.on,
            )
            for r in self._rows(select(linkage_body_outcomes).order_by(linkage_body_outcomes.c.id))
        ]
