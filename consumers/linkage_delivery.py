"""An agency node and the portal's delivery keys (issue 22, ``ledger.linkage.delivery_keys``; docs/erasure.md).

**In** (:meth:`DeliveryLink.take`, a gate before the flag map's): the portal's ``delivery_key`` announcement, as
the hub passed it on, is checked against the portal's signing key of ``linkage.portal`` — not the hub's: the hub
only carries it — and taken only if its serial is above every serial this node took or was configured with. A
node whose config.json entry names no serial (exported before serials, or before delivery keys) takes none: it
could not tell an old notice replayed first from the newest, so each is parked (``delivery_unpinned``, saying to
re-import the entry) and the node seals as its entry says until the entry is re-imported with its serial. A
notice taken is kept (``linkage_delivery_keys``, with the portal's signature) and the bridge's directory seals
every wire key from then on to it: no one replaces config.json's entry by hand. A notice not signed by the
portal, or of an older serial (replayed by the broker operator, a peer or a hub), or of the same serial with
another key, is refused and parked, and the node keeps sealing to the key it had; the notice of the key held is
no news (nothing changes, nothing parked).

A ``wire_key_request`` (the portal could not open a record: its key message was parked, or sealed to a delivery
key retired before it was taken) first takes the newest notice it carries (the same checks; an equal one is no
news; at a node with no serial it is not taken, and the key is sent sealed as the entry says), then owes the
portal the key again (``linkage_key_resends``). The bridge's push sends it (``resend``):
sealed to the newest delivery key, relayed end to end — only while this node holds the key. An erased person's
wire keys were destroyed with their data keys: nothing is sent (outcome ``gone``), nothing can be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Engine, insert, select, update

from consumers.taken_first import Handler, taken_first
from ledger.errors import Code, IntegrityError
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.delivery_keys import DeliveryKeyNotice, WireKeyRequest
from ledger.linkage.directory import Directory
from ledger.linkage.messages import Message, decode
from ledger.linkage.names import PORTAL
from ledger.linkage.sealing import public_hex
from ledger.linkage.wire_keys import delivery_of
from ledger.runtime.tables import linkage_delivery_keys, linkage_key_resends

__all__ = ["DeliveryLink", "delivery_keys"]

log = logging.getLogger("flagledger.linkage")
Act = tuple[tuple[str, ...], Message]
OWED, SENT, GONE = "", "sent", "gone"


def delivery_keys(engine: Engine) -> list[dict[str, Any]]:
    """The portal's delivery keys this node took, newest first, each with the notice as signed."""
    c = linkage_delivery_keys.c
    with engine.connect() as conn:
        rows = conn.execute(select(linkage_delivery_keys).order_by(c.serial.desc())).all()
    return [
        {"serial": int(r.serial), "delivery": r.delivery, "made_at": r.made_at, "taken_at": r.taken_at,
         "notice": bytes(r.notice).decode()}
        for r in rows
    ]  # fmt: skip


