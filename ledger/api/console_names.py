"""How console pages name agencies and persons (issue #21): an agency by its name, a person by the viewing
agency's own reference number (宛名番号, ledger/runtime/reference_numbers.py) — never by the pseudonym or the
individual number, which staff cannot check against their own records and which would spread the number onto
screens and printouts. A person the agency has not numbered shows as 宛名番号未登録 (register at
/console/references)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ledger.errors import FlagLedgerError
from ledger.runtime.bootstrap import Node
from ledger.runtime.reference_numbers import ReferenceBook

__all__ = ["UNNUMBERED", "namers"]

UNNUMBERED = "宛名番号未登録"
_PSEUDONYM = re.compile(r"p[0-9a-f]{32}")
_NUMBER = re.compile(r"\d{4}[- ]?\d{4}[- ]?\d{4}")


def namers(node: Node, agency: str | None) -> dict[str, Callable[..., Any]]:
    """``agency_name(code)`` and ``person(pseudonym)`` for one page, each answer cached for the page."""
    names: dict[str, str] = {}
    refs: dict[str, str | None] = {}
    book = ReferenceBook(node.engine)

    def agency_name(code: str | None) -> str:
        if not code:
            return "—"
        if code not in names:
            try:
                names[code] = node.app.agency(code).name
            except FlagLedgerError:  # an agency this node does not host or know: its code is all there is
                names[code] = code
        return names[code]

    def reference(subject: str | None) -> str | None:
        if agency is None or not subject:
            return None
        if subject not in refs:
            refs[subject] = book.lookup(agency, [subject]).get(subject)
        return refs[subject]

    def person(subject: str | None) -> str:
        return reference(subject) or UNNUMBERED

    def shown(value: Any) -> str:
        """A value from a record's detail as a page may show it: pseudonyms as reference numbers, no number."""
        if isinstance(value, list | tuple):
            return "、".join(shown(v) for v in value)
        text = str(value)
        text = _PSEUDONYM.sub(lambda m: person(m.group(0)), text)
        return _NUMBER.sub("（個人番号）", text)

    return {"agency_name": agency_name, "person": person, "reference": reference, "shown": shown}
