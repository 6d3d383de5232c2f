"""The portal's view of a person's provision records at the hub, with what non-disclosure hides removed.

The portal asks under its own code for the person (a card sign-in is mapped to it); the hub finds every
person id of theirs across number changes (``persons_of``: a link that arrives late joins the old number's
records and flags from then on), folds the ``NON_DISCLOSURE`` changes of all of them into intervals and keeps
each record that :func:`ledger.linkage.hiding.hidden` does not hide — by the hub's sequence, never a clock. A
number once joined to theirs by a link since undone brings the intervals that began before the undo
(``ledger.hub.links.joined``): what was hidden while the two were one person stays hidden.

What the page says about what it left out is :data:`~ledger.linkage.hiding.HIDDEN_NOTE` and nothing more: no
holder, no agency, no count, no time. A hidden record's querier may be the municipality the victim moved to;
the holder is who protects them: neither may reach whoever looks (the person, a proxy, whoever holds the card).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import NotFoundError
from ledger.hub.links import counts, joined
from ledger.hub.tables import hub_flag_changes, hub_records
from ledger.linkage.codes import CodeMap, check_code, persons_of
from ledger.linkage.hiding import HIDDEN_NOTE, NON_DISCLOSURE, FlagChange, Interval, fold, hidden
from ledger.linkage.names import PORTAL
from ledger.storage import storage_error

__all__ = ["PortalPage", "PortalRecord", "intervals_of", "portal_page"]


@dataclass(frozen=True)
class PortalRecord:
    """One provision record as the portal shows it (情報提供等記録表示): who asked whom for what, and when the
    provider says it was."""

    record_id: str
    made_at: str
    querier: str
    provider: str
    procedure: str
    legal_item: int
    info_kind: str
    outcome: str


@dataclass(frozen=True)
class PortalPage:
    records: tuple[PortalRecord, ...]
    note: str | None  # HIDDEN_NOTE when something was left out, else None


def intervals_of(engine: Engine, persons: list[str], until: dict[str, float] | None = None) -> list[Interval]:
    """The ``NON_DISCLOSURE`` intervals of every person id of one person (their holdings, in sequence);
    ``until`` (``ledger.hub.links.joined``): also those of person ids once joined to them, begun before the undo."""
    if until is not None:
        persons = sorted({*persons, *until})
    f = hub_flag_changes.c
    stmt = (
        select(f.seq, f.person, f.holder, f.flag, f.action)
        .where(f.person.in_(persons) & (f.flag == NON_DISCLOSURE))
        .order_by(f.seq)
    )
    try:
        with engine.connect() as conn:
            changes = [FlagChange(int(s), str(p), str(h), str(fl), a) for s, p, h, fl, a in conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's flag changes", exc) from exc
    found = fold(changes)
    return found if until is None else [i for i in found if i.person not in until or counts(i, until)]


def portal_page(engine: Engine, codes: CodeMap, portal_code: str) -> PortalPage:
    """The provision records of the person the portal knows by ``portal_code``, hidden ones removed."""
    person = codes.person(PORTAL, check_code(portal_code, "portal code"))
    if person is None:
        raise NotFoundError("the portal has registered no person under this code at the hub")
    persons = persons_of(codes, person)
    intervals = intervals_of(engine, persons, joined(engine, person))
    r = hub_records.c
    stmt = (
        select(r.seq, r.record_id, r.made_at, r.querier, r.provider, r.procedure, r.legal_item, r.info_kind, r.outcome)
        .where(r.person.in_(persons))
        .order_by(r.seq)
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's provision records", exc) from exc
    visible = [row for row in rows if not hidden(int(row.seq), intervals)]
    # an erased record (its text shredded, ledger.hub.erasure) is on no page; the note counts it as before
    shown = tuple(
        PortalRecord(str(rid), str(at), str(querier), str(provider), str(proc), int(item), str(kind), str(outcome))
        for _, rid, at, querier, provider, proc, item, kind, outcome in visible
        if at
    )
    return PortalPage(shown, HIDDEN_NOTE if len(visible) < len(rows) else None)
