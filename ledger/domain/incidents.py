"""Security incidents a node raised about messages it parked, who acknowledged them, and the breach-report
drafts made from them (all local: never published).

A parked message is an *incident* when its reason is evidence of an attack or a compromise rather than of a
fault: a signature that does not verify or a key that may not sign it, two histories of one stream, a writer
that does not own the stream, a new event under a key revoked before it arrived. One :class:`Incident` is
raised per parked message and agency concerned, so each agency acknowledges its own; see
:mod:`ledger.app.incidents` for who is concerned and how redelivery is kept from raising it twice.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.errors import Code, InputError, StateConflict

__all__ = ["INCIDENT_CODES", "Incident", "IncidentKind", "IncidentReport", "incident_kind"]


class IncidentKind(StrEnum):
    FORGED_SIGNATURE = "forged_signature"
    FORK = "fork"
    FOREIGN_WRITER = "foreign_writer"
    REVOKED_KEY_LATE = "revoked_key_late"
    HUB_MISBEHAVIOUR = "hub_misbehaviour"  # the hub signed a map that drops a flag, or routed past one


# parking code (consumers/ingest.py, ledger/log/signing.py, ledger/app/holds.py) → incident kind. Codes not
# listed are faults, not attacks: malformed or unknown topics (a bug or an older node), gaps, an agency not
# yet trusted, a key not yet valid or expired (a wrong clock), an agency already on hold (raised when held).
INCIDENT_CODES: dict[str, IncidentKind] = {
    Code.BAD_SIGNATURE: IncidentKind.FORGED_SIGNATURE,
    Code.UNKNOWN_KEY: IncidentKind.FORGED_SIGNATURE,
    Code.WRONG_AGENCY: IncidentKind.FORGED_SIGNATURE,
    Code.REVOKED_KEY: IncidentKind.FORGED_SIGNATURE,  # stamped after its key's revocation: a stolen key's use
    Code.FORK: IncidentKind.FORK,
    Code.CHECKPOINT_FORK: IncidentKind.FORK,
    Code.FORGED_OWN: IncidentKind.FORK,
    Code.FOREIGN_WRITER: IncidentKind.FOREIGN_WRITER,
    Code.REVOKED_KEY_LATE: IncidentKind.REVOKED_KEY_LATE,
    Code.STAFF_SIGNATURE: IncidentKind.FORGED_SIGNATURE,  # an act no certified staff member signed
    Code.STAFF_ROLE: IncidentKind.FORGED_SIGNATURE,  # signed, by someone the roster never gave that role
    # issue 20: the hub's signed heads (docs/accountable-hub.md); a stale map alone is no incident (a replay
    # by the broker operator looks the same): it is refused and answered by staff
    Code.HUB_FORK: IncidentKind.FORK,
    Code.HUB_ROLLBACK: IncidentKind.FORK,
    Code.CHECKPOINT_ROLLBACK: IncidentKind.FORK,  # an agency's own log shown shrunk to a witness
    Code.FLAG_IGNORED: IncidentKind.HUB_MISBEHAVIOUR,
    Code.FLAG_DROPPED: IncidentKind.HUB_MISBEHAVIOUR,
    Code.HEAD_SKIPPED: IncidentKind.HUB_MISBEHAVIOUR,  # heads withheld from one party: its chain has a gap
    Code.HEAD_UNCOSIGNED: IncidentKind.HUB_MISBEHAVIOUR,  # a head kept from the witnesses (or them from it)
    Code.CHANGE_UNSEEN: IncidentKind.HUB_MISBEHAVIOUR,  # a holder's change never shown in a head
    Code.BAD_PERSON_KEY: IncidentKind.HUB_MISBEHAVIOUR,  # a map key the hub's VRF proof does not bind to the number
}


def incident_kind(code: str) -> IncidentKind | None:
    """The incident kind of a parking code, or None if parking it is no incident."""
    return INCIDENT_CODES.get(code)


class Incident(LedgerAggregate):
    """An alert to ``agency`` about one parked message; open until a staff member of ``agency`` acknowledges it.

    Every field copied from the message (``origin``, ``key_id``, ``stream``, …) is what the message *claims*,
    bounded and scrubbed of anything shaped like an individual number before it is recorded; ``owner`` and
    ``subjects`` come from this node's own verified log, ``claimed_subjects`` (pseudonyms only) from the
    message. ``message`` is the SHA-256 of the message's bytes (to find it among parked and dead-lettered
    ones); ``fingerprint`` is an HMAC of it under this node's own secret (:func:`ledger.app.incidents.fingerprint`),
    from which the id follows: a redelivered message finds its incident, and the id reveals nothing to
    whoever lacks the secret.
    """

    @staticmethod
    def create_id(agency: str, fingerprint: str, **_: Any) -> UUID:
        return UUID(bytes=hashlib.sha256(f"incident/{agency}/{fingerprint}".encode()).digest()[:16], version=4)

    @event("Raised")
    def __init__(
        self,
        agency: str,
        kind: str,
        code: str,
        message: str,
        fingerprint: str,
        origin: str,
        key_id: str,
        stream: str,
        stream_version: int,
        topic: str,
        event_id: str,
        stamped: str,
        owner: str,
        subjects: list[str],
        claimed_subjects: list[str],
        parked_id: int,
        source: str,
        reason: str,
        origin_held: bool,
    ) -> None:
        self.agency = agency
        self.kind = kind
        self.code = code
        self.message = message
        self.fingerprint = fingerprint
        self.origin = origin
        self.key_id = key_id
        self.stream = stream
        self.stream_version = stream_version  # (not `version`: the aggregate's own)
        self.topic = topic
        self.event_id = event_id
        self.stamped = stamped
        self.owner = owner
        self.subjects = list(subjects)
        self.claimed_subjects = list(claimed_subjects)
        self.parked_id = parked_id
        self.source = source
        self.reason = reason
        self.origin_held = origin_held
        self.acknowledged_by: str | None = None
        self.acknowledged_at: str | None = None
        self.note = ""

    @property
    def open(self) -> bool:
        return self.acknowledged_by is None

    def check_open(self) -> None:
        if not self.open:
            raise StateConflict(f"the incident was already acknowledged by {self.agency}/{self.acknowledged_by}")

    def acknowledge(self, by: str, note: str, at: str) -> None:
        """A staff member of the agency saw the alert and says what was done (the note is required)."""
        self.check_open()
        if not note.strip():
            raise InputError("say what was done about the incident (note)")
        self._acknowledged(by=by, note=note, at=at)

    @event("Acknowledged")
    def _acknowledged(self, by: str, note: str, at: str) -> None:
        self.acknowledged_by = by
        self.acknowledged_at = at
        self.note = note


class IncidentReport(LedgerAggregate):
    """A breach-report draft (``flagledger incident report``) was made: it names people (as pseudonyms) and
    what was attempted against their protection, so making one is recorded before it is shown."""

    @event("Drafted")
    def __init__(
        self, agency: str, staff: str, purpose: str, incidents: list[str], subjects: list[str], destination: str
    ) -> None:
        self.agency = agency
        self.staff = staff
        self.purpose = purpose
        self.incidents = list(incidents)
        self.subjects = list(subjects)
        self.destination = destination
