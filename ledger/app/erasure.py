"""Erasure commands (issue 22, docs/erasure.md): two administrators destroy a person's data keys.

``request_erasure`` records who asked to erase whom and why (encrypted under the person's own data key);
``approve_erasure`` — another administrator — records the approval and the erasure (which keys) in one sealed
batch, and only after that batch is stored destroys the keys, so the log never claims an erasure that did not
happen; approving again (a crash between the two) destroys what is left and records nothing new.
"""

from __future__ import annotations

from uuid import UUID

from ledger.app.access import LedgerAccess
from ledger.app.values import Actor
from ledger.domain.erasure import ErasureNotice, ErasureRequest
from ledger.domain.types import Action, RequestStatus
from ledger.errors import ConfigurationError, InputError
from ledger.log.datakeys import DataKeys

__all__ = ["ErasureCommands"]


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

    def reject_erasure(self, actor: Actor, request_id: UUID, reason: str) -> None:
        self.authorise(actor, Action.ADMINISTER)
        req = self._own(self.load(ErasureRequest, request_id, "erasure request"), actor, "erasure request")
        req.reject(by=actor.staff, reason=reason)
        self.save_as(actor.agency, req)
