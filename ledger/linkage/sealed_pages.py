"""What the hub feeds the portal: a person's page whose records stay sealed by their providers to the portal.

The hub decides which records a page shows (non-disclosure hides by its sequence, ``ledger.hub.portal_view``)
but never reads what they say: each record's contents arrive sealed by the provider to the portal
(``ledger.linkage.record_contents``) and are passed on as they came. The page says, besides, whether something
was left out, whether a protection applies now and whether the card's number was replaced, as
``PortalPageMessage`` does. ``version`` is the hub's sequence when it computed the page.

The portal opens the page with :func:`open_sealed_page`: every record's contents must open with the portal's
key, be signed by the provider the hub names and be sealed for that record id — one that is not refuses the
whole page (``sealed_message``), so a hub cannot show one record's contents as another's or forge any. Only
then is it a ``PortalPageMessage`` with records in the clear, kept by the portal alone.

Wire (JSON, decoded strictly)::

    {"code": "m…", "version": n, "records": [[record_id, provider, base64 contents], …],
     "hidden": bool, "protected": bool, "superseded": bool}
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.domain import bounds
from ledger.errors import Code, InputError, IntegrityError
from ledger.linkage.buckets import BUCKETS
from ledger.linkage.codes import check_code
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import check_event_id, check_party
from ledger.linkage.portal_messages import PageRecord, PortalPageMessage, check_proxies, proxies_of
from ledger.linkage.record_contents import open_contents
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.wire_keys import WireLookup

__all__ = ["PAGE_BUDGET", "SealedPageEntry", "SealedPortalPage", "open_sealed_page"]

# a page's payload: the newest records that fit the second-largest bucket, with room for the signature and kind,
# so that the sealed page still rides inside the largest digest (a hub on a digest schedule: about 40 records)
PAGE_BUDGET = BUCKETS[-2] - 1024
_CONTENTS = bounds.Bound(8192, 1)  # as a sealed_record carries them (ledger.linkage.record_contents)
_WANT = {"code", "version", "records", "hidden", "protected", "superseded", "proxies"}


@dataclass(frozen=True)
class SealedPageEntry:
    record_id: str
    provider: str
    contents: str  # base64 of the contents the provider sealed to the portal, as the hub filed them

    def check(self) -> None:
        check_event_id(self.record_id)
        check_party(self.provider, "provider")
        bounds.check_text("contents", self.contents, _CONTENTS)

    def sealed(self) -> bytes:
        try:
            return base64.b64decode(self.contents, validate=True)
        except (binascii.Error, ValueError):
            raise InputError("a page record's contents are not base64", code=Code.MALFORMED) from None


@dataclass(frozen=True)
class SealedPortalPage:
    kind: ClassVar[str] = "sealed_page"
    code: str
    version: int
    records: tuple[SealedPageEntry, ...]
    hidden: bool
    protected: bool
    superseded: bool
    proxies: tuple[str, ...] = ()  # the portal's codes of the proxies who may read (ledger.hub.proxy_registrations)

    def check(self) -> None:
        check_code(self.code, "portal code")
        if not self.code.startswith("m"):
            raise InputError("a portal page names the person by the portal's code", code=Code.MALFORMED, field="code")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 0:
            raise InputError("a portal page's version is the hub's sequence", code=Code.MALFORMED, field="version")
        for record in self.records:
            record.check()
        check_proxies(self.proxies)

    def encode(self) -> bytes:
        self.check()
        body = {
            "code": self.code,
            "version": self.version,
            "records": [[r.record_id, r.provider, r.contents] for r in self.records],
            "hidden": self.hidden,
            "protected": self.protected,
            "superseded": self.superseded,
            "proxies": list(self.proxies),
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        if len(raw) > PAGE_BUDGET:
            raise InputError(f"a portal page holds at most {PAGE_BUDGET} bytes", code=Code.OVERSIZE)
        return raw

    @classmethod
    def newest(
        cls,
        code: str,
        version: int,
        records: list[SealedPageEntry],
        hidden: bool,
        protected: bool,
        superseded: bool,
        proxies: tuple[str, ...] = (),
    ) -> SealedPortalPage:
        """The page with the newest of ``records`` (in sequence order) that fit :data:`PAGE_BUDGET`."""
        # an entry is its three strings, their quotes, commas and brackets: 10 bytes of JSON around them
        room, kept = PAGE_BUDGET - 200 - 40 * len(proxies), 0
        for entry in reversed(records):
            room -= len(entry.record_id) + len(entry.provider) + len(entry.contents) + 10
            if room < 0:
                break
            kept += 1
        return cls(code, version, tuple(records[len(records) - kept :]), hidden, protected, superseded, proxies)

    @classmethod
    def decode(cls, payload: bytes) -> SealedPortalPage:
        """The page in ``payload``: exactly its fields, each of its type, checked; ``malformed`` otherwise."""
        try:
            data: Any = json.loads(payload)
        except (ValueError, RecursionError):
            raise InputError("a portal page is not JSON", code=Code.MALFORMED) from None
        if isinstance(data, dict):  # a hub not yet upgraded sends no approvals: none, the safe reading
            data.setdefault("proxies", [])
        if not isinstance(data, dict) or set(data) != _WANT:
            raise InputError(f"a portal page must hold exactly {sorted(_WANT)}", code=Code.MALFORMED)
        flags = [data[k] for k in ("hidden", "protected", "superseded")]
        if not all(isinstance(f, bool) for f in flags) or not isinstance(data["records"], list):
            raise InputError("a portal page's flags are booleans and its records a list", code=Code.MALFORMED)
        records = []
        for row in data["records"]:
            if not isinstance(row, list) or len(row) != 3 or not all(isinstance(v, str) for v in row):
                raise InputError("a portal page's record is three strings", code=Code.MALFORMED)
            records.append(SealedPageEntry(*row))
        version = data["version"]
        if not isinstance(data["code"], str) or not isinstance(version, int) or isinstance(version, bool):
            raise InputError("a portal page's code is text and its version a number", code=Code.MALFORMED)
        hidden, protected, superseded = flags
        page = cls(data["code"], version, tuple(records), hidden, protected, superseded, proxies_of(data["proxies"]))
        page.check()
        return page


def open_sealed_page(
    portal: PartyKeys, page: SealedPortalPage, sender_keys: SenderKeys, wires: WireLookup | None = None
) -> PortalPageMessage:
    """The portal's side: every record opened and checked to be its provider's, for its record id; the page in
    the clear, or a ledger error (``sealed_message``) if any record is not. A record under a wire key the portal
    destroyed (its provider erased the person, ``ledger.linkage.wire_keys``) is left out: it opens no more."""
    records = []
    for entry in page.records:
        try:
            c = open_contents(portal, entry.sealed(), sender_keys, entry.record_id, entry.provider, wires)
        except IntegrityError as exc:
            if exc.code == Code.ERASED:
                continue
            raise
        records.append(
            PageRecord(
                entry.record_id, c.made_at, c.querier, entry.provider, c.procedure, c.legal_item, c.info_kind, c.outcome
            )
        )
    return PortalPageMessage(
        page.code, page.version, tuple(records), page.hidden, page.protected, page.superseded, page.proxies
    )
