"""The law catalogue: which legal basis (別表第二 item, now the ordinance that replaced it) allows which procedure
to ask for which kinds of information, which kinds of agency may ask under it (the row's 情報照会者), and which
kinds may be asked (its 情報提供者). Every query is checked against it before anything is recorded, so a peer agency
cannot ask beyond its lawful purpose by typing another item, procedure or information kind, nor under an item that
is another kind of agency's, nor ask (or answer as) a provider the row does not name.

The catalogue is data, ``ledger/domain/data/law_catalogue.json``, loaded once; it is a documented subset
(docs/bodies.md), not the law.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from ledger.domain import bounds
from ledger.domain.queriers import QUERIER_KINDS  # not via agencies: the hub imports this module
from ledger.errors import Code, ConfigurationError, InputError, RuleViolation

__all__ = ["Basis", "Catalogue", "catalogue", "check_query"]

# the legal item's range a query may name at all (before the catalogue is asked)
FIRST_ITEM, LAST_ITEM = 1, 200


@dataclass(frozen=True)
class Basis:
    """One row: item → procedure → the information kinds it permits, who may ask (``querier_kinds``, the
    agency kinds ``querier`` maps to: ``ledger.domain.agencies.QUERIER_KINDS``) and who may be asked
    (``provider_kinds``, ``provider`` through the same mapping). ``confirmed_by``, ``url`` and
    ``retrieved``: where the row was checked against a source text, and when (all three, or none)."""

    item: int
    procedure: str
    procedure_text: str
    querier: str
    querier_kinds: tuple[str, ...]
    provider: str
    provider_kinds: tuple[str, ...]
    info_kinds: tuple[str, ...]
    source: str
    ordinance_item: int | None
    confirmed_by: str | None
    url: str | None = None
    retrieved: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "procedure": self.procedure,
            "procedure_text": self.procedure_text,
            "querier": self.querier,
            "querier_kinds": list(self.querier_kinds),
            "provider": self.provider,
            "provider_kinds": list(self.provider_kinds),
            "info_kinds": list(self.info_kinds),
            "source": self.source,
            "ordinance_item": self.ordinance_item,
            "confirmed_by": self.confirmed_by,
            "url": self.url,
            "retrieved": self.retrieved,
        }


@dataclass(frozen=True)
class Catalogue:
    rows: dict[int, Basis]
    sources: dict[str, str]
    as_of: str
    note: str

    def basis(self, item: int) -> Basis:
        row = self.rows.get(item)
        if row is None:
            known = ", ".join(str(i) for i in sorted(self.rows))
            raise RuleViolation(
                f"legal_item {item} is not a legal basis in the catalogue (known items: {known})",
                code=Code.UNKNOWN_LEGAL_BASIS,
            )
        return row

    def check(
        self,
        item: int,
        procedure: str,
        info_kind: str,
        querier_kind: str | None = None,
        provider_kind: str | None = None,
    ) -> Basis:
        """The row that allows this query; RuleViolation naming what the basis does not permit otherwise.
        ``querier_kind``, ``provider_kind``: the asking and the asked agency's kinds where they are known (None:
        not checked, the caller says why)."""
        row = self.basis(item)
        if querier_kind is not None and querier_kind not in row.querier_kinds:
            raise RuleViolation(
                f"legal_item {item} ({row.procedure}) is asked by {row.querier} "
                f"(agency kinds: {', '.join(row.querier_kinds)}), not by an agency of kind {querier_kind}",
                code=Code.QUERIER_NOT_IN_BASIS,
            )
        # a peer of another kind must neither be asked for, nor answer, what the law gives the row's provider
        if provider_kind is not None and provider_kind not in row.provider_kinds:
            raise RuleViolation(
                f"legal_item {item} ({row.procedure}) is provided by {row.provider} "
                f"(agency kinds: {', '.join(row.provider_kinds)}), not by an agency of kind {provider_kind}",
                code=Code.PROVIDER_NOT_IN_BASIS,
            )
        if procedure != row.procedure:
            raise RuleViolation(
                f"legal_item {item} is the basis of the procedure {row.procedure}, not of the procedure asked for",
                code=Code.PROCEDURE_NOT_IN_BASIS,
            )
        if info_kind not in row.info_kinds:
            raise RuleViolation(
                f"legal_item {item} ({row.procedure}) permits only: {', '.join(row.info_kinds)}",
                code=Code.INFO_KIND_NOT_PERMITTED,
            )
        return row

    def names(self, what: str) -> set[str]:
        """Every ``procedure`` or every ``info_kind`` some row names (a provider's policy may name only these)."""
        if what == "procedure":
            return {r.procedure for r in self.rows.values()}
        return {k for r in self.rows.values() for k in r.info_kinds}

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "sources": dict(self.sources),
            "note": self.note,
            "rows": [self.rows[i].as_dict() for i in sorted(self.rows)],
        }


