"""Who may read a person's page at the portal, from what the hub fed for the card's code.

* **A replaced number's card is refused** (``card_revoked``): after a number change the hub marks the old
  number's page ``superseded``; whoever holds the old card — a perpetrator who kept it, or who knew the old
  number — reads nothing more, not even the records made before the change.
* **A proxy reads only with their own card, and only if listed** (``proxy_refused``): the page's ``proxies``
  (the portal's codes, ``ledger.hub.proxy_registrations``) are the proxies registered now and, while a
  protection applies, also approved by every holder (``ledger.hub.proxy_approvals``). A perpetrator is often
  the one registered as the person's proxy: posing as proxy with the victim's card alone, or with their own
  card unregistered (or cancelled, or not approved while protected), they read nothing.
* **While a protection applies, a guardian's view is refused** (``proxy_refused``): a guardian is never
  approved this way.
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
    if viewer == "proxy" and (proxy_code is None or proxy_code not in page.proxies):
        # no reason beyond this: the proxy learns neither whether a registration exists nor who holds a protection
        raise PermissionDenied(
            "a proxy reads a person's page with their own card, as a registered (and, while a protection applies, "
            "approved) proxy",
            code=Code.PROXY_REFUSED,
        )
    if viewer == "guardian" and page.protected:
        # no reason beyond this: the guardian learns that a protection applies, never who holds it
        raise PermissionDenied(
            f"a {viewer}'s view of this person is refused while a protection applies", code=Code.PROXY_REFUSED
        )
    return PortalView(page.records, HIDDEN_NOTE if page.hidden else None)
