"""Routing a query at the hub: from the querier's code to the provider's, and whether staff must answer.

The hub keeps the nationwide protection state by its person id, in its sequence (``hub_flag_changes``). A
holding applies while its interval is open (``ledger.linkage.hiding.fold``), across every number the person
has had. If any holder's ``NON_DISCLOSURE`` or ``NO_AUTO_RESPONSE`` applies, the request is marked "staff
answer" — the provider is told neither why nor who holds — and each such holder is consulted under its own
code. Non-disclosure counts too: a holder that hides a person's records is asked before an automatic answer
tells a querier that the person is known at the provider (the node's request path holds on
``NO_AUTO_RESPONSE`` alone; ``ledger.domain.provision.must_hold``).

A number change undone as wrong parts the two numbers, but a holding on one side that began before the undo
still counts for the other until its holder releases it (``ledger.hub.links.joined`` / ``counts``): the query
about the other number stays a staff answer — an automatic one would tell the perpetrator the flag was dropped.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.hub import txn
from ledger.hub.links import counts, joined
from ledger.hub.tables import hub_flag_changes
from ledger.linkage.codes import CodeMap
from ledger.linkage.hiding import FlagChange, fold
from ledger.storage import storage_error

__all__ = ["STAFF_FLAGS", "holdings"]

STAFF_FLAGS = ("NON_DISCLOSURE", "NO_AUTO_RESPONSE")


def holdings(engine: Engine, codes: CodeMap, person: str) -> dict[str, str]:
    """Holder → its code for the person, for each holder whose ``NON_DISCLOSURE`` or ``NO_AUTO_RESPONSE``
    applies now under any of the person's numbers, or under a number once joined to them by a link since undone
    if it began before the undo (the code under the number it holds the flag on)."""
    until = joined(engine, person)
    persons = sorted(until)
    f = hub_flag_changes.c
    stmt = select(f.seq, f.person, f.holder, f.flag, f.action).where(f.person.in_(persons)).order_by(f.seq)
    try:
        with txn.reading(engine) as conn:
            changes = [FlagChange(int(s), str(p), str(h), str(fl), a) for s, p, h, fl, a in conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's flag changes", exc) from exc
    held: dict[str, str] = {}
    for flag in STAFF_FLAGS:
        for interval in fold(changes, flag):
            code = codes.codes(interval.person).get(interval.holder)
            if interval.end is None and code is not None and counts(interval, until):
                held.setdefault(interval.holder, code)
    return held
