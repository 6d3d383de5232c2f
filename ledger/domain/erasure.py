"""Erasure of a person's data (issue 22): four eyes at the agency, then their data keys are destroyed.

A staff member with ``administer`` asks (``Requested``: whom and why — itself encrypted under the person's data
key, so it goes with them); another administrator approves (``Approved``) and, in the same sealed batch, the
erasure is recorded (``Erased``: which data keys, by which approval, when). Only then are the keys destroyed
(:mod:`ledger.app.erasure`). ``Erased`` names no person: data key refs are random, so the record of the erasure
stays in the log without keeping what was erased. Local only, like the events it erases.

:class:`ErasureNotice` is the one shared part: saved with the approval, it tells other nodes that this agency
erased the person (their pseudonym, the request, the approver), so each drops what its views hold of this agency's
events about them (``projections.timeline``); the local events erased never left this node.
"""

from __future__ import annotations

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.four_eyes import FourEyesRequest

__all__ = ["ErasureNotice", "ErasureRequest"]


class ErasureRequest(LedgerAggregate, FourEyesRequest):
    WHAT = "erasure request"
    OWN_DECISION = "the requester cannot approve their own erasure request (four eyes)"

    @event("Requested")
    def __init__(self, agency: str, subject: str, requested_by: str, reason: str) -> None:
        self.agency = agency
        self.subject = subject
        self.reason = reason
        self.open_request(requested_by)
        self.key_refs: list[str] = []

    def approve(self, by: str, note: str, key_refs: list[str]) -> None:
        self.check_decidable(by)
        self._approved(by=by, note=note)
        self._erased(approved_by=by, key_refs=sorted(key_refs))

    _approved = event("Approved")(FourEyesRequest.record_approval)
    _rejected = event("Rejected")(FourEyesRequest.record_rejection)

    @event("Erased")
    def _erased(self, approved_by: str, key_refs: list[str]) -> None:
        self.key_refs = list(key_refs)


class ErasureNotice(LedgerAggregate):
    """The signed news of an erasure, for other nodes (shared; a random stream id, one per erasure)."""

    SHARED = True

    @event("Published")
    def __init__(self, agency: str, subject: str, request_id: str, approved_by: str) -> None:
        self.agency = agency
        self.subject = subject
        self.request_id = request_id
        self.approved_by = approved_by
