"""Number changes in the flag-state views: which pseudonyms name one person, and what an unlink keeps.

The rules are those of :mod:`projections.verified` (the state decisions read), kept here for staff listings
and as-of reports: an active link joins its two numbers into one person; undoing it (``Unlinked``) splits
them again along the links left, and a flag *set through the link* — by a ``FlagsSet`` after the link, on one
of its numbers, still held — keeps protecting the numbers now apart from it (``carried_flags``) until its holder
releases it. A flag set before the link stays with its own number. Docs: docs/operations.md, Number changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Integer, String, Table, select

from ledger.domain import bounds
from projections.base import metadata, upsert
from projections.portal import canonical_time

__all__ = ["carried_flags", "join", "link", "pseudonym_links", "release_carried", "resolve_person", "subject_alias"]

subject_alias = Table(
    "subject_alias",
    metadata,
    Column("pseudonym", String(bounds.SUBJECT.max), primary_key=True),
    Column("person", String(bounds.SUBJECT.max), nullable=False, index=True),
)

pseudonym_links = Table(
    "pseudonym_links",
    metadata,
    Column("stream", String(36), primary_key=True),
    Column("old", String(bounds.SUBJECT.max), nullable=False, index=True),
    Column("new", String(bounds.SUBJECT.max), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("position", Integer, nullable=False),  # of the Linked / Relinked that made it active
    Column("at", String(40), nullable=False),  # its signed time (canonical)
)

carried_flags = Table(
    "carried_flags",
    metadata,
    Column("pseudonym", String(bounds.SUBJECT.max), primary_key=True),  # the number still protected
    Column("source", String(bounds.SUBJECT.max), primary_key=True, index=True),  # the number it is held on
    Column("flag", String(bounds.ENUM.max), primary_key=True),
    Column("agency", String(bounds.AGENCY_CODE.max), primary_key=True),
    Column("since", String(40), nullable=False),
)


def resolve_person(conn: Connection, pseudonym: str) -> str:
    person = conn.execute(select(subject_alias.c.person).where(subject_alias.c.pseudonym == pseudonym)).scalar()
    return str(person) if person is not None else pseudonym


def link(conn: Connection, national: Table, stream: str, old: str | None, new: str, position: int, at: str) -> None:
    """``Linked`` (``old`` given) or ``Relinked`` (``old`` None: the stream's own, from its Linked)."""
    if old is None:
        old = conn.execute(select(pseudonym_links.c.old).where(pseudonym_links.c.stream == stream)).scalar()
        if old is None:
            return
    upsert(
        conn,
        pseudonym_links,
        [{"stream": stream, "old": old, "new": new, "active": True, "position": position, "at": canonical_time(at)}],
        ["stream"],
    )
    join(conn, national, old, new)


def join(conn: Connection, national: Table, old: str, new: str) -> None:
    """Both numbers now name the new number's person, and every number of the old one's person with them."""
    p_old, p_new = resolve_person(conn, old), resolve_person(conn, new)
    upsert(
        conn,
        subject_alias,
        [{"pseudonym": old, "person": p_new}, {"pseudonym": new, "person": p_new}],
        ["pseudonym"],
    )
    if p_old == p_new:
        return
    conn.execute(subject_alias.update().where(subject_alias.c.person == p_old).values(person=p_new))
    moved = [dict(r._mapping) for r in conn.execute(select(national).where(national.c.person == p_old))]
    for r in moved:
        r["person"] = p_new
    if moved:
        ins: Any = upsert
        ins(conn, national, moved, ["person", "flag", "agency"])
    conn.execute(national.delete().where(national.c.person == p_old))


def unlink(
    conn: Connection, flags: Table, history: Table, national: Table, stream: str, second_change: bool = False
) -> None:
    """``Unlinked``: regroup the person's numbers by the links left; carry what was set through the link (on a
    ``second_change``, everything held)."""
    row = conn.execute(
        select(pseudonym_links.c.old, pseudonym_links.c.new, pseudonym_links.c.position, pseudonym_links.c.at).where(
            (pseudonym_links.c.stream == stream) & pseudonym_links.c.active.is_(True)
        )
    ).first()
    if row is None:
        return
    old, new, linked_at, linked_time = str(row[0]), str(row[1]), int(row[2]), str(row[3])
    conn.execute(pseudonym_links.update().where(pseudonym_links.c.stream == stream).values(active=False))
    person = resolve_person(conn, old)
    members = sorted(
        {old, new, *conn.execute(select(subject_alias.c.pseudonym).where(subject_alias.c.person == person)).scalars()}
    )
    held = [
        (str(s), str(f), str(a), str(since))
        for s, f, a, since in conn.execute(
            select(flags.c.subject, flags.c.flag, flags.c.agency, flags.c.since).where(
                flags.c.subject.in_(members) & flags.c.active.is_(True)
            )
        )
    ]
    # set through the link: after it in this log, or (whatever order the two reached this node in) a flag set on
    # that number at or after the link's signed time (as projections.verified: in doubt, carried)
    set_after = {
        (str(s), str(f), str(a))
        for s, f, a in conn.execute(
            select(history.c.subject, history.c.flag, history.c.agency).where(
                history.c.subject.in_(members) & (history.c.action == "set") & (history.c.position > linked_at)
            )
        )
    }
    last_set: dict[str, str] = {}
    for s, since in conn.execute(select(flags.c.subject, flags.c.since).where(flags.c.subject.in_(members))):
        t = canonical_time(str(since))
        if t > last_set.get(str(s), ""):
            last_set[str(s)] = t
    conn.execute(subject_alias.delete().where(subject_alias.c.pseudonym.in_(members)))
    conn.execute(national.delete().where(national.c.person == person))
    left = conn.execute(
        select(pseudonym_links.c.old, pseudonym_links.c.new)
        .where(pseudonym_links.c.active.is_(True) & pseudonym_links.c.old.in_(members))
        .order_by(pseudonym_links.c.old, pseudonym_links.c.new)
    ).all()
    for o, n in left:  # (chains exist only in logs from before issue 18)
        join(conn, national, str(o), str(n))
    rows: list[dict[str, str]] = [
        {"person": resolve_person(conn, s), "flag": f, "agency": a, "since": since} for s, f, a, since in held
    ]
    for c in conn.execute(select(carried_flags).where(carried_flags.c.pseudonym.in_(members))):
        rows.append({"person": resolve_person(conn, c.pseudonym), "flag": c.flag, "agency": c.agency, "since": c.since})
    carried: list[dict[str, str]] = []
    for s, f, a, since in held:
        if not second_change and (s, f, a) not in set_after and last_set.get(s, "") < linked_time:
            continue
        for m in members:
            if resolve_person(conn, m) != resolve_person(conn, s):
                carried.append({"pseudonym": m, "source": s, "flag": f, "agency": a, "since": since})
                rows.append({"person": resolve_person(conn, m), "flag": f, "agency": a, "since": since})
    upsert(conn, carried_flags, carried, ["pseudonym", "source", "flag", "agency"])
    upsert(conn, national, _latest(rows), ["person", "flag", "agency"])


def release_carried(
    conn: Connection,
    national: Table,
    agency: str,
    source: str,
    flag: str,
    still_held: Callable[[Connection, str, str, str], bool],
) -> None:
    """A holding released on ``source`` stops protecting the numbers it was carried to."""
    where = (carried_flags.c.source == source) & (carried_flags.c.flag == flag) & (carried_flags.c.agency == agency)
    carriers = [str(p) for p in conn.execute(select(carried_flags.c.pseudonym).where(where)).scalars()]
    if not carriers:
        return
    conn.execute(carried_flags.delete().where(where))
    for person in dict.fromkeys(resolve_person(conn, p) for p in carriers):
        if not still_held(conn, agency, flag, person):
            conn.execute(
                national.delete().where(
                    (national.c.person == person) & (national.c.flag == flag) & (national.c.agency == agency)
                )
            )


def _latest(rows: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """One row per (person, flag, agency), the latest ``since`` (one upsert statement may not name a key twice)."""
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in rows:
        key = (r["person"], r["flag"], r["agency"])
        if key not in out or r["since"] > out[key]["since"]:
            out[key] = r
    return sorted(out.values(), key=lambda r: (r["person"], r["flag"], r["agency"]))
