"""The portal's loop and its card sign-in.

**Sign-in** (:func:`sign_in`) maps a card's number to the portal's own code (``ledger.linkage.codes.portal_code``
under the portal's secret); the first time, it owes the hub a registration — sealed to the hub, the one message
that carries the number, kept sealed in the portal's outbox until the loop sends it — so the hub binds the code to
the person and starts feeding the page. Neither the number nor anything that opens to it stays at the portal.

**The loop** (:meth:`PortalService.step`): send what is owed, poll the portal's inbox, open each message (the
hub's only, kind ``sealed_page``, or ``page_erasure``: recorded, ``ledger.linkage.erasure_messages``; a
provider's ``subject_key`` or ``wire_erasure`` relayed by the hub: ``ledger.linkage.wire_keys``), drop one
already applied by event id, open every record's contents (sealed by
its provider to the portal: ``ledger.linkage.sealed_pages``; one that is not refuses the page), keep the newest
page per code; then
commit the inbox — after the database commit. A message that does not open, or is not the hub's, is counted in
:attr:`PortalService.refused` and committed past (it can never open later).

**On a digest schedule** (``digests``): the hub's digests are opened into the pages they carry, and the portal
sends the hub one digest per tick with the registrations owed (oldest first, what fits; the rest stay in the
outbox for the next tick), or with none — a card sign-in does not show on the hub's topic.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from ledger import clock
from ledger.errors import BrokerUnavailable, Code, FlagLedgerError, IntegrityError, PermissionDenied, StorageError
from ledger.faultpoint import faultpoint
from ledger.linkage.codes import Registration, portal_code
from ledger.linkage.digests import expand, seal_digest
from ledger.linkage.directory import Directory
from ledger.linkage.erasure_messages import PageErasure
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.schedule import DigestSchedule
from ledger.linkage.sealed_pages import SealedPortalPage, open_sealed_page
from ledger.linkage.sealing import Opened, SenderKeys, seal, unseal
from ledger.linkage.transport import Transport
from ledger.linkage.wire_keys import STATIC, SubjectKey, WireErasure, open_key
from ledger.portal.rules import PortalView, view
from ledger.portal.store import PortalStore
from ledger.portal.wire_keys import PortalWireKeys

__all__ = ["PortalService", "PortalStep", "read_page", "sign_in"]

log = logging.getLogger("flagledger.portal")


def sign_in(store: PortalStore, keys: PartyKeys, directory: Directory, number: str) -> str:
    """The portal's code for the card's ``number``; the first time, its registration is owed to the hub."""
    if keys.name != PORTAL:
        raise PermissionDenied("only the portal signs cards in", code=Code.WRONG_AGENCY)
    code = portal_code(keys.secret, number)
    if not store.has_card(code):
        payload = Registration(PORTAL, code, number).encode()
        sealed = seal(keys.signer, directory.sealing_key(HUB), HUB, uuid.uuid4().hex, "registration", payload)
        store.add_card(code, sealed)
    return code


def read_page(
    store: PortalStore,
    keys: PartyKeys,
    directory: Directory,
    number: str,
    viewer: str,
    proxy_number: str | None = None,
) -> PortalView:
    """Sign the card in and return what ``viewer`` may see of its page (``ledger.portal.rules.view``); a proxy
    who signs in with their own card (``proxy_number``) is known by its code, for a holder's approval."""
    code = sign_in(store, keys, directory, number)
    proxy = None if proxy_number is None else sign_in(store, keys, directory, proxy_number)
    return view(store.page(code), viewer, proxy)


@dataclass
class PortalStep:
    sent: int = 0
    kept: int = 0
    replays: int = 0
    refused: int = 0