def _optional(r: dict[str, Any], key: str) -> str | None:
    value = r.get(key)
    return None if value is None else str(value)


def _row(r: dict[str, Any], sources: dict[str, str]) -> Basis:
    querier, provider = str(r["querier"]), str(r["provider"])
    # a querier or provider no kind is mapped to could not be checked: the law names both sides in the same words
    for side, text in (("querier", querier), ("provider", provider)):
        if text not in QUERIER_KINDS:
            raise ValueError(f"row {r['item']}: {side} {text} is not mapped to agency kinds")
    row = Basis(
        item=int(r["item"]),
        procedure=str(r["procedure"]).strip(),
        procedure_text=str(r["procedure_text"]).strip(),
        querier=querier,
        querier_kinds=tuple(sorted(k.value for k in QUERIER_KINDS[querier])),
        provider=provider,
        provider_kinds=tuple(sorted(k.value for k in QUERIER_KINDS[provider])),
        info_kinds=tuple(str(k) for k in r["info_kinds"]),
        source=str(r["source"]),
        ordinance_item=None if r.get("ordinance_item") is None else int(r["ordinance_item"]),
        confirmed_by=_optional(r, "confirmed_by"),
        url=_optional(r, "url"),
        retrieved=_optional(r, "retrieved"),
    )
    if not FIRST_ITEM <= row.item <= LAST_ITEM or row.source not in sources:
        raise ValueError(f"row {row.item}: out of range or unknown source")
    if not (row.procedure and row.procedure_text and row.info_kinds and all(row.info_kinds)):
        raise ValueError(f"row {row.item}: a procedure, its text and at least one information kind are needed")
    confirmed = (row.confirmed_by, row.url, row.retrieved)
    if any(c is not None for c in confirmed):  # a confirmation names where and when, or it is none
        if row.url is None or not row.url.startswith("https://") or not row.confirmed_by or row.retrieved is None:
            raise ValueError(f"row {row.item}: a confirmed row names its source text, https URL and retrieval date")
        date.fromisoformat(row.retrieved)
    return row


def _load(text: str) -> Catalogue:
    try:
        raw = json.loads(text)
        rows: dict[int, Basis] = {}
        for r in raw["rows"]:
            row = _row(r, raw["sources"])
            if row.item in rows:
                raise ValueError(f"row {row.item}: duplicate")
            rows[row.item] = row
        return Catalogue(rows, dict(raw["sources"]), str(raw["as_of"]), str(raw["note"]))
    except (KeyError, TypeError, ValueError) as exc:  # a broken shipped file: nothing can be checked
        raise ConfigurationError(f"the law catalogue does not load: {exc}") from exc


@cache
def catalogue() -> Catalogue:
    """The shipped catalogue, read once per process."""
    return _load(resources.files("ledger.domain").joinpath("data/law_catalogue.json").read_text(encoding="utf-8"))


def check_query(
    legal_item: object,
    procedure: object,
    info_kind: object,
    querier_kind: str | None = None,
    provider_kind: str | None = None,
) -> Basis:
    """Check a query's legal basis: malformed input first (InputError: the item's range, oversize text), then
    the catalogue (RuleViolation: unknown basis, a querier or a provider of another kind, another procedure, an
    information kind not permitted). ``querier_kind``, ``provider_kind``: the asking and the asked agency's
    kinds, where the caller knows them."""
    if not isinstance(legal_item, int) or isinstance(legal_item, bool) or not FIRST_ITEM <= legal_item <= LAST_ITEM:
        raise InputError(
            f"legal_item must be the item number of table 2 (別表第二), {FIRST_ITEM}-{LAST_ITEM}", field="legal_item"
        )
    proc = bounds.check_text("procedure", procedure, bounds.PROCEDURE)
    kind = bounds.check_text("info_kind", info_kind, bounds.INFO_KIND)
    return catalogue().check(legal_item, proc, kind, querier_kind, provider_kind)
