"""The work queue's entries from the linkage hub (issue 19, an agency node in hub mode): pure values, filled by
``consumers.linkage_queue`` from the node's operational tables (the projections cannot read those).

None of them names a holder: the hub never tells a provider who holds, and an administrator's escalation names
no person and no querier either — the administrator chases the deciders, never reads the case.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CaseEntry", "ConsultationEntry", "EscalationEntry"]


@dataclass(frozen=True)
class ConsultationEntry:
    """As holder: the hub asks this agency's advice on a query about a person it protects (no querier in it)."""

    request_id: str  # the provider's hub-given id: what `provision advise` takes
    provider: str
    subject: str  # this agency's own subject for the person
    procedure: str
    legal_item: int
    info_kind: str
    received_at: str
    advice: str | None  # the advice this agency's staff gave, None while it waits for them


@dataclass(frozen=True)
class CaseEntry:
    """As provider: a held request the hub routed with the "staff answer" mark, and what the hub said of it — the
    holders' advice combined and unnamed, its basis, the escalations. The request itself is in ``held``."""

    request_id: str  # the local provision request
    advice: str | None
    basis: str | None  # "advised" | "escalated"; None while the holders are asked
    escalations: tuple[str, ...]


@dataclass(frozen=True)
class EscalationEntry:
    """The administrator's: a held routed request the holders did not advise on by the deadline (or whose
    decision the hub refused). The request id and the hub's reason only: no person, no querier, no holder."""

    request_id: str
    reason: str
    at: str
