"""Information provision (Points 4, 5): a query answered automatically or held for a reviewer, and what the
querier learns (:meth:`QuerierAnswer.of`, the one mapping)."""

from __future__ import annotations

from uuid import UUID

from ledger import clock
from ledger.app.access import LedgerAccess
from ledger.app.answers import hold_reason, open_file
from ledger.app.values import Actor, QuerierAnswer
from ledger.domain.agencies import Agency
from ledger.domain.answers import HoldReason
from ledger.domain.base import LedgerAggregate
from ledger.domain.bodies import kind_refusal
from ledger.domain.law import check_query
from ledger.domain.provision import ProbeNotice, ProvisionRequest
from ledger.domain.types import (
    Action,
    Applicant,
    agency_code,
    parse_enum,
)
from ledger.errors import (
    Code,
    ConfigurationError,
    NotFoundError,
    PermissionDenied,
)


class ProvisionCommands(LedgerAccess):
    """Information provision between agencies and the held-request review."""

    # -- information provision (Points 4, 5) ---------------------------------------------------------
    def _national_flags(self, subject: str) -> dict[str, list[str]]:
        if self.flag_state is None:
            raise ConfigurationError("no nationwide flag state is wired: build the app with ledger.runtime.bootstrap")
        return self.flag_state.flags_for(subject)

    def request_provision(
        self,
        actor: Actor,
        provider: str,
        subject: str,
        *,
        legal_item: int,
        procedure: str,
        info_kind: str,
        applicant: str = Applicant.UNKNOWN.value,
    ) -> QuerierAnswer:
        """Agency ``actor.agency`` queries ``provider`` (hosted here) about ``subject``: its counter staff, or
        its linkage gateway's system account relaying the query."""
        own = self.authorise_any(actor, Action.REQUEST_PROVISION)  # (a hosted agency: registered, with its kind)
        return self._provision(
            actor.agency,
            provider,
            subject,
            legal_item=legal_item,
            procedure=procedure,
            info_kind=info_kind,
            applicant=applicant,
            querier_kind=own.kind,
        )

    def receive_query(
        self,
        querier: str,
        provider: str,
        subject: str,
        *,
        legal_item: int,
        procedure: str,
        info_kind: str,
        applicant: str = Applicant.UNKNOWN.value,
        staff_answer: bool = False,
    ) -> QuerierAnswer:
        """A query from an agency served by another node, as the information-provision network delivers it
        to ``provider``'s intermediate server. The network authenticates the querier, so no staff of ours
        is involved; the answer is what the network relays back (the querier's node learns the rest from
        the provider's published events, exactly as for :meth:`request_provision`). ``staff_answer``: the
        hub's mark that a holder elsewhere protects the person (hub mode, docs/linkage.md) — held for staff
        whatever this node holds itself, like a flag held here, and naming no holder."""
        agency_code(querier, "querier")
        known = self.find(Agency, Agency.create_id(querier))
        refusal = kind_refusal(known.kind, Action.REQUEST_PROVISION) if known is not None else None
        if refusal is not None:  # a querier this node knows to be the police is no 情報照会者 (docs/bodies.md)
            raise PermissionDenied(refusal, code=Code.KIND_NOT_PERMITTED)
        return self._provision(
            querier,
            provider,
            subject,
            legal_item=legal_item,
            procedure=procedure,
            info_kind=info_kind,
            applicant=applicant,
            staff_answer=staff_answer,
            # a querier whose registration has not arrived here: its kind is checked by the hub (docs/bodies.md)
            querier_kind=known.kind if known is not None else None,
        )

    def hosted_kind(self, code: str) -> str | None:
        """The kind of hosted agency ``code`` (None while it is not registered), read from its verified
        ``Agency.Registered`` once, then from memory: no query loads the agency again. Safe because the hosted
        set is fixed when the node opens and an agency's kind only at its registration — no Agency event
        changes it (tests/unit/domain/test_domain_agencies.py fails if one is added; a kind change would have to drop
        the entry here). An unregistered agency is not remembered: it may be registered later, by this
        process or by the CLI beside it."""
        kind = self._hosted_kinds.get(code)
        if kind is None and code in self.hosted:
            agency = self.find(Agency, Agency.create_id(code))
            if agency is not None:
                kind = self._hosted_kinds[code] = agency.kind
        return kind

    def _provision(
        self,
        querier: str,
        provider: str,
        subject: str,
        *,
        legal_item: int,
        procedure: str,
        info_kind: str,
        applicant: str,
        staff_answer: bool = False,
        querier_kind: str | None = None,
    ) -> QuerierAnswer:
        agency_code(provider, "provider")
        if provider not in self.hosted:  # (never echoed: it may be an individual number typed in the wrong field)
            raise NotFoundError("the providing agency is not served by this node")
        # the law catalogue: nothing beyond the lawful purpose, and only under a row the querier's kind may ask and
        # the provider's kind may answer (a hosted provider is registered here, so its kind is known)
        check_query(legal_item, procedure, info_kind, querier_kind, self.hosted_kind(provider))
        parse_enum(Applicant, applicant, "applicant")
        subj = self.subject(subject)
        request = ProvisionRequest(
            agency=provider,
            querier=querier,
            subject=subj,
            legal_item=legal_item,
            procedure=procedure,
            info_kind=info_kind,
            applicant=applicant,
        )
        state = self._national_flags(subj)
        to_save: list[LedgerAggregate] = [request]
        reason = hold_reason(
            self, provider, subj, state, legal_item=legal_item, procedure=procedure, info_kind=info_kind
        )
        if staff_answer and reason is None:
            reason = HoldReason.FLAG  # a holder elsewhere: never answered automatically
        if reason is not None:
            # every kind alike to the querier (same Held event, same answer); the reason stays in the local file
            request.hold(flags=sorted(state), batched=True)
            to_save.append(open_file(self, request, reason, clock.now()))
        else:
            request.provide_automatically()
        if state:  # the agencies protecting the person hear of every request about them, held or not
            to_save.append(
                ProbeNotice(
                    agency=provider,
                    holders=sorted({a for hs in state.values() for a in hs}),
                    request_id=request.id,
                    querier=querier,
                    procedure=procedure,
                    legal_item=legal_item,
                )
            )
        self.save_as(provider, *to_save)
        return self.querier_answer(request.id)

    def provision_request(self, request_id: UUID) -> ProvisionRequest:
        return self.load(ProvisionRequest, request_id, "provision request")

    def provision_answer(self, actor: Actor, request_id: UUID) -> QuerierAnswer:
        """What staff of ``actor``'s agency may see of a provision request: the querier's answer, to the
        querying or the providing agency only; any other agency's request is answered like an unknown one."""
        self.permit(actor)
        r = self.provision_request(request_id)
        if actor.agency not in (r.querier, r.agency):
            raise self._unknown("provision request", request_id)
        return self.querier_answer(request_id)

    def querier_answer(self, request_id: UUID) -> QuerierAnswer:
        r = self.provision_request(request_id)
        return QuerierAnswer.of(str(r.id), r.status, released=r.answer_released)

    def answer_released(self, request_id: UUID) -> bool:
        """Whether the querier may see the decision on ``request_id`` yet (batch release, issue 21)."""
        return self.provision_request(request_id).answer_released

    def propose_decision(
        self, actor: Actor, request_id: UUID, decision: str, applicant_check: str, note: str = ""
    ) -> None:
        """A reviewer at the provider proposes to provide or refuse a held request (after Point 5's check)."""
        self.authorise(actor, Action.REVIEW_HELD)
        parse_enum(Applicant, applicant_check, "applicant check")
        request = self._own(self.provision_request(request_id), actor, "provision request")
        request.propose(decision, applicant_check, actor.staff, note)
        self.save_as(actor.agency, request)

    def approve_decision(self, actor: Actor, request_id: UUID, proposal_version: int) -> str:
        """Approve the proposal ``proposal_version`` (the version of the DecisionProposed event the approver
        was shown: ``HeldRequest.proposal_version``); a stale one is refused with ``stale_proposal``."""
        self.authorise(actor, Action.APPROVE_HELD)
        request = self._own(self.provision_request(request_id), actor, "provision request")
        request.approve_decision(actor.staff, proposal_version)
        self.save_as(actor.agency, request)
        assert request.status is not None
        return request.status
