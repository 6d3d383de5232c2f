"""Answers that need staff (issue 21): why a request is held (recorded at the provider only), the provider's
answering policy, the release of staff-made answers at the provider's batch times, and the due dates and
escalations of held requests. The domain rules are in :mod:`ledger.domain.answers`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.app.access import LedgerAccess
from ledger.app.values import Actor
from ledger.domain.answers import (
    DEFAULT_BATCH_TIMES,
    DEFAULT_DUE_BUSINESS_DAYS,
    AnswerPolicy,
    CopyNote,
    CopyState,
    HeldFile,
    HoldReason,
    ManualKind,
    add_business_days,
    last_batch,
    local_day,
    next_batch,
)
from ledger.domain.base import LedgerAggregate
from ledger.domain.provision import ProvisionRequest, must_hold
from ledger.domain.types import Action, parse_enum
from ledger.errors import PermissionDenied, StateConflict

HELD_OPENED = "ledger.domain.answers:HeldFile.Opened"
HELD_CLOSED = "ledger.domain.answers:HeldFile.Closed"


def policy_of(app: LedgerAccess, agency: str) -> AnswerPolicy | None:
    """The agency's recorded answering policy, or None (the defaults of ledger.domain.answers apply)."""
    return app.find(AnswerPolicy, AnswerPolicy.create_id(agency))


def _batch_times(app: LedgerAccess, agency: str) -> list[str]:
    policy = policy_of(app, agency)
    return list(policy.batch_times) if policy is not None else list(DEFAULT_BATCH_TIMES)


def hold_reason(
    app: LedgerAccess,
    provider: str,
    subject: str,
    national_flags: Mapping[str, Sequence[str]],
    *,
    legal_item: int,
    procedure: str,
    info_kind: str,
) -> HoldReason | None:
    """Why a request to ``provider`` needs staff, or None when it is answered automatically."""
    if must_hold(national_flags):
        return HoldReason.FLAG
    note = app.find(CopyNote, app.ids.copy_note(provider, subject, info_kind))
    if note is not None and note.state == CopyState.CHECK.value:
        return HoldReason.CHECK
    if note is not None and note.state == CopyState.NO_DATA.value:
        return HoldReason.NO_DATA
    policy = policy_of(app, provider)
    if policy is not None and policy.is_manual(legal_item, procedure, info_kind):
        return HoldReason.POLICY
    return None


def open_file(app: LedgerAccess, request: ProvisionRequest, reason: HoldReason, now: datetime) -> HeldFile:
    """The provider's file on a request it holds: the reason and the due date its policy gives."""
    policy = policy_of(app, request.agency)
    days = policy.due_business_days if policy is not None else DEFAULT_DUE_BUSINESS_DAYS
    received = local_day(now)
    return HeldFile(
        agency=request.agency,
        request_id=request.id,
        reason=reason.value,
        received=received.isoformat(),
        due=add_business_days(received, days).isoformat(),
    )


def _topic_streams(app: LedgerAccess, topic: str) -> list[UUID]:
    out: list[UUID] = []
    start = 1
    while True:
        rows = app.recorder.select_notifications(start=start, limit=1000, topics=[topic])
        out.extend(UUID(str(n.originator_id)) for n in rows)
        if len(rows) < 1000:
            return out
        start = rows[-1].id + 1


def _held_files(app: LedgerAccess) -> list[HeldFile]:
    """The held files of the hosted agencies whose answer is not released yet (closed ones are not loaded)."""
    closed = set(_topic_streams(app, HELD_CLOSED))
    out: list[HeldFile] = []
    for stream in _topic_streams(app, HELD_OPENED):
        held = None if stream in closed else app.find(HeldFile, stream)
        if held is not None and held.agency in app.hosted and held.released is None:
            out.append(held)
    return out


def run_batches(app: LedgerAccess, now: datetime) -> dict[str, Any]:
    """The batch step (the node loop runs it, or ``flagledger provision release``): every staff-made answer
    decided before the provider's latest batch instant is released to the querier with that instant, and every
    held request past its due date is escalated. Overdue never answers anything."""
    released: list[str] = []
    escalated: list[str] = []
    today = local_day(now)
    for held in _held_files(app):
        if held.released is not None:
            continue
        request = app.load(ProvisionRequest, held.request_id, "provision request")
        if request.decided:
            slot = last_batch(now, _batch_times(app, held.agency))
            if request.modified_on <= slot:  # decided before this batch: never released the moment it is decided
                request.release(batch=slot.isoformat())
                held.close(batch=slot.isoformat())
                if _saved(app, held.agency, request, held):
                    released.append(str(request.id))
            continue
        due_level = held.escalation_due(today)
        if due_level > held.level:
            for level in range(held.level + 1, due_level + 1):
                held.escalate(level, today)
            if _saved(app, held.agency, held):
                escalated.append(str(request.id))
    return {"released": released, "escalated": escalated}


