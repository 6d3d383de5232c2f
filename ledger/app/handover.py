"""Moves and handover (issue 21, docs/year.md): a protected person's residence change asks the new municipality
to take over protection through its own chain; until it holds, the old holder releases only with an approved
decision naming the risk; a release that would leave a flag with no holder anywhere needs one more approval and
is shown in every holder's queue.

Who holds anywhere is asked of one function, :meth:`HandoverCommands.holders_anywhere`: in shared mode every node
ingests every shared event, so the verified nationwide state answers it. In linkage hub mode a node sees only its
own flags, and the hub's word on handovers (:class:`HubMoveFacts`, wired by ``ledger.runtime.handovers``): the
handovers it was asked to take over (until the hub withdraws one: the person moved on), and the flags the
municipality it reported a move to has taken over.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any, Protocol, TypeVar
from uuid import UUID, uuid4

from eventsourcing.utils import get_topic

from ledger.app.credentials import StaffProof, WebAuthnProof
from ledger.app.flags import FlagCommands
from ledger.app.values import Actor
from ledger.app.year_index import CreatedIndex
from ledger.domain.agencies import Agency
from ledger.domain.base import LedgerAggregate
from ledger.domain.bodies import BodyOutcome
from ledger.domain.cases import ProtectionCase
from ledger.domain.flags import BodyRequest, FlagRequest
from ledger.domain.guardians import GuardianBar
from ledger.domain.moves import LastHolderWarning, MoveSource, ReleaseDecision, ResidenceChange, RiskKind
from ledger.domain.staff_acts import APPROVED, REQUESTED, act_statement, details_digest, note_digest
from ledger.domain.terms import SupportTerm
from ledger.domain.types import Action, AgencyKind, Flag, RequestKind, agency_code, calendar_day, parse_enum
from ledger.errors import Code, ConfigurationError, InputError, NotFoundError, PermissionDenied, StateConflict

A = TypeVar("A", bound=LedgerAggregate)
Proof = StaffProof | WebAuthnProof


# the creation events the year's reads list (ledger/app/year_index.py)
YEAR_EVENTS = (
    ResidenceChange.Recorded,  # type: ignore[attr-defined]
    LastHolderWarning.Raised,  # type: ignore[attr-defined]
    ReleaseDecision.Proposed,  # type: ignore[attr-defined]
    SupportTerm.Applied,  # type: ignore[attr-defined]
    FlagRequest.Requested,  # type: ignore[attr-defined]
    ProtectionCase.Opened,  # type: ignore[attr-defined]
    GuardianBar.Proposed,  # type: ignore[attr-defined]
    BodyRequest.Sent,  # type: ignore[attr-defined]
    BodyOutcome.Recorded,  # type: ignore[attr-defined]
)


class HubMoveFacts(Protocol):
    """What the linkage hub told a node in hub mode about handovers (ledger.runtime.handovers)."""

    def taken_over(self, subject: str) -> dict[str, list[str]]:
        """Flag → the municipality this agency reported ``subject`` moved to, for each flag it took over."""
        ...

    def asked(self, agency: str) -> list[dict[str, Any]]:
        """The hub's requests that ``agency`` take over flags: handover id, subject, moved_on, flags."""
        ...

    def taken_onward(self, subject: str, move: UUID) -> set[str]:
        """The flags the hub said are held where ``subject`` moved on to after ``move`` (a residence change this
        agency reported, superseded before the municipality it named took over; where to is not named)."""
        ...

    def warned(self, agency: str) -> list[dict[str, Any]]:
        """The hub's warnings to ``agency`` that another holder asked to release flags no one else holds:
        warning id, subject, flags (not who releases)."""
        ...

    def refused(self, agency: str) -> list[dict[str, Any]]:
        """Moves ``agency`` reported that the hub refused (``not_residence``: no handover under way): the move's
        id, subject, reason, when told."""
        ...


