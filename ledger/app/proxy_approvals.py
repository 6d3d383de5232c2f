"""A holder's four-eyes approval of a proxy for a person it protects (issue 19, docs/linkage.md).

A requester proposes the approval, an approver — another person — puts it in force; withdrawing it takes two people
as well. Each act is signed with its person's own staff key (or a proof made elsewhere, checked against the
roster), and where the roster records roles each signer must hold there the role for the act (requester,
approver) and not administrator, as for a flag act. Only an agency holding a ``NON_DISCLOSURE`` or
``NO_AUTO_RESPONSE`` on the person proposes or approves (the hub checks it again: ``ledger.hub.proxy_approvals``);
a barred guardian is never approved. In hub mode the node's bridge sends the approval (or its withdrawal) to the
hub once it is in the committed log (``consumers.linkage_bridge``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from eventsourcing.utils import get_topic

from ledger.app.guardians import GuardianCommands, Proof
from ledger.app.values import Actor
from ledger.domain.flags import Protection
from ledger.domain.proxy_approvals import HolderProxyApproval
from ledger.domain.staff_acts import APPROVED, REQUESTED, proxy_approval_statement
from ledger.domain.types import Action, Flag
from ledger.errors import Code, InputError, PermissionDenied, StateConflict
from ledger.log.staff_roles import act_role_problem

__all__ = ["ProxyApprovalCommands"]

_HOLDING = (Flag.NON_DISCLOSURE.value, Flag.NO_AUTO_RESPONSE.value)
APPROVAL, WITHDRAWAL = "proxy-approval:", "proxy-withdrawal:"  # what each statement's request id starts with


def _statement(actor: Actor, what: str, approval: UUID, act: str, subject: str, proxy: str) -> bytes:
    """What each person acting on an approval signs (the hub checks the same: ``proxy_approval_statement``)."""
    return proxy_approval_statement(actor.agency, str(approval), what == WITHDRAWAL, act, subject, proxy, actor.staff)


class ProxyApprovalCommands(GuardianCommands):
    """A holding agency's approvals of a proxy while it protects the person."""

    def _check_role(self, actor: Actor, act: str) -> None:
        """The roster, not only this node's permission table, gives the signer the act's role (as a peer checks a
        flag act): refused ``staff_role`` otherwise."""
        roster = self.roster(actor.agency)
        problem = act_role_problem(roster, act, actor.staff) if roster is not None else None
        if problem is not None:
            raise PermissionDenied(f"proxy approval: {problem}", code=Code.STAFF_ROLE)

    def _holds(self, actor: Actor, subject: str) -> None:
        protection = self.find(Protection, self.ids.protection(actor.agency, subject))  # this agency's own
        if protection is None or not any(protection.active(f) for f in _HOLDING):
            raise PermissionDenied(
                f"agency {actor.agency} holds no NON_DISCLOSURE or NO_AUTO_RESPONSE on this person: only a holder "
                "approves a proxy for them",
                code=Code.WRONG_AGENCY,
            )

    def _pair(self, actor: Actor, subject: str, proxy: str) -> tuple[str, str]:
        s, p = self.subject(subject), self.subject(proxy)
        if s == p:
            raise InputError("a person is not their own proxy", field="proxy")
        self._holds(actor, s)
        if self.barred(s, p):
            raise PermissionDenied(
                "this person may not act for the protected person (a guardian bar is in force)",
                code=Code.GUARDIAN_BARRED,
            )
        return s, p

    def _own_approval(self, actor: Actor, approval_id: UUID) -> HolderProxyApproval:
        found = self.load(HolderProxyApproval, approval_id, "proxy approval")
        return self._own(found, actor, "proxy approval")

    def proxy_approval_statement(
        self, actor: Actor, approval_id: UUID, act: str, *, subject: str = "", proxy: str = "", withdrawal: bool = False
    ) -> bytes:
        """What ``actor`` signs for ``act`` on approval ``approval_id``: a proposal (``requested``, naming the pair)
        or an act on this agency's existing approval (``approved``; ``withdrawal``: on its withdrawal)."""
        what = WITHDRAWAL if withdrawal else APPROVAL
        if act == REQUESTED and subject and not withdrawal:
            self.authorise(actor, Action.REQUEST_FLAG)
            s, p = self._pair(actor, subject, proxy)
            return _statement(actor, what, approval_id, REQUESTED, s, p)
        a = self._own_approval(actor, approval_id)
        return _statement(actor, what, a.id, act, a.subject, a.proxy)

    def propose_proxy_approval(
        self,
        actor: Actor,
        subject: str,
        proxy: str,
        note: str = "",
        *,
        proof: Proof | None = None,
        approval_id: UUID | None = None,
    ) -> UUID:
        """Propose that ``proxy`` may read ``subject``'s portal page while this agency protects them; signed by
        the proposer's unlocked key, or by ``proof`` over :meth:`proxy_approval_statement` for ``approval_id``."""
        self.authorise(actor, Action.REQUEST_FLAG)
        self._check_role(actor, REQUESTED)
        s, p = self._pair(actor, subject, proxy)
        if any(a["proxy"] == p and a["subject"] == s for a in self.proxy_approvals(actor)):
            raise StateConflict("an approval of this proxy for this person is already proposed or in force")
        aid = approval_id if proof is not None and approval_id is not None else uuid4()
        approval = HolderProxyApproval(
            id=aid,
            agency=actor.agency,
            subject=s,
            proxy=p,
            proposed_by=actor.staff,
            note=note,
            staff_signature=self.sign_act(actor, _statement(actor, APPROVAL, aid, REQUESTED, s, p), proof),
        )
        self.save_as(actor.agency, approval)
        return aid

    def approve_proxy_approval(self, actor: Actor, approval_id: UUID, *, proof: Proof | None = None) -> None:
        """Another person than the proposer puts the approval in force (the agency still holding a flag)."""
        self.authorise(actor, Action.APPROVE_FLAG)
        self._check_role(actor, APPROVED)
        a = self._own_approval(actor, approval_id)
        a.check_approvable(actor.staff)
        self._pair(actor, a.subject, a.proxy)  # released or barred since the proposal: refused
        a.approve(
            actor.staff, self.sign_act(actor, _statement(actor, APPROVAL, a.id, APPROVED, a.subject, a.proxy), proof)
        )
        self.save_as(actor.agency, a)

    def propose_proxy_withdrawal(
        self, actor: Actor, approval_id: UUID, note: str, *, proof: Proof | None = None
    ) -> None:
        self.authorise(actor, Action.REQUEST_FLAG)
        self._check_role(actor, REQUESTED)
        if not note.strip():
            raise InputError("say why the proxy may no longer read the person's page", field="note")
        a = self._own_approval(actor, approval_id)
        a.check_withdrawable(actor.staff, proposing=True)
        statement = _statement(actor, WITHDRAWAL, a.id, REQUESTED, a.subject, a.proxy)
        a.propose_withdrawal(actor.staff, note, self.sign_act(actor, statement, proof))
        self.save_as(actor.agency, a)

    def withdraw_proxy_approval(self, actor: Actor, approval_id: UUID, *, proof: Proof | None = None) -> None:
        """Another person than the withdrawal's proposer ends the approval (whether or not a flag still applies)."""
        self.authorise(actor, Action.APPROVE_FLAG)
        self._check_role(actor, APPROVED)
        a = self._own_approval(actor, approval_id)
        a.check_withdrawable(actor.staff, proposing=False)
        statement = _statement(actor, WITHDRAWAL, a.id, APPROVED, a.subject, a.proxy)
        a.withdraw(actor.staff, self.sign_act(actor, statement, proof))
        self.save_as(actor.agency, a)

    def proxy_approvals(self, actor: Actor) -> list[dict[str, Any]]:
        """This agency's proxy approvals, proposed or in force (for its requesters and approvers)."""
        try:
            self.permit(actor, Action.REQUEST_FLAG)
        except PermissionDenied:
            self.permit(actor, Action.APPROVE_FLAG)
        out: list[dict[str, Any]] = []
        start, topic = 1, get_topic(HolderProxyApproval.Proposed)  # type: ignore[attr-defined]
        while True:
            rows = self.recorder.select_notifications(start=start, limit=1000, topics=[topic])
            for n in rows:
                a = self.find(HolderProxyApproval, UUID(str(n.originator_id)))
                if a is not None and a.agency == actor.agency and a.withdrawn_by is None:
                    out.append(
                        {"approval_id": str(a.id), "subject": a.subject, "proxy": a.proxy, "in_force": a.in_force,
                         "withdrawal_proposed": a.withdrawal_proposed_by is not None}
                    )  # fmt: skip
            if len(rows) < 1000:
                return out
            start = rows[-1].id + 1