def _saved(app: LedgerAccess, agency: str, *aggregates: LedgerAggregate) -> bool:
    """Save one request's step; another process (the node loop, a shell user's ``provision release``) that
    did the same step first wins, and this one is simply not needed."""
    try:
        app.save_as(agency, *aggregates)
    except StateConflict:
        return False
    return True


class AnswerCommands(LedgerAccess):
    """The provider's answering policy, its copy notes, the batch step and the overdue queue."""

    def _answer_policy(self, actor: Actor) -> AnswerPolicy:
        self.authorise(actor, Action.ADMINISTER)
        return policy_of(self, actor.agency) or AnswerPolicy(agency=actor.agency, by=actor.staff)

    def set_answer_policy(self, actor: Actor, *, batch_times: list[str] | None, due_days: int | None) -> AnswerPolicy:
        """The agency's batch times (local HH:MM) and due-date rule (business days); recorded events."""
        policy = self._answer_policy(actor)
        if batch_times is not None:
            policy.set_batch_times(batch_times, by=actor.staff)
        if due_days is not None:
            policy.set_due_days(due_days, by=actor.staff)
        self.save_as(actor.agency, policy)
        return policy

    def set_manual_item(self, actor: Actor, kind: str, value: str, *, manual: bool = True) -> AnswerPolicy:
        """Mark (or unmark) an item — a table 2 item number, a procedure or an information kind — as always
        answered by hand at this agency."""
        policy = self._answer_policy(actor)
        what = parse_enum(ManualKind, kind, "kind")
        if manual:
            policy.mark_manual(what, value.strip(), by=actor.staff)
        else:
            policy.unmark_manual(what, value.strip(), by=actor.staff)
        self.save_as(actor.agency, policy)
        return policy

    def note_copy(self, actor: Actor, subject: str, info_kind: str, state: str) -> str:
        """Record what the intermediate server holds of ``info_kind`` about ``subject``: no copy (該当なし) or
        a copy under check sends a request to staff; ``registered`` lets it be answered automatically again."""
        self.authorise(actor, Action.REVIEW_HELD)
        to = parse_enum(CopyState, state, "state")
        subj = self.subject(subject)
        sid = self.ids.copy_note(actor.agency, subj, info_kind)
        note = self.find(CopyNote, sid)
        if note is None:
            note = CopyNote(
                id=sid, agency=actor.agency, subject=subj, info_kind=info_kind, state=to.value, by=actor.staff
            )
        else:
            note.change(to, by=actor.staff)
        self.save_as(actor.agency, note)
        return to.value

    def release_answers(self, actor: Actor, now: datetime) -> dict[str, Any]:
        """``run_batches`` on an approver's or administrator's command (the node loop runs it by itself)."""
        self._decider_or_admin(actor)
        return run_batches(self, now)

    def _decider_or_admin(self, actor: Actor) -> None:
        refusal: PermissionDenied | None = None
        for action in (Action.APPROVE_HELD, Action.REVIEW_HELD, Action.ADMINISTER):
            try:
                self.authorise(actor, action)
                return
            except PermissionDenied as exc:
                refusal = refusal or exc
        assert refusal is not None
        raise refusal

    def overdue(self, actor: Actor, now: datetime) -> list[dict[str, Any]]:
        """Held requests of ``actor``'s agency past their due date, with whom they were escalated to. For the
        deciders and the administrators; no person and no querying agency is named (the held queue does)."""
        self._decider_or_admin(actor)
        today = local_day(now)
        out: list[dict[str, Any]] = []
        for held in _held_files(self):
            if held.agency != actor.agency or held.released is not None or held.escalation_due(today) == 0:
                continue
            out.append(
                {
                    "request_id": str(held.request_id),
                    "reason": held.reason,
                    "received": held.received,
                    "due": held.due,
                    "overdue": True,
                    "escalated_to": ["approver", "administrator"][: held.level],
                }
            )
        return sorted(out, key=lambda r: (r["due"], r["request_id"]))

    def next_release(self, agency: str, decided_at: datetime) -> datetime:
        """When an answer decided at ``decided_at`` at ``agency`` reaches the querier."""
        return next_batch(decided_at, _batch_times(self, agency))


def held_file(app: LedgerAccess, request_id: UUID) -> HeldFile | None:
    return app.find(HeldFile, HeldFile.create_id(request_id))
