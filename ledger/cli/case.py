"""``flagledger case open|companion|perpetrator-requests``: intake (相談受付), companions (同伴者) and the
perpetrators' NON_DISCLOSURE requests (docs/year.md)."""

from __future__ import annotations

from uuid import UUID

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out, unlocked
from ledger.cli.parsing import UUID_ID, OneOf, choices, option
from ledger.domain.cases import CHECKLIST_ITEMS, CompanionRelation
from ledger.domain.types import Flag, Reason

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


@command(case, "companion", help="propose a companion (同伴者): a flag request on them, attached once executed")
@as_actor()
@option("--case", type=UUID_ID, required=True)
@option("--companion", required=True, help="the companion's individual number or pseudonym")
@option("--relation", default="child", type=choices(CompanionRelation))
@option("--flag", multiple=True, type=choices(Flag), help="default: every flag the victim holds here")
@option("--explanation", default="")
def companion(actor: Actor, case: UUID, companion: str, relation: str, flag: tuple[str, ...], explanation: str) -> int:
    rid = node().app.propose_companion(
        unlocked(actor), case, companion, relation=relation, flags=list(flag), explanation=explanation
    )
    out({"request_id": str(rid), "status": "pending", "next": "flag approve, then flag execute"})
    return 0


@command(case, "perpetrator-requests", help="open the NON_DISCLOSURE requests prompted for the case's perpetrators")
@as_actor()
@option("--case", type=UUID_ID, required=True)
@option("--explanation", default="")
def perpetrator_requests(actor: Actor, case: UUID, explanation: str) -> int:
    rids = node().app.request_perpetrator_flags(unlocked(actor), case, explanation)
    out({"request_ids": [str(r) for r in rids]})
    return 0
