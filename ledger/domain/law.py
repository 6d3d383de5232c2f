"""The law catalogue: which legal basis (別表第二 item, now the ordinance that replaced it) allows which procedure
to ask for which kinds of information. Every query is checked against it before anything is recorded, so a peer
agency cannot ask beyond its lawful purpose by typing another item, procedure or information kind.

The catalogue is data, ``ledger/domain/data/law_catalogue.json``, loaded once; it is a documented subset
(docs/bodies.md), not the law.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ledger.domain import bounds
from ledger.errors import Code, ConfigurationError, InputError, RuleViolation

__all__ = ["Basis", "Catalogue", "catalogue", "check_query"]

# the legal item's range a query may name at all (before the catalogue is asked)
FIRST_ITEM, LAST_ITEM = 1, 200


@dataclass(frozen=True)
class Basis:
    """One row: item → procedure → the information kinds it permits."""

    item: int
    procedure: str
    procedure_text: str
    querier: str
    provider: str
    info_kinds: tuple[str, ...]
    source: str
    ordinance_item: int | None
    confirmed_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "procedure": self.procedure,
            "procedure_text": self.procedure_text,
            "querier": self.querier,
            "provider": self.provider,
            "info_kinds": list(self.info_kinds),
            "source": self.source,
            "ordinance_item": self.ordinance_item,
            "confirmed_by": self.confirmed_by,
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

    def check(self, item: int, procedure: str, info_kind: str) -> Basis:
        """The row that allows this query; RuleViolation naming what the basis does not permit otherwise."""
        row = self.basis(item)
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "sources": dict(self.sources),
            "note": self.note,
            "rows": [self.rows[i].as_dict() for i in sorted(self.rows)],
        }


def _load(text: str) -> Catalogue:
    try:
        raw = json.loads(text)
        rows: dict[int, Basis] = {}
        for r in raw["rows"]:
            row = Basis(
                item=int(r["item"]),
                procedure=str(r["procedure"]),
                procedure_text=str(r["procedure_text"]),
                querier=str(r["querier"]),
                provider=str(r["provider"]),
                info_kinds=tuple(str(k) for k in r["info_kinds"]),
                source=str(r["source"]),
                ordinance_item=None if r.get("ordinance_item") is None else int(r["ordinance_item"]),
                confirmed_by=r.get("confirmed_by"),
            )
            if row.item in rows or not FIRST_ITEM <= row.item <= LAST_ITEM or row.source not in raw["sources"]:
                raise ValueError(f"row {row.item}: duplicate, out of range or unknown source")
            rows[row.item] = row
        return Catalogue(rows, dict(raw["sources"]), str(raw["as_of"]), str(raw["note"]))
    except (KeyError, TypeError, ValueError) as exc:  # a broken shipped file: nothing can be checked
        raise ConfigurationError(f"the law catalogue does not load: {exc}") from exc


@cache
def catalogue() -> Catalogue:
    """The shipped catalogue, read once per process."""
    return _load(resources.files("ledger.domain").joinpath("data/law_catalogue.json").read_text(encoding="utf-8"))


def check_query(legal_item: object, procedure: object, info_kind: object) -> Basis:
    """Check a query's legal basis: malformed input first (InputError: the item's range, oversize text), then
    the catalogue (RuleViolation: unknown basis, another procedure, an information kind not permitted)."""
    if not isinstance(legal_item, int) or isinstance(legal_item, bool) or not FIRST_ITEM <= legal_item <= LAST_ITEM:
        raise InputError(
            f"legal_item must be the item number of table 2 (別表第二), {FIRST_ITEM}-{LAST_ITEM}", field="legal_item"
        )
    proc = bounds.check_text("procedure", procedure, bounds.PROCEDURE)
    kind = bounds.check_text("info_kind", info_kind, bounds.INFO_KIND)
    return catalogue().check(legal_item, proc, kind)
