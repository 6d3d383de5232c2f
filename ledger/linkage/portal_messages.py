"""What the hub sends the portal: a person's page, as the hub computed it, under the portal's own code.

The hub keeps the records and the flags (by its person id, in its sequence) and decides what non-disclosure
hides (``ledger.hub.portal_view``); the portal learns only the outcome, under its code for the card: the records
shown, whether something was left out (the fixed note, no holder, no count), whether a protection applies now
(the portal refuses proxy and guardian views then), and whether the card's number was replaced (the portal
refuses the old card). ``version`` is the hub's sequence when it computed the page: the portal keeps the newest.

Decoding is strict, as for the agencies' kinds (``ledger.linkage.messages``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.domain import bounds
from ledger.errors import Code, InputError
from ledger.linkage.codes import check_code
from ledger.linkage.names import check_party

__all__ = ["MAX_PROXIES", "MAX_RECORDS", "PageRecord", "PortalPageMessage", "check_proxies", "proxies_of"]

# the approved proxies a page lists: a person has a handful at most
MAX_PROXIES = 16

# the newest records a page carries: what fits the largest bucket with room to spare (a record is ≤ ~600 bytes)
MAX_RECORDS = 300

_RECORD_FIELDS = ("record_id", "made_at", "querier", "provider", "procedure", "legal_item", "info_kind", "outcome")


def check_proxies(proxies: tuple[str, ...]) -> None:
    if not isinstance(proxies, tuple) or len(proxies) > MAX_PROXIES:
        raise InputError(f"a page lists at most {MAX_PROXIES} proxies", code=Code.MALFORMED, field="proxies")
    for code in proxies:
        if not check_code(code, "proxy code").startswith("m"):
            raise InputError("a page names a proxy by the portal's code", code=Code.MALFORMED, field="proxies")


def proxies_of(raw: object) -> tuple[str, ...]:
    """The ``proxies`` field decoded: a list of the portal's codes, checked; ``malformed`` otherwise."""
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise InputError("a page's proxies are a list of codes", code=Code.MALFORMED, field="proxies")
    proxies = tuple(raw)
    check_proxies(proxies)
    return proxies


@dataclass(frozen=True)
class PageRecord:
    """One provision record as the portal shows it: who asked whom for what, and when the provider says."""

    record_id: str
    made_at: str
    querier: str
    provider: str
    procedure: str
    legal_item: int
    info_kind: str
    outcome: str

    def check(self) -> None:
        bounds.check_text("record_id", self.record_id, bounds.Bound(64, 1))
        bounds.check_text("made_at", self.made_at, bounds.TIME)
        check_party(self.querier, "querier")
        check_party(self.provider, "provider")
        bounds.check_text("procedure", self.procedure, bounds.PROCEDURE)
        bounds.check_text("info_kind", self.info_kind, bounds.INFO_KIND)
        bounds.check_text("outcome", self.outcome, bounds.ENUM)
        if not isinstance(self.legal_item, int) or isinstance(self.legal_item, bool) or not 1 <= self.legal_item <= 200:
            raise InputError("legal_item must be the item number of table 2 (別表第二), 1-200", field="legal_item")


@dataclass(frozen=True)
class PortalPageMessage:
    kind: ClassVar[str] = "portal_page"
    code: str  # the portal's code for the card's number
    version: int  # the hub's sequence when the page was computed
    records: tuple[PageRecord, ...]
    hidden: bool  # something was left out (the page shows HIDDEN_NOTE, nothing more)
    protected: bool  # a NON_DISCLOSURE or NO_AUTO_RESPONSE applies now, under any of the person's numbers
    superseded: bool  # the card's number was replaced: the old card is refused
    proxies: tuple[str, ...] = ()  # registered, and approved by every holder while protected (issue 19)

    def check(self) -> None:
        check_code(self.code, "portal code")
        if not self.code.startswith("m"):
            raise InputError("a portal page names the person by the portal's code", code=Code.MALFORMED, field="code")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 0:
            raise InputError("a portal page's version is the hub's sequence", code=Code.MALFORMED, field="version")
        if len(self.records) > MAX_RECORDS:
            raise InputError(f"a portal page carries at most {MAX_RECORDS} records", code=Code.OVERSIZE)
        for record in self.records:
            record.check()
        check_proxies(self.proxies)

    def encode(self) -> bytes:
        self.check()
        body = {
            "code": self.code,
            "version": self.version,
            "records": [[getattr(r, f) for f in _RECORD_FIELDS] for r in self.records],
            "hidden": self.hidden,
            "protected": self.protected,
            "superseded": self.superseded,
            "proxies": list(self.proxies),
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> PortalPageMessage:
        """The page in ``payload``: exactly its fields, each of its type, checked; ``malformed`` otherwise."""
        try:
            data: Any = json.loads(payload)
        except (ValueError, RecursionError):
            raise InputError("a portal page is not JSON", code=Code.MALFORMED) from None
        want = {"code", "version", "records", "hidden", "protected", "superseded", "proxies"}
        if isinstance(data, dict):  # a page kept before approvals existed lists none: the safe reading
            data.setdefault("proxies", [])
        if not isinstance(data, dict) or set(data) != want:
            raise InputError(f"a portal page must hold exactly {sorted(want)}", code=Code.MALFORMED)
        flags = [data[k] for k in ("hidden", "protected", "superseded")]
        if not all(isinstance(f, bool) for f in flags) or not isinstance(data["records"], list):
            raise InputError("a portal page's flags are booleans and its records a list", code=Code.MALFORMED)
        records = []
        for row in data["records"]:
            if not isinstance(row, list) or len(row) != len(_RECORD_FIELDS):
                raise InputError("a portal page's record has eight fields", code=Code.MALFORMED)
            types_ok = all(
                isinstance(v, int) and not isinstance(v, bool) if f == "legal_item" else isinstance(v, str)
                for f, v in zip(_RECORD_FIELDS, row, strict=True)
            )
            if not types_ok:
                raise InputError("a portal page's record has a field of the wrong type", code=Code.MALFORMED)
            records.append(PageRecord(*row))
        if not isinstance(data["code"], str) or not isinstance(data["version"], int):
            raise InputError("a portal page's code is text and its version a number", code=Code.MALFORMED)
        hidden, protected, superseded = flags
        page = cls(
            data["code"], data["version"], tuple(records), hidden, protected, superseded, proxies_of(data["proxies"])
        )
        page.check()
        return page
