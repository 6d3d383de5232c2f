"""A Mynaportal proxy's registration or cancellation, from an agency node in hub mode to the hub (issue 19,
docs/linkage.md; the hub's side: ``ledger.hub.proxy_registrations``).

**Out**: once this agency's staff registered a proxy (``ProxyRegistration.Registered``) or cancelled one
(``Cancelled``) in its committed log, the bridge sends the hub a ``proxy_registration`` (``register`` or
``cancel``) naming the person and the proxy by this agency's own codes — never the portal's, which the hub
translates to and this agency never learns. Its id derived from the event: sent again after a crash, it is the
same message and the same event id, dropped by the hub as a replay.

A registration is sent only when this agency made it; a cancellation whenever it is in this log (a node in hub
mode holds only its own events: it cancelled here): of its own registration (``ProxyRegistration.Cancelled``), or
of one another agency made (``PeerProxyCancellation.Cancelled``: the registration is not in this log), which the hub
takes only while this agency holds a protection on the person (``ledger.hub.proxy_registrations``).

**In** (:func:`cancelled`): the hub's ``proxy_cancelled`` — another agency holding the person cancelled this
agency's registration there. Without it the registering agency's staff would see the perpetrator's registration
in force at their counter while the hub and the portal hold it cancelled. The node records it on the registration
(``ProxyRegistration.CancelledThroughHub``, naming no agency: the hub names none), so its views and its staff see
it cancelled. Only the hub's message does: a peer's is parked before it is opened
(``ledger.linkage.agency.open_from_hub``, ``wrong_route``), and no staff act records the event. The event is not
sent back (not in :data:`TOPICS`): the hub holds the cancellation already.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from ledger.app import FlagLedger
from ledger.domain.identity import ProxyRegistration
from ledger.errors import NotFoundError
from ledger.linkage.proxy_registrations import ProxyCancelled, ProxyRegistrationMessage
from ledger.runtime.linkage import code_of, subject_of

__all__ = ["CANCELLED", "PEER_CANCELLED", "REGISTERED", "TOPICS", "cancelled", "registration_message"]

# topics are part of the stored data and never move (docs/design.md, event catalogue)
REGISTERED = "ledger.domain.identity:ProxyRegistration.Registered"
CANCELLED = "ledger.domain.identity:ProxyRegistration.Cancelled"
PEER_CANCELLED = "ledger.domain.identity:PeerProxyCancellation.Cancelled"
TOPICS = (REGISTERED, CANCELLED, PEER_CANCELLED)
_IDS = uuid.UUID("3b7e1f60-92c4-4d1a-8f5e-6a0d2c9b4e71")  # the namespace of proxy registration ids


def registration_message(
    agency: str, topic: str, registration: Any, stream: uuid.UUID, version: int
) -> Iterator[tuple[tuple[str, ...], ProxyRegistrationMessage]]:
    """The ``proxy_registration`` for ``registration`` (the aggregate as of the event: a ``ProxyRegistration`` or a
    ``PeerProxyCancellation``); nothing for a peer's registration (it is the peer's to send)."""
    if topic == REGISTERED and registration.agency != agency:
        return
    if topic == PEER_CANCELLED and registration.agency != agency:
        return  # (a node in hub mode hosts one agency: only its own are in its log)
    action = "register" if topic == REGISTERED else "cancel"
    registration_id = uuid.uuid5(_IDS, f"{stream}:{version}").hex
    yield (
        (registration.subject, registration.proxy),
        ProxyRegistrationMessage(registration_id, code_of(registration.subject), code_of(registration.proxy), action),
    )


def cancelled(app: FlagLedger, agency: str, message: ProxyCancelled) -> bool:
    """The hub's word that another agency cancelled ``agency``'s registration of the proxy: recorded on it; whether
    it was recorded now (False: already cancelled here — a replay after a crash, or this agency cancelled it too).
    Saved to the log on its own, before the applying transaction records the message applied: if that fails, the
    message comes again and finds the registration cancelled (nothing recorded twice)."""
    subject, proxy = subject_of(message.code), subject_of(message.proxy_code)
    registration = app.find(ProxyRegistration, app.ids.proxy(agency, subject, proxy))
    if registration is None or (registration.subject, registration.proxy) != (subject, proxy):
        raise NotFoundError(f"a {message.kind} about no proxy registration of {agency}")
    now = registration.cancelled_through_hub()
    if now:
        app.save_as(agency, registration)
    return now
