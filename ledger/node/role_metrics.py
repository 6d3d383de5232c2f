"""What the linkage's parties tell their operators (issue 19, docs/operations.md): the hub, the portal, a witness
and an agency node in hub mode, each with ``/metrics``, ``/healthz`` and ``/readyz`` on the node's metrics port
(served by :class:`ledger.node.observe.HealthServer`, as the shared-mode node's are).

As for the shared-mode node, the loop takes the snapshot between two steps (:meth:`RoleMetrics.hub_step` and the
others) and the HTTP thread serves only what was stored: a scrape never touches the database or the broker.

**Ready** means the loop completed a step within ``liveness_seconds``, its last step reached the database and the
broker (a step that failed on either sets ``flagledger_linkage_transport_up`` to 0 until one succeeds) and, for
the hub, that this process holds the leader lease (a standby, or a leader that lost the lease, is alive but not
ready: exactly one hub replica is ready). The gauges that show a stalled hub before a victim's query is
answered wrongly: at the hub, ``flagledger_linkage_inbox_depth`` (messages waiting in its inbox),
``flagledger_hub_outbox_owed`` and the age of its last signed map head; at an agency,
``flagledger_linkage_map_head_age_seconds`` (the newest head the hub showed it — the hub signs one at least
every ``head_every_seconds``, and past ``max_age_seconds`` every routed query is held for staff) and its queued
queries. No gauge carries a person, a code or a holder: counts and times only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ledger.hub.service import HubService
    from ledger.linkage.checks import MapChecks
    from ledger.linkage.schedule import DigestSchedule

__all__ = ["ROLES", "RoleMetrics", "head_age", "inbox_depth"]

ROLES = ("hub", "portal", "witness", "agency")


def inbox_depth(transport: object) -> int | None:
    """Messages in the party's own inbox not yet read, or None when its transport cannot say (the scheduled
    transport asks the one it wraps)."""
    seen: set[int] = set()
    while transport is not None and id(transport) not in seen:
        seen.add(id(transport))
        lag = getattr(transport, "lag", None)
        if callable(lag):
            return int(lag())
        transport = getattr(transport, "inner", None)
    return None


def head_age(signed_time: str | None, now: datetime | None = None) -> float | None:
    """Seconds since a map head's signed time, or None when there is none (or it does not read)."""
    if not signed_time:
        return None
    try:
        then = datetime.fromisoformat(signed_time)
        return ((now or datetime.now(UTC)) - then).total_seconds()
    except (ValueError, TypeError):
        return None


