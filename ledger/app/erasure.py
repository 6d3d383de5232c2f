"""Erasure commands (issue 22, docs/erasure.md): two administrators destroy a person's data keys.

``request_erasure`` records who asked to erase whom and why (encrypted under the person's own data key);
``approve_erasure`` — another administrator — records the approval and the erasure (which keys) in one sealed
batch, and only after that batch is stored destroys the keys, so the log never claims an erasure that did not
happen; approving again (a crash between the two) destroys what is left and records nothing new.
"""

from __future__ import annotations

from typing import Any, Protocol, cast
from uuid import UUID

from ledger.app.access import LedgerAccess
from ledger.app.values import Actor
from ledger.domain.erasure import ErasureNotice, ErasureRequest
from ledger.domain.types import Action, RequestStatus
from ledger.errors import Code, ConfigurationError, InputError, RuleViolation
from ledger.log.datakeys import DataKeys

__all__ = ["ErasureCommands"]


class _HandoverQueue(Protocol):
    def handovers_for(self, agency: str) -> list[dict[str, Any]]: ...


class ErasureCommands(LedgerAccess):
    def _data_keys(self) -> DataKeys:
        dk = self.signed_mapper.data_keys
        if dk is None:
            raise ConfigurationError("this ledger holds no per-subject data keys (open it with `open_node`)")
        return dk

    def request_erasure(self, actor: Actor, subject: str, reason: str) -> UUID:
        """Ask to erase everything this node keeps under the person's data keys (their intake cases and notes,
        reads of their details); nothing is erased until another administrator approves."""
        self.authorise(actor, Action.ADMINISTER)
        self._data_keys()
        if not reason.strip():
            raise InputError("state why (e.g. the retention period of the case ended)", field="reason")
        self._no_open_handover(actor.agency, self.subject(subject))
        req = ErasureRequest(
            agency=actor.agency, subject=self.subject(subject), requested_by=actor.staff, reason=reason
        )
        self.save_as(actor.agency, req)
        return req.id

    def approve_erasure(self, actor: Actor, request_id: UUID, note: str = "") -> dict[str, object]:
        """Approve another administrator's erasure request: the approval and ``Erased`` (the keys' refs) are
        saved, then the keys are destroyed. Returns the request id, the refs and how many keys were destroyed."""
        self.authorise(actor, Action.ADMINISTER)
        dk = self._data_keys()
        req = self._own(self.load(ErasureRequest, request_id, "erasure request"), actor, "erasure request")
        if req.status == RequestStatus.APPROVED.value:  # approved before, keys maybe not all destroyed (a crash)
            refs, by = req.key_refs, req.decided_by or ""
        else:
            self._no_open_handover(actor.agency, req.subject)  # asked since the request
            refs = dk.refs_of(req.subject)
            req.approve(by=actor.staff, note=note, key_refs=refs)
            # other nodes hear of it in the same sealed batch (they drop their views of this agency's events)
            notice = ErasureNotice(
                agency=actor.agency, subject=req.subject, request_id=str(req.id), approved_by=actor.staff
            )
            self.save_as(actor.agency, req, notice)
            by = actor.staff
        destroyed = dk.destroy(refs, self.clock().isoformat(), str(req.id), by)
        return {"request_id": str(req.id), "key_refs": refs, "destroyed": destroyed}

    def _no_open_handover(self, agency: str, subject: str) -> None:
        """Hub mode: refuse while the hub asks ``agency`` to take over the person's protection and it does not
        hold every flag asked yet (an open handover, as its queue lists it): the erasure drops the hub's word on
        the person's handovers (``ledger.runtime.erasure_scrub``), and the person would leave the handover queue,
        her flags taken over by no one — the gap the perpetrator waits for. Taken over or withdrawn, the erasure
        may go ahead."""
        me = cast(_HandoverQueue, self)  # FlagLedger's HandoverCommands (ledger.app.handover)
        if getattr(me, "hub_moves", None) is None:  # shared mode: the erasure drops no handover
            return
        if any(h["subject"] == subject and h["source"] == "hub" for h in me.handovers_for(agency)):
            raise RuleViolation(
                "the hub asks this municipality to take over the person's protection: take it over (or wait for"
                " the request to be withdrawn) before erasing",
                code=Code.HANDOVER_OPEN,
            )

    def reject_erasure(self, actor: Actor, request_id: UUID, reason: str) -> None:
        self.authorise(actor, Action.ADMINISTER)
        req = self._own(self.load(ErasureRequest, request_id, "erasure request"), actor, "erasure request")
        req.reject(by=actor.staff, reason=reason)
        self.save_as(actor.agency, req)
