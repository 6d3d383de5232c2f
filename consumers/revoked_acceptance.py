"""``consumers replay ID --accept-revoked-key --as AGENCY/STAFF``: two administrators, two recorded steps.

The first run proposes (a ``RevokedKeyAcceptance.Proposed`` event naming the parked message, the event in it
and how the originating agency confirmed it); the second run, by a different administrator of the same
agency, approves (``…Approved``) and replays. Nothing is applied on one person's word, and the ledger says
who let which event in. :func:`consumers.parked.replay_parked` refuses ``accept_revoked_key`` for any
message without such an approval, so no other caller can skip the two steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from consumers.parked import approved_acceptance, message_digest, replay_parked
from ledger.app import Actor
from ledger.domain.parked import RevokedKeyAcceptance
from ledger.domain.types import Action
from ledger.errors import Code, FlagLedgerError, InputError, IntegrityError, NotFoundError, StateConflict
from ledger.log.envelope import Envelope

if TYPE_CHECKING:
    from consumers.ingest import Outcome
    from ledger.runtime.bootstrap import Node

__all__ = ["Acceptance", "accept_revoked", "approved_acceptance", "message_digest"]

REVOKED_KEY_LATE = Code.REVOKED_KEY_LATE


@dataclass(frozen=True)
class Acceptance:
    step: str  # "proposed" (waiting for a second administrator) | "approved" (then replayed)
    acceptance_id: str
    outcome: Outcome | None  # the replay's, once approved


def accept_revoked(node: Node, parked_id: int, actor: Actor, note: str = "") -> Acceptance:
    """One step of applying a ``revoked_key_late`` message: propose it, or approve and replay it.

    The proposer must say (``note``) how the originating agency confirmed it sent the event; the approver is
    a different administrator of the same agency. A message replayed already, or parked for another reason,
    is refused (exit 5) before anything is recorded.
    """
    from ledger.runtime.tables import parked_messages

    app = node.app
    app.authorise(actor, Action.ADMINISTER)
    with node.engine.connect() as conn:
        row = conn.execute(select(parked_messages).where(parked_messages.c.id == parked_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no parked message {parked_id}")
    if row["code"] != REVOKED_KEY_LATE:
        raise StateConflict(
            f"parked message {parked_id} was not parked for a revoked key ({row['code']}): fix its cause and "
            "replay it without --accept-revoked-key"
        )
    if row["status"] != "parked":
        raise StateConflict(f"parked message {parked_id} was replayed already ({row['status']})")
    raw = bytes(row["envelope"])
    digest = message_digest(raw)
    acceptance = app.find(RevokedKeyAcceptance, RevokedKeyAcceptance.create_id(actor.agency, digest))
    if acceptance is None:
        if not note.strip():
            raise InputError("say how the originating agency confirmed it sent this event (--note)")
        try:
            h = Envelope.from_bytes(raw).header
        except (FlagLedgerError, ValueError) as exc:
            raise IntegrityError(f"parked message {parked_id} no longer decodes") from exc
        acceptance = RevokedKeyAcceptance(
            agency=actor.agency,
            digest=digest,
            parked_id=parked_id,
            event_id=h.event_id,
            origin=h.origin,
            key_id=h.key_id,
            stream=h.stream,
            version=h.version,
            topic=h.topic,
            proposed_by=actor.staff,
            note=note,
        )
        app.save_as(actor.agency, acceptance)
        return Acceptance("proposed", str(acceptance.id), None)
    if acceptance.approved_by is None:
        acceptance.approve(actor.staff, note)
        app.save_as(actor.agency, acceptance)  # recorded before the event is let in
    return Acceptance("approved", str(acceptance.id), replay_parked(node, parked_id, accept_revoked_key=True))
