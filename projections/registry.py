"""Every projection a node maintains, by name."""

from __future__ import annotations

from projections.base import Projection
from projections.flag_state import FlagStateProjection


def all_projections() -> list[Projection]:
    return [FlagStateProjection()]
