"""The hub's durable code map: :class:`~ledger.linkage.codes.CodeMap` on SQLite or PostgreSQL.

The same six methods, and so the same rules, as ``MemoryCodeMap`` (``register``, ``link_numbers``,
``translate`` and the rest of ``ledger.linkage.codes`` run unchanged on either; one contract test runs them on
both). The tables' constraints hold the rules a second time, against a bug or a second writer: one code names
one person per holder, one holder has one code per person, a number is each side of one link at most — a row
that would break one is refused (``conflict`` / ``link_conflict``), never overwritten.

Inside the hub loop's poll transaction (``ledger.hub.txn``) it reads and writes on the poll's connection —
each write a SAVEPOINT — and remembers its answers for the rest of the poll, forgotten at any write: a poll
asks for one sender's code once however many of its messages name it.

Nothing here holds an individual number: the person is the hub's HMAC id (``ledger/hub/tables.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, StateConflict
from ledger.hub import txn
from ledger.hub.tables import hub_codes, hub_links
from ledger.linkage.codes import check_code
from ledger.linkage.names import check_party
from ledger.storage import storage_error

__all__ = ["SqlCodeMap"]

T = TypeVar("T")
# built once: the loop asks it for nearly every message
_PERSON = select(hub_codes.c.person).where(
    (hub_codes.c.holder == bindparam("holder")) & (hub_codes.c.code == bindparam("code"))
)
_CODES = select(hub_codes.c.holder, hub_codes.c.code).where(hub_codes.c.person == bindparam("person"))
_PREVIOUS = select(hub_links.c.old).where(hub_links.c.new == bindparam("person"))
_NEXT = select(hub_links.c.new).where(hub_links.c.old == bindparam("person"))
_BIND = insert(hub_codes)
FEW = 500  # up to this many persons are named in the query (well inside every backend's parameter limit)


class SqlCodeMap:
    """(holder, code) ↔ person id and the number-change links, in the hub's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _read(self, what: str, run: Callable[[Connection], T], key: tuple[str, ...] = ()) -> T:
        poll = txn.current(self.engine)
        if key and poll is not None and key in poll.codes:
            return poll.codes[key]  # type: ignore[return-value]
        try:
            with txn.reading(self.engine) as conn:
                found = run(conn)
        except SQLAlchemyError as exc:
            raise storage_error(f"cannot read the hub's code map ({what})", exc) from exc
        if key and poll is not None:
            poll.codes[key] = found
        return found

    def _write(self, what: str, run: Callable[[Connection], object], conflict: StateConflict) -> None:
        if (poll := txn.current(self.engine)) is not None:
            poll.codes.clear()
        try:
            with txn.savepoint(self.engine) as conn:
                run(conn)
        except DbIntegrityError:
            raise conflict from None
        except SQLAlchemyError as exc:
            raise storage_error(f"cannot write the hub's code map ({what})", exc, "nothing was kept") from exc

    def person(self, holder: str, code: str) -> str | None:
        args = {"holder": holder, "code": code}
        return self._read("person", lambda conn: conn.execute(_PERSON, args).scalar(), ("person", holder, code))

    def codes(self, person: str) -> dict[str, str]:
        args = {"person": person}
        found = self._read(
            "codes", lambda conn: {str(h): str(k) for h, k in conn.execute(_CODES, args)}, ("codes", person)
        )
        return dict(found)  # a copy: the caller may change it, the poll's stays as read

    def holder_codes(self, holder: str, persons: Collection[str]) -> dict[str, str]:
        """Person id → ``holder``'s code, for those of ``persons`` it registered: one query, as ``codes(p)
        .get(holder)`` for each — the persons named in the query while few (the (person, holder) index), else
        all of the holder's codes read once (its primary key) and kept for those asked."""
        wanted = set(persons)
        if not wanted:
            return {}
        c = hub_codes.c
        stmt = select(c.person, c.code).where(c.holder == holder)
        if len(wanted) <= FEW:
            stmt = stmt.where(c.person.in_(sorted(wanted)))
        rows = self._read("holder codes", lambda conn: conn.execute(stmt).all())
        return {str(p): str(k) for p, k in rows if p in wanted}

    def bind(self, holder: str, code: str, person: str) -> None:
        row = {
            "holder": check_party(holder, "holder"),
            "code": check_code(code),
            "person": check_code(person, "person"),
        }
        self._write(
            "bind",
            lambda conn: conn.execute(_BIND, row),
            StateConflict(f"{holder}'s code, or its code for this person, is already bound at the hub"),
        )

    def previous(self, person: str) -> str | None:
        args = {"person": person}
        return self._read("previous", lambda conn: conn.execute(_PREVIOUS, args).scalar(), ("previous", person))

    def next(self, person: str) -> str | None:
        args = {"person": person}
        return self._read("next", lambda conn: conn.execute(_NEXT, args).scalar(), ("next", person))

    def add_link(self, old: str, new: str) -> None:
        row = {"old": check_code(old, "old"), "new": check_code(new, "new")}
        self._write(
            "link",
            lambda conn: conn.execute(insert(hub_links).values(**row)),
            StateConflict("one of the numbers is already part of another number change", code=Code.LINK_CONFLICT),
        )
