"""Every projection a node maintains, by name."""

from __future__ import annotations

from projections.base import Projection
from projections.flag_state import FlagStateProjection
from projections.incidents import IncidentProjection
from projections.portal import PortalProjection
from projections.queues import QueueProjection
from projections.timeline import TimelineProjection
from projections.year_rows import YearRowsProjection


def all_projections() -> list[Projection]:
    return [
        FlagStateProjection(),
        PortalProjection(),
        QueueProjection(),
        TimelineProjection(),
        IncidentProjection(),
        YearRowsProjection(),
    ]
