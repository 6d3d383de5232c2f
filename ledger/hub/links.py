"""Number-change links at the hub, made and undone (issue 19, docs/linkage.md): the writer-authority rule per
hop for ``PseudonymLink.Unlinked`` — only the agency that linked two numbers undoes the link
(ledger/domain/authority_rules.py). The hub records who made each link when it files it
(``hub_link_makers``); an unlink from any other agency is refused (``wrong_agency``), the same whether or not
the link exists, so a peer learns nothing about another agency's links by trying.

An undone link is kept (``hub_undone_links``, with the hub sequence it was filed at and undone at): the two
numbers are two people from then on, but what one side's holders protected while they were joined keeps
covering the other (:func:`joined`, the rule in docs/linkage.md "Unlinks"). The perpetrator must learn nothing
from the undo: not from an automatic answer about either number, not from a record shown again on a page.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, insert, or_, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.errors import Code, NotFoundError, PermissionDenied
from ledger.hub import txn
from ledger.hub.moves import Write
from ledger.hub.tables import hub_link_makers, hub_links, hub_portal_links, hub_undone_links
from ledger.linkage.codes import CodeMap, persons_of
from ledger.linkage.hiding import INFINITY, Interval
from ledger.linkage.messages import LinkMessage, UnlinkMessage
from ledger.storage import storage_error

__all__ = ["counts", "joined", "made", "persons", "unlink"]


def _persons(codes: CodeMap, sender: str, m: LinkMessage | UnlinkMessage) -> tuple[str, str]:
    old, new = codes.person(sender, m.old_code), codes.person(sender, m.new_code)
    if old is None or new is None:
        raise NotFoundError(f"{sender} has registered no person under one of these codes at the hub")
    return old, new


def persons(codes: CodeMap, sender: str, m: LinkMessage) -> list[str]:
    """Every person id of either number of the link, as the hub joins them now (the moves of each count)."""
    old, new = _persons(codes, sender, m)
    return list(dict.fromkeys([*persons_of(codes, old), *persons_of(codes, new)]))


def made(codes: CodeMap, sender: str, m: LinkMessage) -> Write:
    """The write that records ``sender`` as the maker of the link just filed (the first maker stays)."""
    old, new = _persons(codes, sender, m)

    def write(conn: Connection, seq: int) -> None:
        if conn.execute(select(hub_link_makers.c.old).where(hub_link_makers.c.old == old)).first() is None:
            conn.execute(insert(hub_link_makers).values(old=old, new=new, linker=sender, seq=seq))

    return write


def unlink(engine: Engine, codes: CodeMap, sender: str, m: UnlinkMessage) -> Write | None:
    """The write that removes the link ``sender`` made between the two numbers; None if there is no link any
    more (the same unlink again). Refused unless ``sender`` made it."""
    old, new = _persons(codes, sender, m)
    k = hub_link_makers.c
    try:
        with engine.connect() as conn:
            maker = conn.execute(select(k.linker, k.new, k.seq).where(k.old == old)).first()
            linked = conn.execute(select(hub_links.c.new).where(hub_links.c.old == old)).scalar()
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's links", exc) from exc
    if maker is None and linked is None:
        return None  # nothing linked from the old number: undone already
    if maker is None or maker.linker != sender or maker.new != new or linked != new:
        raise PermissionDenied("only the agency that linked the two numbers undoes the link", code=Code.WRONG_AGENCY)

    linked_seq = int(maker.seq or 0)  # a link filed before h0022: joined from the start (the safe side)

    def write(conn: Connection, seq: int) -> None:
        conn.execute(delete(hub_links).where(hub_links.c.old == old, hub_links.c.new == new))
        conn.execute(delete(hub_link_makers).where(k.old == old))
        conn.execute(insert(hub_undone_links).values(undone_seq=seq, old=old, new=new, linked_seq=linked_seq))
        # fed again if the old number is linked anew (the portal feed takes the undo itself from hub_undone_links)
        conn.execute(delete(hub_portal_links).where(hub_portal_links.c.old == old))

    return write


Window = tuple[int, float]  # [filed, undone) in the hub's sequence; INFINITY: in force


def _edges(conn: Connection, person: str) -> list[tuple[str, Window]]:
    """The links, in force or undone, with ``person`` on one side: (the other side, its window)."""
    k, u, m = hub_links.c, hub_undone_links.c, hub_link_makers.c
    found: list[tuple[str, Window]] = []
    current = select(k.old, k.new, m.seq).join_from(hub_links, hub_link_makers, m.old == k.old, isouter=True)
    for old, new, seq in conn.execute(current.where(or_(k.old == person, k.new == person))):
        found.append((str(new if old == person else old), (int(seq or 0), INFINITY)))
    undone = select(u.old, u.new, u.linked_seq, u.undone_seq).where(or_(u.old == person, u.new == person))
    for old, new, filed, undone_at in conn.execute(undone):
        found.append((str(new if old == person else old), (int(filed), int(undone_at))))
    return found


def joined(engine: Engine, person: str) -> dict[str, float]:
    """Every person id ever joined to ``person`` through links in force or undone → the hub sequence up to
    which it was (INFINITY: joined now). Along a path of links the windows intersect: a number linked to the
    other side only after the wrong link was undone was never joined to ``person`` and is not in."""
    best: dict[str, list[Window]] = {person: [(0, INFINITY)]}
    todo: list[tuple[str, Window]] = [(person, (0, INFINITY))]
    try:
        with txn.reading(engine) as conn:
            while todo:
                at, (lo, hi) = todo.pop()
                for other, (filed, undone) in _edges(conn, at):
                    window = (max(lo, filed), min(hi, undone))
                    if window[0] >= window[1]:
                        continue  # never joined at one time along this path
                    known = best.setdefault(other, [])
                    if any(a <= window[0] and window[1] <= b for a, b in known):
                        continue
                    known.append(window)
                    todo.append((other, window))
    except SQLAlchemyError as exc:
        raise storage_error("cannot read the hub's links", exc) from exc
    return {p: max(hi for _, hi in windows) for p, windows in best.items()}


def counts(interval: Interval, until: dict[str, float]) -> bool:
    """The rule (docs/linkage.md, "Unlinks"): a holding on a person id joined to the person counts for them if
    it began before they were parted — with its own end, so a holding still standing keeps counting until its
    holder releases it (staff answer), and a record it hid while they were joined stays hidden."""
    return interval.start < until.get(interval.person, -1)
