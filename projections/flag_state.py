"""Per-agency and nationwide flag state as views, and the nationwide lookup over them.

The nationwide state is kept per *person* (a group of pseudonyms joined by number changes), with one
row per (person, flag, holding agency). A flag is released nationwide only when its last holder row is gone.
The holder is the event's signer. Staff listings read these rows; the live request path does not (it decides
from :mod:`projections.verified`); :class:`NationwideState` answers over a replayed database (auditors' as-of).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Engine, Integer, String, Table, bindparam, func, select

from ledger.domain import bounds
from ledger.log.envelope import Envelope
from projections import flag_links
from projections.base import Projection, metadata, upsert
from projections.flag_links import carried_flags, pseudonym_links, resolve_person, subject_alias

__all__ = ["FlagStateProjection", "NationwideState", "resolve_person", "subject_alias"]

PROTECTION = "ledger.domain.flags:Protection."
LINK = "ledger.domain.identity:PseudonymLink."
LINKED, RELINKED, UNLINKED = LINK + "Linked", LINK + "Relinked", LINK + "Unlinked"

agency_flags = Table(
    "agency_flags",
    metadata,
    Column("agency", String(bounds.AGENCY_CODE.max), primary_key=True),
    Column("subject", String(bounds.SUBJECT.max), primary_key=True),
    Column("flag", String(bounds.ENUM.max), primary_key=True),
    Column("active", Boolean, nullable=False),
    Column("since", String(40), nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("reason", String(bounds.ENUM.max), nullable=False),
    Column("review_date", String(bounds.DATE.max)),
    Column("released_at", String(40)),
)

flag_history = Table(
    "flag_history",
    metadata,
    Column("position", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("agency", String(bounds.AGENCY_CODE.max), nullable=False, index=True),
    Column("subject", String(bounds.SUBJECT.max), nullable=False, index=True),
    Column("flag", String(bounds.ENUM.max), nullable=False),
    Column("action", String(12), nullable=False),
    Column("at", String(40), nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("review_date", String(bounds.DATE.max)),
)

national_flags = Table(
    "national_flags",
    metadata,
    Column("person", String(bounds.SUBJECT.max), primary_key=True),
    Column("flag", String(bounds.ENUM.max), primary_key=True),
    Column("agency", String(bounds.AGENCY_CODE.max), primary_key=True),
    Column("since", String(40), nullable=False),
)


class FlagStateProjection(Projection):
    name = "flag_state"
    tables = (agency_flags, flag_history, national_flags, subject_alias, pseudonym_links, carried_flags)
    topics = frozenset(
        {PROTECTION + "FlagsSet", PROTECTION + "FlagsReleased", PROTECTION + "FlagsRenewed", LINKED, RELINKED, UNLINKED}
    )
    # its handlers read its tables by person, number, link and holder: every index, from the start of a rebuild
    build_indexes = frozenset(str(ix.name) for t in tables for ix in t.indexes)

    def handle(self, conn: Connection, event: Any, env: Envelope, position: int) -> None:
        topic = env.header.topic
        at = env.header.time
        if topic.startswith(LINK):
            stream = env.header.stream
            if topic == UNLINKED:
                second = getattr(event, "second_change", False) is True
                flag_links.unlink(conn, agency_flags, flag_history, national_flags, stream, second)
            else:
                old = event.old if topic == LINKED else None
                flag_links.link(conn, national_flags, stream, old, event.new, position, env.header.time)
            return
        # the holder is the verified signer, never the payload's word: the authority checks (ledger.domain.authority)
        # keep the two equal on every path into the log, and this keeps a payload naming another agency inert
        agency, subject = env.header.origin, event.subject
        person = resolve_person(conn, subject)
        action = topic.rsplit(".", 1)[1]
        for seq, flag in enumerate(event.flags):
            rid = str(event.request_id)
            if action == "FlagsSet":
                upsert(
                    conn,
                    agency_flags,
                    [
                        {
                            "agency": agency,
                            "subject": subject,
                            "flag": flag,
                            "active": True,
                            "since": at,
                            "request_id": rid,
                            "reason": event.reason,
                            "review_date": event.review_date,
                            "released_at": None,
                        }
                    ],
                    ["agency", "subject", "flag"],
                )
                upsert(
                    conn,
                    national_flags,
                    [{"person": person, "flag": flag, "agency": agency, "since": at}],
                    ["person", "flag", "agency"],
                )
                kind, review = "set", event.review_date
            elif action == "FlagsRenewed":
                conn.execute(
                    agency_flags.update()
                    .where(
                        (agency_flags.c.agency == agency)
                        & (agency_flags.c.subject == subject)
                        & (agency_flags.c.flag == flag)
                    )
                    .values(review_date=event.review_date)
                )
                kind, review = "renew", event.review_date
            else:
                conn.execute(
                    agency_flags.update()
                    .where(
                        (agency_flags.c.agency == agency)
                        & (agency_flags.c.subject == subject)
                        & (agency_flags.c.flag == flag)
                    )
                    .values(active=False, released_at=at)
                )
                flag_links.release_carried(conn, national_flags, agency, subject, flag, self._still_held)
                if not self._still_held(conn, agency, flag, person):
                    conn.execute(
                        national_flags.delete().where(
                            (national_flags.c.person == person)
                            & (national_flags.c.flag == flag)
                            & (national_flags.c.agency == agency)
                        )
                    )
                kind, review = "release", None
            conn.execute(
                flag_history.insert().values(
                    position=position,
                    seq=seq,
                    agency=agency,
                    subject=subject,
                    flag=flag,
                    action=kind,
                    at=at,
                    request_id=rid,
                    review_date=review,
                )
            )

    @staticmethod
    def _still_held(conn: Connection, agency: str, flag: str, person: str) -> bool:
        """Whether ``agency`` still holds ``flag`` on another of the person's numbers.

        Streams are ordered one by one, not with each other: the release of an old number's protection may
        reach a node after the same agency protected the person's new number (seen in the three-node
        leak-freedom run). The nationwide row is the person's, so it goes only when no number of theirs is
        still flagged by that agency.
        """
        numbers = select(subject_alias.c.pseudonym).where(subject_alias.c.person == person)
        carried = conn.execute(
            select(carried_flags.c.pseudonym)
            .where(
                (carried_flags.c.agency == agency)
                & (carried_flags.c.flag == flag)
                & (carried_flags.c.pseudonym.in_(numbers) | (carried_flags.c.pseudonym == person))
            )
            .limit(1)
        ).first()
        return carried is not None or (
            conn.execute(
                select(agency_flags.c.subject)
                .where(
                    (agency_flags.c.agency == agency)
                    & (agency_flags.c.flag == flag)
                    & agency_flags.c.active.is_(True)
                    & (agency_flags.c.subject.in_(numbers) | (agency_flags.c.subject == person))
                )
                .limit(1)
            ).first()
            is not None
        )


class NationwideState:
    """Flag → holding agencies for a pseudonym (any of the person's aliases), read from the views tables.

    On SQLite the one statement runs on a per-thread read-only ``sqlite3`` connection: checking a
    connection out of SQLAlchemy's pool and executing through Core cost ~100 µs of the request path's
    budget (figure "request-path decision"); the statement is the same, compiled once.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        person = func.coalesce(
            select(subject_alias.c.person).where(subject_alias.c.pseudonym == bindparam("p")).scalar_subquery(),
            bindparam("p"),
        )
        self._stmt = select(national_flags.c.flag, national_flags.c.agency).where(national_flags.c.person == person)
        self._sqlite_path: str | None = None
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self._sqlite_path = engine.url.database
            compiled = self._stmt.compile(dialect=engine.dialect)
            self._sql = str(compiled)
            self._params = len(compiled.positiontup or ())  # every positional parameter is "p"
            self._local = threading.local()

    def _rows(self, subject: str) -> list[tuple[str, str]]:
        if self._sqlite_path is None:
            with self.engine.connect() as conn:
                return [(str(f), str(a)) for f, a in conn.execute(self._stmt, {"p": subject})]
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._sqlite_path, timeout=30)
            db.execute("PRAGMA query_only = 1")
            self._local.db = db
        return db.execute(self._sql, (subject,) * self._params).fetchall()

    def flags_for(self, subject: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for flag, agency in self._rows(subject):
            out.setdefault(flag, []).append(agency)
        for holders in out.values():
            holders.sort()
        return out