class PortalService:
    def __init__(
        self,
        store: PortalStore,
        transport: Transport,
        keys: PartyKeys,
        directory: Directory,
        now: Callable[[], datetime] = clock.now,
        digests: DigestSchedule | None = None,
        wires: PortalWireKeys | None = None,
    ) -> None:
        """``wires``: the portal's key file of the providers' wire keys (``ledger.portal.wire_keys``); without
        it, a record under a wire key does not open and a provider's key message is refused."""
        if transport.party != PORTAL or keys.name != PORTAL:
            raise PermissionDenied("the portal's loop runs with the portal's keys and inbox", code=Code.CONFIGURATION)
        self.store = store
        self.transport = transport
        self.keys = keys
        self.directory = directory
        self.now = now
        self.digests = digests
        self.wires = wires
        self.refused: list[str] = []

    def _send_owed(self) -> int:
        if self.digests is not None:
            return self._tick() if self.digests.due() else 0
        rows = self.store.owed()
        for _, message in rows:
            self.transport.send(HUB, message)
        if rows:
            self.transport.flush()
            self.store.paid([i for i, _ in rows])
        return len(rows)

    def _tick(self) -> int:
        assert self.digests is not None
        self.digests.ticked()
        rows = self.store.owed()
        hub = self.directory.sealing_key(HUB)
        digest, taken = seal_digest(self.keys.signer, hub, HUB, [m for _, m in rows], self.digests.size)
        self.transport.send(HUB, digest)
        self.transport.flush()
        if taken:
            self.store.paid([i for i, _ in rows[:taken]])
        return taken

    def step(self, timeout_ms: int = 200, max_records: int = 100) -> PortalStep:
        done = PortalStep(sent=self._send_owed())
        sender_keys = self.directory.sender_keys(self.now())
        try:
            for delivery in self.transport.poll(timeout_ms, max_records):
                try:  # a digest's pages, or the message alone (a hub sending as it decides)
                    carried = expand(self.keys, delivery.value, sender_keys)
                except StorageError:
                    raise
                except FlagLedgerError as exc:
                    self.refused.append(exc.code)
                    done.refused += 1
                    continue
                for value in carried:
                    self._take(value, sender_keys, done)
        except BaseException:
            # the next poll hands this batch over again (kept pages are dropped as seen): never committed past
            with suppress(BrokerUnavailable):
                self.transport.rewind()
            raise
        self.transport.commit()
        return done

    def _take(self, value: bytes, sender_keys: SenderKeys, done: PortalStep) -> None:
        try:
            opened = unseal(self.keys.sealing, PORTAL, value, sender_keys)
            if opened.sender not in (HUB, PORTAL) and opened.kind in (SubjectKey.kind, WireErasure.kind):
                self._wire(opened)  # a provider's own, sealed end to end, relayed by the hub unopened
                done.kept += 1
                return
            if opened.sender != HUB or opened.kind not in (SealedPortalPage.kind, PageErasure.kind):
                raise PermissionDenied(
                    f"the portal reads only the hub's pages, not {opened.kind!r} from {opened.sender}",
                    code=Code.WRONG_ROUTE,
                )
            if self.store.was_seen(opened.event_id):
                done.replays += 1
                return
            if opened.kind == PageErasure.kind:  # recorded; the page that follows (if it changed) replaces the old
                self.store.erased(opened.event_id, decode(PageErasure, opened.payload))
                done.kept += 1
                return
            page = open_sealed_page(self.keys, SealedPortalPage.decode(opened.payload), sender_keys, self.wires)
            if self.store.keep(opened.event_id, page):
                done.kept += 1
                faultpoint("portal.kept")  # kept, the inbox not committed past it
        except StorageError:
            raise  # not the message's fault: commit nothing, read it again
        except FlagLedgerError as exc:
            self.refused.append(exc.code)
            done.refused += 1

    def _wire(self, opened: Opened) -> None:
        """Keep a provider's wire key (opened with the delivery key it names), or destroy those it erased —
        only keys that provider delivered (``PortalWireKeys.destroy``)."""
        if self.wires is None:
            raise PermissionDenied("this portal keeps no wire keys", code=Code.CONFIGURATION)
        if opened.kind == WireErasure.kind:
            erasure = decode(WireErasure, opened.payload)
            self.wires.destroy(opened.sender, erasure.raw_refs(), erasure.erasure_id, self.now().isoformat())
            return
        m = decode(SubjectKey, opened.payload)
        private = self.keys.sealing if m.delivery == STATIC else self.wires.delivery(m.delivery)
        if private is None:
            raise IntegrityError("a wire key sealed to a delivery key retired here", code=Code.SEALED_MESSAGE)
        self.wires.keep(m.raw_ref(), opened.sender, open_key(private, m.raw_ref(), m.key))

    def run(self, stop: threading.Event, retry: float = 1.0) -> None:
        """Step until ``stop`` is set; a database or broker failure is logged and retried."""
        while not stop.is_set():
            try:
                self.step()
            except (StorageError, BrokerUnavailable) as exc:
                log.warning("the portal's loop will retry in %.1f s: %s", retry, exc)
                stop.wait(retry)
