"""``flagledger case open``: intake (相談受付)."""

from __future__ import annotations

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import OneOf, choices, option
from ledger.domain.cases import CHECKLIST_ITEMS
from ledger.domain.types import Reason

case = group("case", "intake (相談受付)")


@command(case, "open", help="open a protection case")
@as_actor()
@option("--victim", required=True, help="individual number or pseudonym")
@option("--perpetrator", multiple=True)
@option("--proxy", multiple=True, help="proxy registrations to cancel")
@option("--reason", default="dv", type=choices(Reason))
@option("--check", multiple=True, type=OneOf(CHECKLIST_ITEMS), help="checklist item done")
@option("--notes", default="")
def open_(
    actor: Actor,
    victim: str,
    perpetrator: tuple[str, ...],
    proxy: tuple[str, ...],
    reason: str,
    check: tuple[str, ...],
    notes: str,
) -> int:
    case_id = node().app.open_case(
        actor,
        victim,
        perpetrators=list(perpetrator),
        reason=reason,
        checklist={c: True for c in check},
        proxies_to_cancel=list(proxy),
        notes=notes,
    )
    out({"case_id": str(case_id)})
    return 0
