"""The hub's part in the portal's delivery keys (issue 22, ``ledger.linkage.delivery_keys``): it passes the
portal's signed announcement of a new delivery key on to every agency, and the portal's request for a wire key to
the provider that owes it.

The hub can read both (neither carries anything about a person: a public key, a random ref); it checks the
announcement's signature against the portal's published key before passing it on — a refused one is parked
here — but the agencies check it again themselves: a hub that forges or replays one is caught at each agency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.errors import Code, InputError, PermissionDenied
from ledger.linkage.delivery_keys import DeliveryKeyNotice, WireKeyRequest
from ledger.linkage.directory import Directory
from ledger.linkage.messages import Message, decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import Opened, SenderKeys

__all__ = ["FROM_PORTAL", "from_portal"]

FROM_PORTAL = (DeliveryKeyNotice.kind, WireKeyRequest.kind)
Seal = Callable[[str, Message], tuple[str, bytes]]


def from_portal(
    opened: Opened, directory: Directory, agencies: Sequence[str], keys: SenderKeys, seal: Seal
) -> list[tuple[str, bytes]]:
    """The messages the hub owes for one of the ``FROM_PORTAL`` kinds; a ledger error (parked) if refused."""
    if opened.sender != PORTAL:
        raise PermissionDenied(f"only the portal sends {opened.kind!r}", code=Code.WRONG_AGENCY)
    if opened.kind == DeliveryKeyNotice.kind:
        notice = decode(DeliveryKeyNotice, opened.payload)
        notice.verify(keys)
        return [seal(agency, notice) for agency in agencies]
    if opened.kind == WireKeyRequest.kind:
        request = decode(WireKeyRequest, opened.payload)
        carried = request.delivery_notice()
        if carried is not None:
            carried.verify(keys)
        if request.provider in (HUB, PORTAL):
            raise InputError("a wire key is asked of a provider", code=Code.MALFORMED)
        directory.sealing_key(request.provider)  # an agency with a published key, or not_found (parked)
        return [seal(request.provider, request)]
    raise InputError(f"the hub takes no message of kind {opened.kind!r} from the portal", code=Code.MALFORMED)
