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
from datetime import datetime, timedelta

from ledger import clock
from ledger.errors import BrokerUnavailable, Code, FlagLedgerError, IntegrityError, PermissionDenied, StorageError
from ledger.faultpoint import faultpoint
from ledger.linkage.codes import Registration, portal_code
from ledger.linkage.delivery_keys import WireKeyRequest
from ledger.linkage.digests import expand, seal_digest
from ledger.linkage.directory import Directory
from ledger.linkage.erasure_messages import PageErasure
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import Message, decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.schedule import DigestSchedule
from ledger.linkage.sealed_pages import SealedPortalPage, open_sealed_page
from ledger.linkage.sealing import Opened, SenderKeys, seal, unseal
from ledger.linkage.transport import Transport
from ledger.linkage.wire_keys import STATIC, SubjectKey, WireErasure, WireKeyMissing, open_key
from ledger.portal.rotation import DeliveryRotation, newest_notice, utc_text
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
    waiting: int = 0  # pages set aside until a provider sends a wire key again
    announced: int = 0  # delivery keys announced (handed to the outbox for the hub)


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
        rotation: DeliveryRotation | None = None,
    ) -> None:
        """``wires``: the portal's key file of the providers' wire keys (``ledger.portal.wire_keys``); without
        it, a record under a wire key does not open and a provider's key message is refused. ``rotation``: the
        delivery keys' schedule (``ledger.portal.rotation``): rotated, announced and retired at each step."""
        if transport.party != PORTAL or keys.name != PORTAL:
            raise PermissionDenied("the portal's loop runs with the portal's keys and inbox", code=Code.CONFIGURATION)
        self.store = store
        self.transport = transport
        self.keys = keys
        self.directory = directory
        self.now = now
        self.digests = digests
        self.wires = wires
        self.rotation = rotation
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

    def _to_hub(self, message: Message) -> bytes:
        return seal(
            self.keys.signer, self.directory.sealing_key(HUB), HUB, uuid.uuid4().hex, message.kind, message.encode()
        )

    def announce(self) -> int:
        """Rotate and retire on the schedule; owe the hub the newest key's signed notice if it was not announced
        (then ask again for the wire keys pages still wait for: sealed to the new key, they open); ask again for
        those last asked for ``resend_after_seconds`` ago. Returns 1 if a notice was owed."""
        if self.rotation is None:
            return 0
        notice = self.rotation.due()
        if notice is not None:
            self.store.owe(self._to_hub(notice))
            assert self.wires is not None
            self.wires.announced(notice.delivery.split(":")[0])
            at = utc_text(self.now())
            asked: set[tuple[str, str]] = set()
            for _, ref, provider, _ in self.store.waiting():
                if (ref, provider) not in asked:
                    asked.add((ref, provider))
                    request = self._to_hub(WireKeyRequest(provider, ref, notice.encode().decode()))
                    self.store.reask(ref, provider, at, request)
        self._ask_again()
        return 0 if notice is None else 1

    def _ask_again(self) -> None:
        """Ask again for the wire keys pages still wait for, last asked for ``resend_after_seconds`` ago: a
        request or its answer lost on the way (the provider down) would otherwise wait for the next delivery key.
        The request is the first one again (the ref, the newest notice); never for a key erased here (a wire
        erasure drops its pages; a provider that erased the key answers nothing, ``gone``)."""
        assert self.rotation is not None
        if self.wires is None:
            return
        now = self.now()
        before = utc_text(now - timedelta(seconds=self.rotation.settings.resend_after_seconds))
        for ref, provider in self.store.overdue(before):
            raw = bytes.fromhex(ref)
            if not self.wires.erased(raw):
                self.store.reask(ref, provider, utc_text(now), self._request(raw, provider))

    def _request(self, ref: bytes, provider: str) -> bytes:
        """The hub's sealed ``wire_key_request`` for ``provider``'s key ``ref``, with the newest notice."""
        assert self.wires is not None
        notice = newest_notice(self.wires, self.keys.signer)
        text = "" if notice is None else notice.encode().decode()
        return self._to_hub(WireKeyRequest(provider, ref.hex(), text))

    def step(self, timeout_ms: int = 200, max_records: int = 100) -> PortalStep:
        announced = self.announce()
        done = PortalStep(sent=self._send_owed(), announced=announced)
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
                self._wire(opened, sender_keys, done)  # a provider's own, sealed end to end, relayed unopened
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
            try:
                page = open_sealed_page(self.keys, SealedPortalPage.decode(opened.payload), sender_keys, self.wires)
            except WireKeyMissing as exc:
                self._wait(opened.event_id, exc, value, done)
                raise
            if self.store.keep(opened.event_id, page):
                done.kept += 1
                faultpoint("portal.kept")  # kept, the inbox not committed past it
        except StorageError:
            raise  # not the message's fault: commit nothing, read it again
        except FlagLedgerError as exc:
            self.refused.append(exc.code)
            done.refused += 1

    def _wait(self, event_id: str, missing: WireKeyMissing, value: bytes, done: PortalStep) -> None:
        """Set the page aside until ``missing``'s provider sends the key again, and ask for it (once per ref
        while pages wait; again at each new delivery key and every ``resend_after_seconds``). A page under a key
        the portal holds by now (a key that arrived since) is not set aside: the caller refuses it as before."""
        if self.wires is None or self.wires.erased(missing.ref):
            return
        ref = missing.ref.hex()
        asked = any(p == missing.sender for _, _, p, _ in self.store.waiting(ref))
        request = None if asked else self._request(missing.ref, missing.sender)
        self.store.wait(event_id, ref, missing.sender, value, utc_text(self.now()), request)
        done.waiting += 1

    def _wire(self, opened: Opened, sender_keys: SenderKeys, done: PortalStep) -> None:
        """Keep a provider's wire key (opened with the delivery key it names) and open the pages that waited for
        it, or destroy those it erased — only keys that provider delivered (``PortalWireKeys.destroy``)."""
        if self.wires is None:
            raise PermissionDenied("this portal keeps no wire keys", code=Code.CONFIGURATION)
        if opened.kind == WireErasure.kind:
            erasure = decode(WireErasure, opened.payload)
            self.wires.destroy(opened.sender, erasure.raw_refs(), erasure.erasure_id, self.now().isoformat())
            refs = {r.hex() for r in erasure.raw_refs()}
            # a page waiting for an erased key never opens it: the hub's page after the erasure replaces it
            gone = [e for e, r, p, _ in self.store.waiting() if r in refs and p == opened.sender]
            if gone:
                self.store.unwait(gone)
            return
        m = decode(SubjectKey, opened.payload)
        private = self.keys.sealing if m.delivery == STATIC else self.wires.delivery(m.delivery)
        if private is None:  # its delivery key retired before it was taken: asked for again, under the newest
            if not self.wires.erased(m.raw_ref()):  # an erased key is never asked for
                self.store.owe(self._request(m.raw_ref(), opened.sender))
            raise IntegrityError("a wire key sealed to a delivery key retired here", code=Code.SEALED_MESSAGE)
        if self.wires.keep(m.raw_ref(), opened.sender, open_key(private, m.raw_ref(), m.key)):
            self._reopen(m.raw_ref().hex(), opened.sender, sender_keys, done)

    def _reopen(self, ref: str, provider: str, sender_keys: SenderKeys, done: PortalStep) -> None:
        """The pages that waited for ``provider``'s key ``ref``, opened again (one may wait for another key)."""
        rows = [(e, m) for e, _, p, m in self.store.waiting(ref) if p == provider]
        for _, message in rows:
            self._take(message, sender_keys, done)  # kept; or set aside again, for another key
        if rows:  # dropped after: a portal stopped in between opens them again (kept ones as replays)
            self.store.unwait([e for e, _ in rows], ref)

    def run(self, stop: threading.Event, retry: float = 1.0) -> None:
        """Step until ``stop`` is set; a database or broker failure is logged and retried."""
        while not stop.is_set():
            try:
                self.step()
            except (StorageError, BrokerUnavailable) as exc:
                log.warning("the portal's loop will retry in %.1f s: %s", retry, exc)
                stop.wait(retry)
