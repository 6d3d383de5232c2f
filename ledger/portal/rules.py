"""Who may read a person's page at the portal, from what the hub fed for the card's code.

* **A replaced number's card is refused** (``card_revoked``): after a number change the hub marks the old
  number's page ``superseded``; whoever holds the old card — a perpetrator who kept it, or who knew the old
  number — reads nothing more, not even the records made before the change.
* **While a protection applies, a proxy's or a guardian's view is refused** (``proxy_refused``): a perpetrator
  is often the one registered as the person's proxy or guardian. The one exception is a proxy whose own card
  the holder approved (the page's ``proxies``, the portal's codes: ``ledger.hub.proxy_approvals``) — that
  proxy only, signed in with their own card; a guardian is never approved this way.
* Otherwise the page: the records the hub did not hide and, if it hid any, the fixed note — no holder, no count.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import Code, InputError, NotFoundError, PermissionDenied
from ledger.linkage.hiding import HIDDEN_NOTE
from ledger.linkage.portal_messages import PageRecord, PortalPageMessage

__all__ = ["VIEWERS", "PortalView", "view"]

VIEWERS = ("self", "proxy", "guardian")


@dataclass(frozen=True)
class PortalView:
    records: tuple[PageRecord, ...]
    note: str | None


def view(page: PortalPageMessage | None, viewer: str, proxy_code: str | None = None) -> PortalView:
    """What ``viewer`` (the person, their proxy, their guardian) may see of ``page``; a ledger error otherwise.
    ``proxy_code``: the portal's code for the proxy's own card, when the viewer is a proxy who signed in."""
    if viewer not in VIEWERS:
        raise InputError(f"a viewer is one of {', '.join(VIEWERS)}", field="viewer")
    if page is None:
        raise NotFoundError("the hub has not fed this card's page yet: try again shortly")
    if page.superseded:
        raise PermissionDenied(
            "this card's number was replaced: sign in with the card of the new number", code=Code.CARD_REVOKED
        )
    approved = viewer == "proxy" and proxy_code is not None and proxy_code in page.proxies
    if viewer != "self" and page.protected and not approved:
        # no reason beyond this: the proxy learns that a protection applies, never who holds it
        raise PermissionDenied(
            f"a {viewer}'s view of this person is refused while a protection applies", code=Code.PROXY_REFUSED
        )
    return PortalView(page.records, HIDDEN_NOTE if page.hidden else None)
