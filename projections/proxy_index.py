"""Which proxy registrations name a pair of pseudonyms, whichever agency made them (``FlagLedger.proxy_index``).

A registration's stream id is keyed with its agency's own secret (ledger.log.stream_ids), so another agency
cancelling it (Point 1: the victim's municipality cancels the perpetrator's proxy registration, made
elsewhere) finds it here. The app loads what this names from the verified log and checks it is that pair.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Engine, select

from projections.base import Projector
from projections.portal import portal_proxies

__all__ = ["ProxyIndex"]


class ProxyIndex:
    def __init__(self, projector: Projector, engine: Engine) -> None:
        self.projector = projector
        self.engine = engine

    def registrations(self, subject: str, proxy: str) -> list[UUID]:
        self.projector.catch_up()
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(portal_proxies.c.registration_id).where(
                        (portal_proxies.c.subject == subject) & (portal_proxies.c.proxy == proxy)
                    )
                )
                .scalars()
                .all()
            )
        out: list[UUID] = []
        for r in rows:
            try:
                out.append(UUID(str(r)))
            except ValueError:  # an edited row: names nothing
                continue
        return out
