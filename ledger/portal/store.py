"""The portal's database: cards signed in, the pages the hub fed, the hub's messages applied, the outbox."""

from __future__ import annotations

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import StorageError
from ledger.linkage.erasure_messages import PageErasure
from ledger.linkage.portal_messages import PortalPageMessage
from ledger.portal.migrations import upgrade
from ledger.portal.tables import (
    portal_cards,
    portal_erasures,
    portal_outbox,
    portal_pages,
    portal_seen,
    portal_waiting,
)
from ledger.storage import create_engine, storage_error, with_driver

__all__ = ["PortalStore", "open_portal_store"]


class PortalStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def has_card(self, code: str) -> bool:
        try:
            with self.engine.connect() as conn:
                return conn.execute(select(portal_cards.c.code).where(portal_cards.c.code == code)).first() is not None
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the portal's cards", exc) from exc

    def add_card(self, code: str, registration: bytes) -> bool:
        """Keep the card's code and owe the hub its sealed registration, once; False if it was there."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(portal_cards).values(code=code))
                conn.execute(insert(portal_outbox).values(message=registration))
        except SqlIntegrityError:
            return False  # signed in before (or by a concurrent sign-in): registered once
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep the card", exc, "nothing was kept") from exc
        return True

    def page(self, code: str) -> PortalPageMessage | None:
        try:
            with self.engine.connect() as conn:
                raw = conn.execute(select(portal_pages.c.page).where(portal_pages.c.code == code)).scalar()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the portal's pages", exc) from exc
        return None if raw is None else PortalPageMessage.decode(bytes(raw))

    def was_seen(self, event_id: str) -> bool:
        try:
            with self.engine.connect() as conn:
                return conn.execute(select(portal_seen).where(portal_seen.c.event_id == event_id)).first() is not None
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the portal's applied messages", exc) from exc

    def keep(self, event_id: str, page: PortalPageMessage) -> bool:
        """Apply a page the hub sent (and its event id) in one transaction; an older version than the one kept
        is dropped (returns False). The hub sends each page once per change, in order; this guards a replay."""
        p = portal_pages.c
        dropped = False
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    # a page replaced may have lost an erased record (ledger.hub.erasure): its old bytes are
                    # overwritten, not left in the file's free pages
                    conn.exec_driver_sql("PRAGMA secure_delete=ON")
                conn.execute(insert(portal_seen).values(event_id=event_id))
                held = conn.execute(select(p.version, p.page).where(p.code == page.code)).first()
                if held is not None and int(held.version) > page.version:
                    return False
                values = {"version": page.version, "page": page.encode()}
                if held is None:
                    conn.execute(insert(portal_pages).values(code=page.code, **values))
                else:
                    conn.execute(update(portal_pages).where(p.code == page.code).values(**values))
                    kept = {r.record_id for r in page.records}
                    dropped = any(r.record_id not in kept for r in PortalPageMessage.decode(bytes(held.page)).records)
            if dropped and self.engine.dialect.name == "sqlite":
                with self.engine.connect() as conn:  # and no WAL frame keeps the old page either
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep the hub's page", exc, "nothing was kept") from exc
        return True

    def erased(self, event_id: str, notice: PageErasure) -> None:
        """Record an erasure the hub told of (and its event id), once."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(portal_seen).values(event_id=event_id))
                e = portal_erasures.c
                held = conn.execute(
                    select(e.code).where((e.code == notice.code) & (e.version == notice.version))
                ).first()
                if held is None:
                    conn.execute(insert(portal_erasures).values(code=notice.code, version=notice.version))
        except SQLAlchemyError as exc:
            raise storage_error("cannot record the hub's erasure", exc, "nothing was kept") from exc

    def erasures(self) -> list[dict[str, object]]:
        """The erasures the hub told of, in its sequence (the portal's audit of them)."""
        e = portal_erasures.c
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(e.code, e.version).order_by(e.version, e.code)).all()
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the portal's erasures", exc) from exc
        return [{"code": str(c), "version": int(v)} for c, v in rows]

    def owed(self) -> list[tuple[int, bytes]]:
        o = portal_outbox.c
        try:
            with self.engine.connect() as conn:
                return [(int(i), bytes(m)) for i, m in conn.execute(select(o.id, o.message).order_by(o.id))]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the portal's outbox", exc) from exc

    def paid(self, ids: list[int]) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(portal_outbox).where(portal_outbox.c.id.in_(ids)))
        except SQLAlchemyError as exc:
            raise storage_error("cannot clear the portal's outbox", exc) from exc

    def owe(self, message: bytes) -> None:
        """Owe the hub ``message`` (sealed to it): sent by the loop, deleted once the broker stored it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(portal_outbox).values(message=message))
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep a message for the hub", exc, "nothing was kept") from exc

    # -- pages waiting for a wire key (ledger.linkage.delivery_keys) ---------------------------------------
    def wait(self, event_id: str, ref: str, provider: str, message: bytes, at: str, request: bytes | None) -> None:
        """Keep a page that waits for ``provider``'s wire key ``ref`` and, when given, owe the hub the request for
        it — in one transaction; a page kept already (handed over again) is kept once."""
        w = portal_waiting.c
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(w.event_id).where(w.event_id == event_id)).first() is None:
                    conn.execute(
                        insert(portal_waiting).values(
                            event_id=event_id, ref=ref, provider=provider, message=message, asked_at=at
                        )
                    )
                else:  # opened again and now waiting for another key
                    conn.execute(
                        update(portal_waiting).where(w.event_id == event_id).values(ref=ref, provider=provider)
                    )
                if request is not None:
                    conn.execute(insert(portal_outbox).values(message=request))
                    conn.execute(
                        update(portal_waiting).where(w.ref == ref, w.provider == provider).values(last_asked=at)
                    )
        except SQLAlchemyError as exc:
            raise storage_error("cannot keep a page waiting for a wire key", exc, "nothing was kept") from exc

    def overdue(self, before: str) -> list[tuple[str, str]]:
        """(ref, provider) of the keys pages wait for, last asked for at ``before`` or earlier (a row kept before
        ``last_asked`` existed counts from when its page was set aside)."""
        w = portal_waiting.c
        last = func.max(w.last_asked)
        query = (
            select(w.ref, w.provider)
            .group_by(w.ref, w.provider)
            .having(or_(last <= before, and_(last.is_(None), func.min(w.asked_at) <= before)))
            .order_by(w.ref, w.provider)
        )
        try:
            with self.engine.connect() as conn:
                return [(str(r), str(p)) for r, p in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the pages waiting for wire keys", exc) from exc

    def reask(self, ref: str, provider: str, at: str, request: bytes) -> None:
        """Owe the hub ``request`` for ``provider``'s key ``ref`` and record it asked ``at`` — in one
        transaction (a portal stopped between never asks twice, nor forgets that it asked)."""
        w = portal_waiting.c
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(portal_outbox).values(message=request))
                conn.execute(update(portal_waiting).where(w.ref == ref, w.provider == provider).values(last_asked=at))
        except SQLAlchemyError as exc:
            raise storage_error("cannot ask again for a wire key", exc, "nothing was asked") from exc

    def waiting(self, ref: str | None = None) -> list[tuple[str, str, str, bytes]]:
        """(event id, ref, provider, message) of the pages waiting (for ``ref``), oldest first."""
        w = portal_waiting.c
        query = select(w.event_id, w.ref, w.provider, w.message).order_by(w.asked_at, w.event_id)
        if ref is not None:
            query = query.where(w.ref == ref)
        try:
            with self.engine.connect() as conn:
                return [(str(e), str(r), str(p), bytes(m)) for e, r, p, m in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise storage_error("cannot read the pages waiting for wire keys", exc) from exc

    def unwait(self, event_ids: list[str], ref: str | None = None) -> None:
        """Drop the pages waiting (only those still waiting for ``ref``, when given)."""
        w = portal_waiting.c
        query = delete(portal_waiting).where(w.event_id.in_(event_ids))
        if ref is not None:
            query = query.where(w.ref == ref)
        try:
            with self.engine.begin() as conn:
                conn.execute(query)
        except SQLAlchemyError as exc:
            raise storage_error("cannot drop the pages waiting for wire keys", exc) from exc

    def close(self) -> None:
        self.engine.dispose()


def open_portal_store(url: str) -> PortalStore:
    """Open (and migrate, once: ``ledger.portal.migrations``) the portal's database at ``url``."""
    engine = create_engine(with_driver(url))
    try:
        upgrade(engine)
    except StorageError:
        engine.dispose()
        raise
    return PortalStore(engine)
