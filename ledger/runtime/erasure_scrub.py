"""After an erasure (issue 22): nothing of the erased person's content left in a file of the node."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, delete, insert, select

if TYPE_CHECKING:
    from ledger.runtime.bootstrap import Node

__all__ = ["ERASED_NOTICE", "erased_subjects", "scrub_after_erasure"]

ERASED_NOTICE = "ledger.domain.erasure:ErasureNotice.Published"


def scrub_after_erasure(node: Node) -> int:
    """What the erased keys' events left in the views goes: every projection rebuilt from the log (erased events
    project as erased: not at all), so no copy of an erased person's content stays in a file of the node; and
    the hub's word on the erased people's handovers, which no rebuild makes (``ledger.runtime.handovers``), is
    dropped.

    Rows deleted the ordinary way would stay on disk: SQLite keeps them in free pages and its WAL (so ``VACUUM``
    and a truncated WAL follow); PostgreSQL keeps dead tuples that even ``VACUUM FULL`` copies while any
    transaction on the server might still see them — so there the projections' tables are emptied with
    ``TRUNCATE`` first (new files; the old ones are cut to nothing at commit, whatever snapshots are open), and the
    handover tables are truncated with everyone else's rows written back. The log itself deleted nothing (an
    erased event stays, as ciphertext under a destroyed key); the PostgreSQL server's own WAL is the cluster's to
    recycle (docs/erasure.md). Returns the events the rebuild applied."""
    from ledger.runtime.handovers import KEPT

    engine = node.engine
    subjects = erased_subjects(node)
    with engine.begin() as conn:
        if engine.dialect.name != "sqlite":
            names = sorted({t.name for p in node.projector.projections for t in p.tables})
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{n}"' for n in names))
        _drop_rows(conn, KEPT, subjects)
    applied = node.projector.rebuild()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return applied


def erased_subjects(node: Node, page: int = 1000) -> set[str]:
    """The people an agency of this node erased: the subjects its ``ErasureNotice.Published`` events name (signed,
    in the log; an erasure at a peer is the peer's own and leaves this node's rows alone)."""
    app = node.app
    hosted = {a.code for a in node.config.agencies}
    out: set[str] = set()
    start = 1
    while True:
        rows = app.recorder.select_notifications(start=start, limit=page, topics=[ERASED_NOTICE])
        for n in rows:
            env = app.signed_mapper.open(n.state)
            app.signed_mapper.check_row(n, env)
            app.signed_mapper.verify(env)
            notice: Any = app.signed_mapper.decode(env)
            if notice.agency in hosted and env.header.origin == notice.agency:
                out.add(str(notice.subject))
        if len(rows) < page:
            return out
        start = rows[-1].id + 1


def _drop_rows(conn: Connection, tables: tuple[Table, ...], subjects: set[str]) -> None:
    """Delete the rows naming ``subjects`` from ``tables``. On PostgreSQL the tables are truncated and the other
    rows written back, so the erased rows leave no dead tuple behind (the same reason as the projections')."""
    if not subjects:
        return
    for table in tables:
        gone = table.c.subject.in_(sorted(subjects))
        if conn.dialect.name == "sqlite":
            conn.execute(delete(table).where(gone))
            continue
        if conn.execute(select(table.c.subject).where(gone).limit(1)).first() is None:
            continue  # nothing of theirs here: the table's files stay as they are
        kept = [dict(r) for r in conn.execute(select(table).where(~gone)).mappings()]
        conn.exec_driver_sql(f'TRUNCATE "{table.name}"')
        if kept:
            conn.execute(insert(table), kept)
