"""Staff for tests: enrolling with privileged roles through the two-administrator path.

Granting approver, operator or administrator takes a second administrator (docs/staff.md). Test nodes are
made with one administrator per agency (``admin``), so the first privileged grant gives the agency its second,
``admin2``, exactly as ``flagledger init --second-admin admin2`` records it at set-up (``Staff.Enrolled`` by
the node); ``admin2`` then approves what ``admin`` proposed. Each grant is still a proposal and an approval in
the log, as in production.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.app import SYSTEM, Actor
from ledger.domain.agencies import Staff
from ledger.domain.types import Role
from ledger.runtime.bootstrap import Node

SECOND_ADMIN = "admin2"


def second_administrator(node: Node, code: str, first: str = "admin") -> Actor:
    """An administrator of ``code`` other than ``first``: ``admin2``, made as set-up makes it if missing."""
    who = SECOND_ADMIN if first != SECOND_ADMIN else "admin"
    sid = node.app.ids.staff(code, who)
    if node.app.find(Staff, sid) is None:
        node.app.save_as(
            code, Staff(id=sid, agency=code, staff_id=who, name=who, roles=[Role.ADMINISTRATOR.value], by=SYSTEM)
        )
    return Actor(code, who)


def enrol_approved(node: Node, admin: Actor, who: str, roles: Sequence[str], name: str | None = None) -> str:
    """Enrol ``who`` with ``roles``; a second administrator approves each privileged one at once."""
    pending = node.app.enrol(admin, who, name or who, roles)
    if pending:
        second = second_administrator(node, admin.agency, admin.staff)
        for g in pending:
            node.app.approve_grant(second, g.id)
    return who


def grant_approved(node: Node, admin: Actor, who: str, role: str) -> None:
    """Grant ``role`` to ``who``; if it takes two administrators, the second approves it at once."""
    pending = node.app.grant_role(admin, who, role)
    if pending is not None:
        node.app.approve_grant(second_administrator(node, admin.agency, admin.staff), pending)