class RoleMetrics:
    """Gauges of one party's loop in a registry of its own (several run in one test process)."""

    def __init__(self, role: str, now: Callable[[], datetime] | None = None) -> None:
        """``now``: the clock head ages are measured by (the node's; default the wall clock, aware)."""
        from prometheus_client import CollectorRegistry, Gauge

        if role not in ROLES:
            raise ValueError(f"no metrics for role {role!r}")
        self.role = role
        self.now = now or (lambda: datetime.now(UTC))
        self.registry: CollectorRegistry = CollectorRegistry()
        r = self.registry
        self.last_step = Gauge(
            "flagledger_linkage_last_step_timestamp_seconds", "When the party's loop last completed a step", registry=r
        )
        self.transport_up = Gauge(
            "flagledger_linkage_transport_up",
            "1: the last step reached the database and the broker; 0: it failed on one of them",
            registry=r,
        )
        self.depth = Gauge(
            "flagledger_linkage_inbox_depth",
            "Messages in this party's own inbox not yet read (end - position)",
            registry=r,
        )
        self.parked = Gauge(
            "flagledger_linkage_parked_messages", "Messages this party parked (could not open or apply)", registry=r
        )
        self.digest_overdue = Gauge(
            "flagledger_linkage_digest_overdue_seconds",
            "Seconds the next digest tick is overdue (0: on time; absent without a digest schedule)",
            registry=r,
        )
        self.head_age = Gauge(
            "flagledger_linkage_map_head_age_seconds",
            "Hub: since its last signed map head; agency: since the newest head the hub showed it",
            registry=r,
        )
        self.leader = Gauge(
            "flagledger_hub_leader", "1: this hub process holds the leader lease; 0: standby or lease lost", registry=r
        )
        self.sequence = Gauge("flagledger_hub_sequence", "The hub's last sequence number", registry=r)
        self.outbox = Gauge("flagledger_hub_outbox_owed", "Messages the hub owes parties and has not sent", registry=r)
        self.unrouted = Gauge(
            "flagledger_hub_unrouted_queries",
            "Queries the hub could not route and answered not_routed (parked), since it started",
            registry=r,
        )
        self.queued = Gauge(
            "flagledger_linkage_queued_queries", "Agency: its queries not yet taken by the hub", registry=r
        )
        self.consultations = Gauge(
            "flagledger_linkage_open_consultations",
            "Agency: routed requests held for staff here awaiting their decision (no holder named)",
            registry=r,
        )
        self.incidents = Gauge(
            "flagledger_linkage_hub_incidents", "Agency: the hub's lies its checks of the flag map caught", registry=r
        )
        self.lock = threading.Lock()
        self.last_round = 0.0  # monotonic
        self.is_up = False
        self.is_leader = role != "hub"

    # -- snapshots, from the loop ----------------------------------------------------------------------------
    def _stepped(self, depth: int | None, parked: int, schedule: DigestSchedule | None) -> None:
        self.transport_up.set(1)
        if depth is not None:
            self.depth.set(depth)
        self.parked.set(parked)
        if schedule is not None:
            self.digest_overdue.set(schedule.overdue())
        self.last_step.set(time.time())
        self.last_round = time.monotonic()
        self.is_up = True

    def down(self) -> None:
        """The step failed on the database or the broker: alive (the loop retries), not ready."""
        with self.lock:
            self.transport_up.set(0)
            self.is_up = False
            self.last_round = time.monotonic()

    def standby(self) -> None:
        """A hub process without the lease (never had it, or lost it): alive, not ready."""
        with self.lock:
            self.leader.set(0)
            self.is_leader = False
            self.transport_up.set(1)
            self.is_up = True
            self.last_round = time.monotonic()
            self.last_step.set(time.time())

    def hub_step(self, hub: HubService) -> None:
        """After a step of the leading hub: its lease, sequence, inbox, outbox, parked and unrouted, head age."""
        from sqlalchemy import func, select
        from sqlalchemy.exc import SQLAlchemyError

        from ledger.errors import StorageError
        from ledger.hub.tables import hub_heads, hub_outbox, hub_parked
        from ledger.linkage.hub_wire import decode_head

        store = hub.store
        leading = store.sequencer.leader
        try:
            with store.engine.connect() as conn:
                owed = int(conn.execute(select(func.count()).select_from(hub_outbox)).scalar_one())
                parked = int(conn.execute(select(func.count()).select_from(hub_parked)).scalar_one())
                last = conn.execute(select(hub_heads.c.head).order_by(hub_heads.c.seq.desc()).limit(1)).first()
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the hub's figures: {type(exc).__name__}") from exc
        age = head_age(decode_head(bytes(last[0])).time, self.now()) if last is not None else None
        depth = inbox_depth(hub.transport)
        with self.lock:
            self.leader.set(1 if leading else 0)
            self.is_leader = leading
            self.sequence.set(store.sequencer.last())
            self.outbox.set(owed)
            self.unrouted.set(hub.unrouted)
            if age is not None:
                self.head_age.set(age)
            self._stepped(depth, parked, hub.digests)

    def party_step(self, transport: object, parked: int, schedule: DigestSchedule | None) -> None:
        """After a step of the portal or a witness."""
        depth = inbox_depth(transport)
        with self.lock:
            self._stepped(depth, parked, schedule)

    def agency_step(
        self,
        transport: object,
        counts: Mapping[str, int],
        checks: MapChecks | None,
        schedule: DigestSchedule | None,
    ) -> None:
        """After a round of an agency node in hub mode: ``counts`` has ``parked``, ``queued``, ``consultations``."""
        depth = inbox_depth(transport)
        newest = checks.freshness.newest if checks is not None else None
        age = head_age(newest.time, self.now()) if newest is not None else None
        with self.lock:
            self.queued.set(counts.get("queued", 0))
            self.consultations.set(counts.get("consultations", 0))
            if checks is not None:
                self.incidents.set(len(checks.incidents))
            if age is not None:
                self.head_age.set(age)
            self._stepped(depth, counts.get("parked", 0), schedule)

    # -- served ------------------------------------------------------------------------------------------------
    def render(self) -> bytes:
        from prometheus_client import generate_latest

        with self.lock:
            return bytes(generate_latest(self.registry))

    def health(self, liveness_seconds: int) -> tuple[bool, bool]:
        """(alive, ready): alive until the loop has been stuck ``liveness_seconds``; ready when, besides, its last
        step reached the database and the broker and (the hub) it holds the lease."""
        with self.lock:
            if not self.last_round:
                return True, False
            fresh = time.monotonic() - self.last_round < liveness_seconds
            return fresh, fresh and self.is_up and self.is_leader

    def status(self) -> dict[str, Any]:
        """The readiness's reasons, for the loop's log line."""
        with self.lock:
            return {"up": self.is_up, "leader": self.is_leader}
