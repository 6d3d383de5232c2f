"""Number-change links at the hub, made and undone (issue 19, docs/linkage.md): the writer-authority rule per
hop for ``PseudonymLink.Unlinked`` — only the agency that linked two numbers undoes the link
(ledger/domain/authority_rules.py). The hub records who made each link when it files it
(``hub_link_makers``); an unlink from any other agency is refused (``wrong_agency``), the same whether or not
the link exists, so a peer learns nothing about another agency's links by trying.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, NotFoundError, PermissionDenied
from ledger.hub.moves import Write
from ledger.hub.tables import hub_link_makers, hub_links
from ledger.linkage.codes import CodeMap
from ledger.linkage.messages import LinkMessage, UnlinkMessage
from ledger.storage import storage_error

__all__ = ["made", "unlink"]


def _persons(codes: CodeMap, sender: str, m: LinkMessage | UnlinkMessage) -> tuple[str, str]:
    old, new = codes.person(sender, m.old_code), codes.person(sender, m.new_code)
    if old is None or new is None:
        raise NotFoundError(f"{sender} has registered no person under one of these codes at the hub")
    return old, new


def made(codes: CodeMap, sender: str, m: LinkMessage) -> Write:
    """The write that records ``sender`` as the maker of the link just filed (the first maker stays)."""
    old, new = _persons(codes, sender, m)

    def write(conn: Connection, _: int) -> None:
        if conn.execute(select(hub_link_makers.c.old).where(hub_link_makers.c.old == old)).first() is None:
            conn.execute(insert(hub_link_makers).values(old=old, new=new, linker=sender))

    return write


def unlink(engine: Engine, codes: CodeMap, sender: str, m: UnlinkMessage) -> Write | None:
    """The write that removes the link ``sender`` made between the two numbers; None if there is no link any
    more (the same unlink again). Refused unless ``sender`` made it."""
    old, new = _persons(codes, sender, m)
    k = hub_link_makers.c
    try:
        with engine.connect() as conn:
            maker = conn.execute(select(k.linker, k.new).where(k.old == old)).first()
            linked = conn.execute(select(hub_links.c.new).where(hub_links.c.old == old)).scalar()
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's links", exc) from exc
    if maker is None and linked is None:
        return None  # nothing linked from the old number: undone already
    if maker is None or maker.linker != sender or maker.new != new or linked != new:
        raise PermissionDenied("only the agency that linked the two numbers undoes the link", code=Code.WRONG_AGENCY)

    def write(conn: Connection, _: int) -> None:
        conn.execute(delete(hub_links).where(hub_links.c.old == old, hub_links.c.new == new))
        conn.execute(delete(hub_link_makers).where(k.old == old))

    return write
