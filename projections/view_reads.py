"""What every audience's view starts from: the person's pseudonyms, reads that follow writes, and the
node's checked readers of the verified log (cached per node)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from ledger.app import Actor
from ledger.log.view_cipher import ViewCipher
from projections.flag_links import resolve_person, subject_alias
from projections.node import NodeParts
from projections.portal_read import PortalReader
from projections.record_check import RecordCheck

__all__ = ["aliases", "fresh", "portal_reader", "record_check", "staff_at", "view_cipher"]


# -- people ---------------------------------------------------------------------------------------------
def aliases(conn: Connection, subject: str) -> list[str]:
    """Every pseudonym of the person ``subject`` names (number changes join them)."""
    person = resolve_person(conn, subject)
    others = conn.execute(select(subject_alias.c.pseudonym).where(subject_alias.c.person == person)).scalars()
    return sorted({subject, person, *(str(o) for o in others)})


def fresh(node: NodeParts) -> None:
    node.projector.catch_up()


def staff_at(node: NodeParts, actor: Actor) -> None:
    """Any active staff member of an agency hosted here (Point 3: every department sees the protection)."""
    node.app.permit(actor)


def view_cipher(node: NodeParts) -> ViewCipher:
    """Opens the views' sealed personal cells with the node's data keys (the projector's own, which keeps the
    derived keys it already made)."""
    return node.projector.cipher


def record_check(node: NodeParts) -> RecordCheck:
    check = node.extra.get("record_check")
    if not isinstance(check, RecordCheck):
        check = node.extra["record_check"] = RecordCheck(node.app)
    return check


def portal_reader(node: NodeParts) -> PortalReader:
    reader = node.extra.get("portal_reader")
    if not isinstance(reader, PortalReader):
        reader = PortalReader(
            node.engine,
            [p.name for p in node.projector.projections],
            node.app.max_position,
            node.projector.catch_up,
            node.state,
            record_check(node).facts,
        )
        node.extra["portal_reader"] = reader
    return reader
