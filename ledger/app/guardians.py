"""Barring a guardian or proxy from acting for a protected person (issue 21, docs/year.md).

A bar is proposed by one person (``request_flag``) and in force once another approves it (``approve_flag``);
lifting it takes two people as well. Each act is signed by its person's staff key. While a bar is in force and
any flag protects the subject, the portal refuses proxy access through the barred person
(:meth:`projections.verified.VerifiedState.portal_access`) and no agency registers them as the subject's proxy.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from ledger.app.credentials import CredentialCommands, StaffProof, WebAuthnProof
from ledger.app.identity import IdentityCommands
from ledger.app.values import Actor
from ledger.domain.guardians import GuardianBar, GuardianRelation
from ledger.domain.staff_acts import APPROVED, EXECUTED, REQUESTED, act_statement, details_digest, note_digest
from ledger.domain.types import Action, parse_enum
from ledger.errors import Code, InputError, PermissionDenied

__all__ = ["GuardianCommands"]

Proof = StaffProof | WebAuthnProof


def _statement(actor: Actor, bar: UUID, act: str, subject: str, guardian: str, relation: str) -> bytes:
    """What each person acting on a bar signs (the pair and relation, by digest)."""
    digest = details_digest(relation, "guardian_bar", subject, guardian)
    return act_statement(actor.agency, act, "bar:" + str(bar), digest, actor.staff, note_digest(""))


class GuardianCommands(CredentialCommands, IdentityCommands):
    """Guardian and proxy bars, and the proxy registration they refuse."""

    def propose_guardian_bar(
        self,
        actor: Actor,
        subject: str,
        guardian: str,
        relation: str = GuardianRelation.PARENT.value,
        *,
        proof: Proof | None = None,
        bar_id: UUID | None = None,
    ) -> UUID:
        """Signed by the proposer's unlocked key, or by ``proof`` over :meth:`bar_statement` for ``bar_id``."""
        self.authorise(actor, Action.REQUEST_FLAG)
        s, g = self._bar_pair(subject, guardian, relation)
        bid = bar_id if proof is not None and bar_id is not None else uuid4()
        bar = GuardianBar(
            id=bid,
            agency=actor.agency,
            subject=s,
            guardian=g,
            relation=relation,
            proposed_by=actor.staff,
            staff_signature=self.sign_act(actor, _statement(actor, bid, REQUESTED, s, g, relation), proof),
        )
        self.save_as(actor.agency, bar)
        return bid

    def _bar_pair(self, subject: str, guardian: str, relation: str) -> tuple[str, str]:
        parse_enum(GuardianRelation, relation, "relation")
        s, g = self.subject(subject), self.subject(guardian)
        if s == g:
            raise InputError("a person is not barred from acting for themselves", field="guardian")
        return s, g

    def bar_statement(
        self,
        actor: Actor,
        bar_id: UUID,
        act: str,
        *,
        subject: str = "",
        guardian: str = "",
        relation: str = GuardianRelation.PARENT.value,
    ) -> bytes:
        """What ``actor`` signs for ``act`` on bar ``bar_id``: a proposal (``requested``, naming the pair) or an
        act on this agency's existing bar (``approved``; a lift's ``requested``/``executed``)."""
        if act == REQUESTED and subject:
            self.authorise(actor, Action.REQUEST_FLAG)
            s, g = self._bar_pair(subject, guardian, relation)
            return _statement(actor, bar_id, REQUESTED, s, g, relation)
        bar = self._own_bar(actor, bar_id)
        return _statement(actor, bar.id, act, bar.subject, bar.guardian, bar.relation)

    def _own_bar(self, actor: Actor, bar_id: UUID) -> GuardianBar:
        return self._own(self.load(GuardianBar, bar_id, "guardian bar"), actor, "guardian bar")

    def approve_guardian_bar(self, actor: Actor, bar_id: UUID, *, proof: Proof | None = None) -> None:
        self.authorise(actor, Action.APPROVE_FLAG)
        bar = self._own_bar(actor, bar_id)
        bar.check_approvable(actor.staff)
        statement = _statement(actor, bar.id, APPROVED, bar.subject, bar.guardian, bar.relation)
        bar.approve(actor.staff, self.sign_act(actor, statement, proof))
        self.save_as(actor.agency, bar)

    def propose_bar_lift(self, actor: Actor, bar_id: UUID, note: str, *, proof: Proof | None = None) -> None:
        self.authorise(actor, Action.REQUEST_FLAG)
        if not note.strip():
            raise InputError("say why the guardian may act for the person again", field="note")
        bar = self._own_bar(actor, bar_id)
        bar.check_liftable(actor.staff, proposing=True)
        statement = _statement(actor, bar.id, REQUESTED, bar.subject, bar.guardian, bar.relation)
        bar.propose_lift(actor.staff, note, self.sign_act(actor, statement, proof))
        self.save_as(actor.agency, bar)

    def lift_guardian_bar(self, actor: Actor, bar_id: UUID, *, proof: Proof | None = None) -> None:
        self.authorise(actor, Action.APPROVE_FLAG)
        bar = self._own_bar(actor, bar_id)
        bar.check_liftable(actor.staff, proposing=False)
        statement = _statement(actor, bar.id, EXECUTED, bar.subject, bar.guardian, bar.relation)
        bar.lift(actor.staff, self.sign_act(actor, statement, proof))
        self.save_as(actor.agency, bar)

    def guardian_bars(self, actor: Actor) -> list[dict[str, Any]]:
        """This agency's bars, proposed or in force (for its requesters and approvers)."""
        try:
            self.permit(actor, Action.REQUEST_FLAG)
        except PermissionDenied:
            self.permit(actor, Action.APPROVE_FLAG)
        out: list[dict[str, Any]] = []
        # (the year's rows name this agency's bars not lifted: a listing, not the bar's check — that is
        # `barred`, from the verified log)
        for bar in self._year_items(GuardianBar, "Proposed", "bar", actor.agency):
            if bar.lifted_by is None:
                out.append(
                    {"bar_id": str(bar.id), "subject": bar.subject, "guardian": bar.guardian,
                     "relation": bar.relation, "in_force": bar.in_force,
                     "lift_proposed": bar.lift_proposed_by is not None}
                )  # fmt: skip
        return out

    def barred(self, subject: str, guardian: str) -> bool:
        """Whether ``guardian`` may not act for ``subject`` now: a bar in force (any agency's) while any flag
        protects the subject, from the verified log."""
        state: Any = self.flag_state
        check = getattr(state, "barred", None)
        return bool(check(self.subject(subject), self.subject(guardian))) if check is not None else False

    def register_proxy(self, actor: Actor, subject: str, proxy: str) -> UUID:
        """As :meth:`IdentityCommands.register_proxy`, refused for a barred guardian (nothing recorded)."""
        self.authorise(actor, Action.OPEN_CASE)
        if self.barred(subject, proxy):
            raise PermissionDenied(
                "this person may not act for the protected person (a guardian bar is in force)",
                code=Code.GUARDIAN_BARRED,
            )
        return super().register_proxy(actor, subject, proxy)