class HandoverCommands(FlagCommands):
    """Residence changes, the handover queue, named-risk decisions and the release guard."""

    hub_moves: HubMoveFacts | None = None  # hub mode: what the hub said (the nationwide state is the hub's)
    _year_index: CreatedIndex | None = None

    def _year_aggregates(self, cls: type[A], event: str) -> Iterator[A]:  # (LedgerAccess's, from the index)
        """As ``_aggregates`` (every ``cls`` created in the log, verified as loaded, in log order), the ids read
        from the year index instead of a pass over the whole log."""
        if self._year_index is None:
            self._year_index = CreatedIndex.of(lambda: self.recorder, YEAR_EVENTS)
        for aid in self._year_index.ids(get_topic(getattr(cls, event))):
            agg = self.find(cls, aid)
            if agg is not None:
                yield agg

    # -- who holds anywhere ---------------------------------------------------------------------------------
    def holders_anywhere(self, subject: str) -> dict[str, list[str]]:
        """Flag → every agency holding it on the person the pseudonym ``subject`` names, nationwide (in hub
        mode: this node's own, and the municipality it handed over to, as the hub said)."""
        if self.flag_state is None:
            raise ConfigurationError("no nationwide flag state is wired: build the app with ledger.runtime.bootstrap")
        held = self.flag_state.flags_for(subject)
        if self.hub_moves is None:
            return held
        out = {flag: list(who) for flag, who in held.items()}
        for flag, who in self.hub_moves.taken_over(subject).items():
            out.setdefault(flag, []).extend(a for a in who if a not in out[flag])
        return out

    # -- residence changes (転出/転入) ------------------------------------------------------------------
    def record_move(
        self,
        actor: Actor,
        subject: str,
        *,
        to_agency: str,
        from_agency: str = "",
        moved_on: date,
        source: str = MoveSource.COUNTER.value,
    ) -> UUID | None:
        """Record that ``subject`` moved from ``from_agency`` (empty: not known here) to ``to_agency``, entered at
        either municipality (``actor.agency`` is one of the two). Recorded only for a person protected somewhere
        (None otherwise): a move of anyone else is no handover and would only spread a pseudonym."""
        self.authorise(actor, Action.REQUEST_FLAG)
        src = parse_enum(MoveSource, source, "source")
        if not from_agency and actor.agency != to_agency:
            from_agency = actor.agency  # (転出 entered at the old municipality: it is the one moved from)
        return self._record_move(actor.agency, actor.staff, subject, to_agency, from_agency, moved_on, src)

    def receive_residence_change(
        self, agency: str, subject: str, *, to_agency: str, from_agency: str = "", moved_on: date
    ) -> UUID | None:
        """A residence change the residence registry (住民基本台帳) reported to hosted agency ``agency``."""
        if not self.ids.hosts(agency):
            raise NotFoundError("only an agency hosted here receives the registry's residence changes")
        return self._record_move(agency, "registry", subject, to_agency, from_agency, moved_on, MoveSource.REGISTRY)

    def _record_move(
        self,
        agency: str,
        by: str,
        subject: str,
        to_agency: str,
        from_agency: str,
        moved_on: date,
        source: MoveSource,
    ) -> UUID | None:
        agency_code(to_agency, "to_agency")
        if from_agency:
            agency_code(from_agency, "from_agency")
        if agency not in (to_agency, from_agency):
            raise InputError("a move is recorded by the municipality moved from or the one moved to", field="agency")
        if from_agency == to_agency:
            raise InputError("a move needs two different municipalities", field="to_agency")
        for code in (to_agency, from_agency):
            known = self.find(Agency, Agency.create_id(code=code)) if code else None
            # (an agency not seen here yet is taken at its word: its registration may still be on its way)
            if known is not None and known.kind != AgencyKind.MUNICIPALITY.value:
                raise InputError("a residence change is between municipalities", field="to_agency")
        calendar_day(moved_on, "moved_on")
        subj = self.subject(subject)
        if not self.holders_anywhere(subj) and not self._asked_here(agency, subj):
            return None
        move = ResidenceChange(
            agency=agency,
            subject=subj,
            from_agency=from_agency or None,
            to_agency=to_agency,
            moved_on=moved_on.isoformat(),
            source=source.value,
            recorded_by=by,
        )
        self.save_as(agency, move)
        return move.id

    def _asked_here(self, agency: str, subject: str) -> bool:
        """Hub mode: the hub asked ``agency`` to take over the person's protection and has not withdrawn it — she
        is protected somewhere even if not here yet, so her moving on is recorded (and the hub withdraws it)."""
        return self.hub_moves is not None and any(a["subject"] == subject for a in self.hub_moves.asked(agency))

    def latest_move(self, subject: str) -> ResidenceChange | None:
        """The person's most recent recorded move (by date, then by log order)."""
        latest: ResidenceChange | None = None
        for move in self._year_aggregates(ResidenceChange, "Recorded"):
            if move.subject == subject and (latest is None or move.moved_on >= latest.moved_on):
                latest = move
        return latest

    def handovers_for(self, agency: str) -> list[dict[str, Any]]:
        """Handover requests to ``agency``: people whose latest move is to it, protected somewhere, with the
        flags it does not hold yet (the old municipality is not named: who protects is not shown to others)."""
        out: dict[str, dict[str, Any]] = {}
        for move in self._latest_moves_to(agency):
            holders = self.holders_anywhere(move.subject)
            missing = sorted(f for f, who in holders.items() if agency not in who)
            if not missing:
                continue
            out[move.subject] = {
                "move_id": str(move.id),
                "subject": move.subject,
                "moved_on": move.moved_on,
                "source": move.source,
                "flags_to_take_over": missing,
            }
        if self.hub_moves is not None:  # hub mode: the hub's requests, naming neither holder nor origin
            for asked in self.hub_moves.asked(agency):
                holders = self.holders_anywhere(asked["subject"])
                missing = sorted(f for f in asked["flags"] if agency not in holders.get(f, ()))
                if missing:
                    out[asked["subject"]] = {
                        "move_id": asked["handover_id"],
                        "subject": asked["subject"],
                        "moved_on": asked["moved_on"],
                        "source": "hub",
                        "flags_to_take_over": missing,
                    }
        return sorted(out.values(), key=lambda h: (h["moved_on"], h["move_id"]))

    def _latest_moves_to(self, agency: str) -> list[ResidenceChange]:
        """Each person's latest move (by date, then log order, as :meth:`latest_move` picks it) when it is to
        ``agency``: the year's rows name them; without the rows, from every move the year index lists."""
        if self.year_rows is not None:
            loaded = (self.find(ResidenceChange, mid) for mid in self.year_rows.latest_moves_to(agency))
            return [m for m in loaded if isinstance(m, ResidenceChange) and m.to_agency == agency]
        latest_of: dict[str, ResidenceChange] = {}
        for move in self._year_aggregates(ResidenceChange, "Recorded"):
            seen = latest_of.get(move.subject)
            if seen is None or move.moved_on >= seen.moved_on:
                latest_of[move.subject] = move
        return [m for m in latest_of.values() if m.to_agency == agency]

    def moves_refused(self, agency: str) -> list[dict[str, Any]]:
        """Hub mode: moves ``agency`` reported that the hub refused — no municipality was asked to take over, so
        its staff must check where the person lives and report the move again (none in shared mode)."""
        return [] if self.hub_moves is None else self.hub_moves.refused(agency)

    def last_holder_warnings(self, agency: str) -> list[dict[str, Any]]:
        """Releases requested anywhere that would leave a flag with no holder, on people ``agency`` holds."""
        held = {s for s, _ in self._holdings_of(agency)}
        out: list[dict[str, Any]] = []
        for warning in self._year_items(LastHolderWarning, "Raised", "warning"):
            if warning.subject in held:
                out.append(
                    {
                        "subject": warning.subject,
                        "flags": list(warning.flags),
                        "request_id": str(warning.request_id),
                        "releasing_agency_is_you": warning.agency == agency,
                    }
                )
        if self.hub_moves is not None:  # hub mode: another holder's, as the hub routed it (naming no holder)
            for routed in self.hub_moves.warned(agency):
                if routed["subject"] in held:  # until this agency lets go of the person too
                    out.append(
                        {
                            "subject": routed["subject"],
                            "flags": routed["flags"],
                            "request_id": routed["warning_id"],
                            "releasing_agency_is_you": False,
                        }
                    )
        return out

    def _holdings_of(self, agency: str) -> list[tuple[str, str]]:
        state: Any = self.flag_state
        return list(state.holdings_of(agency)) if hasattr(state, "holdings_of") else []

    # -- a decision naming the risk --------------------------------------------------------------------------
    def propose_release_risk(
        self,
        actor: Actor,
        subject: str,
        flags: Sequence[str],
        risk: str,
        *,
        kind: str = RiskKind.HANDOVER_GAP.value,
        proof: Proof | None = None,
        decision_id: UUID | None = None,
    ) -> UUID:
        """Name the risk of releasing ``flags`` while the new municipality does not hold them (Point 6). Signed by
        the proposer's unlocked key, or ``proof`` over :meth:`risk_statement` for ``decision_id``."""
        subj, fl = self._risk_terms(actor, subject, flags, risk, kind)
        did = decision_id if proof is not None and decision_id is not None else uuid4()
        signed = self.sign_act(actor, _risk_statement(actor, did, kind, risk, subj, fl, REQUESTED), proof)
        decision = ReleaseDecision(
            id=did,
            agency=actor.agency,
            subject=subj,
            flags=fl,
            kind=kind,
            risk=risk,
            proposed_by=actor.staff,
            staff_signature=signed,
        )
        self.save_as(actor.agency, decision)
        return decision.id

    def _risk_terms(
        self, actor: Actor, subject: str, flags: Sequence[str], risk: str, kind: str
    ) -> tuple[str, list[str]]:
        self.authorise(actor, Action.REQUEST_FLAG)
        parse_enum(RiskKind, kind, "risk kind")
        fl = sorted({parse_enum(Flag, f, "flag").value for f in flags})
        if not fl:
            raise InputError("name at least one flag")
        if not risk.strip():
            raise InputError("name the risk in words: who may learn what if protection stops here", field="risk")
        return self.subject(subject), fl

    def risk_statement(
        self,
        actor: Actor,
        decision_id: UUID,
        *,
        subject: str = "",
        flags: Sequence[str] = (),
        risk: str = "",
        kind: str = RiskKind.HANDOVER_GAP.value,
    ) -> bytes:
        """What ``actor`` signs to propose a named risk as ``decision_id`` (``subject`` given) or to approve this
        agency's decision ``decision_id``."""
        if subject:
            subj, fl = self._risk_terms(actor, subject, flags, risk, kind)
            return _risk_statement(actor, decision_id, kind, risk, subj, fl, REQUESTED)
        d = self._own(self.load(ReleaseDecision, decision_id, "release decision"), actor, "release decision")
        return _risk_statement(actor, d.id, d.kind, d.risk, d.subject, d.flags, APPROVED)

    def release_risks(self, actor: Actor) -> list[dict[str, Any]]:
        """This agency's named-risk decisions not used by a release yet (the console's year page)."""
        try:
            self.permit(actor, Action.REQUEST_FLAG)
        except PermissionDenied:
            self.permit(actor, Action.APPROVE_FLAG)
        out: list[dict[str, Any]] = []
        for d in self._year_items(ReleaseDecision, "Proposed", "risk", actor.agency):
            if d.used_by is None:
                out.append({"decision_id": str(d.id), "subject": d.subject, "flags": list(d.flags),
                            "proposed_by": d.proposed_by, "approved": d.approved_by is not None})  # fmt: skip
        return out

    def approve_release_risk(self, actor: Actor, decision_id: UUID, *, proof: Proof | None = None) -> None:
        self.authorise(actor, Action.APPROVE_FLAG)
        decision = self._own(self.load(ReleaseDecision, decision_id, "release decision"), actor, "release decision")
        statement = _risk_statement(
            actor, decision.id, decision.kind, decision.risk, decision.subject, decision.flags, APPROVED
        )
        decision.approve(actor.staff, self.sign_act(actor, statement, proof))
        self.save_as(actor.agency, decision)

    # -- the hooks on flag requests (ledger.app.flags) --------------------------------------------------------
    def _leaves_no_holder(self, agency: str, subject: str, flags: Sequence[str]) -> bool:
        holders = self.holders_anywhere(subject)
        return any(set(holders.get(f, ())) <= {agency} for f in flags)

    def _extra_approvals(self, agency: str, subject: str, kind: str, flags: list[str]) -> int:
        return 1 if kind == RequestKind.RELEASE.value and self._leaves_no_holder(agency, subject, flags) else 0

    def _on_request(self, actor: Actor, request: FlagRequest) -> list[LedgerAggregate]:
        if request.kind != RequestKind.RELEASE.value or not self._leaves_no_holder(
            actor.agency, request.subject, request.flags
        ):
            return []
        warning = LastHolderWarning(
            agency=actor.agency, subject=request.subject, flags=request.flags, request_id=request.id, by=actor.staff
        )
        return [warning]

    def _before_execute(self, actor: Actor, request: FlagRequest) -> list[LedgerAggregate]:
        if request.kind != RequestKind.RELEASE.value:
            return []
        chain = self.agency(actor.agency).approvals_required
        if self._leaves_no_holder(actor.agency, request.subject, request.flags) and request.approvals_required <= chain:
            raise StateConflict(
                "this release would leave the person with no holder anywhere: it needs a second approval and a "
                "warning to every holder; request the release again",
                code=Code.LAST_HOLDER,
            )
        move = self.latest_move(request.subject)
        if move is None or move.to_agency == actor.agency:
            return []
        holders = self.holders_anywhere(request.subject)
        onward = self.hub_moves.taken_onward(request.subject, move.id) if self.hub_moves is not None else set()
        if all(move.to_agency in holders.get(f, ()) or f in onward for f in request.flags):
            return []  # the new municipality holds (or, hub mode, the one she moved on to): the handover is done
        for decision in self._year_aggregates(ReleaseDecision, "Proposed"):
            if decision.agency == actor.agency and decision.covers(
                request.subject, request.flags, RiskKind.HANDOVER_GAP.value
            ):
                decision.use(request.id)
                return [decision]
        raise StateConflict(
            "the person has moved and the new municipality does not hold these flags yet: release only with an "
            "approved decision naming the risk (`flagledger year risk propose|approve`)",
            code=Code.HANDOVER_PENDING,
        )


def _risk_statement(
    actor: Actor, decision: UUID, kind: str, risk: str, subject: str, flags: Sequence[str], act: str
) -> bytes:
    """What the proposer and the approver of a named risk sign (the words stay local; their digest is signed)."""
    digest = details_digest(kind, risk, subject, ",".join(sorted(flags)))
    return act_statement(actor.agency, act, "risk:" + str(decision), digest, actor.staff, note_digest(""))