class DeliveryLink:
    """One agency node's side of the portal's delivery keys, over its database and the bridge's directory."""

    def __init__(
        self,
        engine: Engine,
        directory: Directory,
        end: AgencyEnd,
        clock: Callable[[], datetime],
        erased: Callable[[str], bool] = lambda ref: False,
    ) -> None:
        """``erased``: whether the node's log or key file records ``ref`` destroyed by an erasure — checked
        besides the key being gone, so a key file restored from before an erasure (until ``erase reapply``)
        re-sends nothing either."""
        self.engine, self.directory, self.end, self.clock, self.erased = engine, directory, end, clock, erased
        self.refresh()

    # -- the newest key ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Seal to the newest key taken, when newer than config.json's entry."""
        c = linkage_delivery_keys.c
        with self.engine.connect() as conn:
            row = conn.execute(select(c.serial, c.notice).order_by(c.serial.desc()).limit(1)).first()
        if row is not None and int(row.serial) > self.directory.delivery_serial.get(PORTAL, 0):
            notice = decode(DeliveryKeyNotice, bytes(row.notice))
            self._use(notice)

    def _use(self, notice: DeliveryKeyNotice) -> None:
        self.directory.delivery[PORTAL] = delivery_of(notice.delivery)
        self.directory.delivery_serial[PORTAL] = notice.serial

    def take_notice(self, notice: DeliveryKeyNotice) -> bool:
        """Check and keep the portal's notice; True if it is the new key sealed to from now on, False if it is
        the key held (no news: a key request carries the newest, and a portal stopped between owing a notice and
        recording it announced owes it again)."""
        notice.verify(self.directory.sender_keys(self.clock()))  # the portal's key, not the hub's
        held = self.directory.delivery_serial.get(PORTAL, 0)
        if held == 0:
            # no serial to compare with (an entry exported before serials, or before delivery keys): the first
            # notice taken would be whichever a broker or hub chose to hand over first — an old one, its key
            # retired or leaked, as well as the newest. None is taken; the node seals as its entry says.
            raise IntegrityError(
                f"the portal's delivery key {notice.serial} was not taken: this node's linkage.portal entry names "
                "no delivery serial, so an old notice replayed could not be told from a new one. Re-import the "
                "portal's current entry (`flagledger linkage directory export` on the portal; its delivery_hex "
                "ends in :SERIAL) into config.json's linkage.portal and restart the node; until then it seals as "
                "the entry says",
                code=Code.DELIVERY_UNPINNED,
            )
        if notice.serial < held:
            raise IntegrityError(
                f"the portal's delivery key {notice.serial} is not newer than the one held ({held}): replayed",
                code=Code.DELIVERY_REPLAYED,
            )
        if notice.serial == held:
            current = self.directory.delivery_key(PORTAL)
            if current is None or notice.delivery.split(":")[:2] != [current[0], public_hex(current[1])]:
                raise IntegrityError(
                    "two delivery keys signed under one serial: the portal never signs two",
                    code=Code.DELIVERY_REPLAYED,
                )
            return False
        with self.engine.begin() as conn:
            c = linkage_delivery_keys.c
            if conn.execute(select(c.serial).where(c.serial == notice.serial)).first() is None:
                conn.execute(
                    insert(linkage_delivery_keys).values(
                        serial=notice.serial,
                        delivery=notice.delivery,
                        made_at=notice.made_at,
                        notice=notice.encode(),
                        taken_at=self.clock().isoformat(),
                    )
                )
        self._use(notice)
        log.info("the portal's delivery key %d is sealed to from now on", notice.serial)
        return True

    # -- the gate --------------------------------------------------------------------------------------
    def gate(self, inner: Handler) -> Handler:
        """``inner`` with the portal's delivery messages taken here first."""

        return taken_first(self.take, inner)

    def take(self, message: Message) -> bool:
        """True if ``message`` was the portal's delivery message (recorded here); a ledger error parks one that
        does not check."""
        if isinstance(message, DeliveryKeyNotice):
            self.take_notice(message)
            return True
        if isinstance(message, WireKeyRequest):
            notice = message.delivery_notice()
            if notice is not None:
                try:
                    self.take_notice(notice)
                except IntegrityError as exc:
                    if exc.code != Code.DELIVERY_UNPINNED:
                        raise
                    # the key is still sent, sealed as before: a key message merely lost then opens at the
                    # portal; the portal's own notices are parked, and they say what the operator does
                    log.warning("%s", exc)
            self._owe(message.ref)
            return True
        return False

    def _owe(self, ref: str) -> None:
        at = self.clock().isoformat()
        c = linkage_key_resends.c
        with self.engine.begin() as conn:
            done = conn.execute(update(linkage_key_resends).where(c.ref == ref).values(asked_at=at, outcome=OWED))
            if done.rowcount == 0:
                conn.execute(insert(linkage_key_resends).values(ref=ref, asked_at=at, outcome=OWED))

    # -- out -------------------------------------------------------------------------------------------
    def resends(self, mark: Callable[[Callable[[], None]], None]) -> Iterator[Act]:
        """The keys owed again, each relayed to the portal while held (recorded ``sent`` once the broker took
        it: ``mark``); a key no longer held is recorded ``gone`` and nothing is sent."""
        c = linkage_key_resends.c
        with self.engine.connect() as conn:
            owed = list(conn.execute(select(c.ref).where(c.outcome == OWED).order_by(c.asked_at, c.ref)).scalars())
        for ref in owed:
            relay = None if self.erased(ref) else self.end.resend(bytes.fromhex(ref))
            if relay is None:
                self._outcome(ref, GONE)
                continue
            yield (), relay
            mark(partial(self._outcome, ref, SENT))

    def _outcome(self, ref: str, outcome: str) -> None:
        c = linkage_key_resends.c
        with self.engine.begin() as conn:
            conn.execute(update(linkage_key_resends).where(c.ref == ref).values(outcome=outcome))
