"""The rules of answers that need staff on their own: batch instants, business-day due dates, escalation levels,
the provider's policy, and a staff-made answer released once, only after it is decided."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ledger.domain.answers import (
    JST,
    AnswerPolicy,
    HeldFile,
    ManualKind,
    add_business_days,
    last_batch,
    next_batch,
)
from ledger.domain.provision import ProvisionRequest
from ledger.errors import InputError, StateConflict
from tests.support.domain import A, B, pseudonym

TIMES = ["10:00", "14:00", "16:30"]


def test_a_decision_waits_for_the_next_batch_instant_even_across_the_night() -> None:
    """Threat: the querying agency timing the answer — a decision at 10:05 and one at 13:59 both leave at 14:00,
    one at 17:00 at 10:00 the next day: the instant says nothing about when (or why) staff decided."""
    at = lambda h, m, d=7: datetime(2026, 12, d, h, m, tzinfo=JST)  # noqa: E731
    assert next_batch(at(10, 5), TIMES) == next_batch(at(13, 59), TIMES) == at(14, 0)
    assert next_batch(at(14, 0), TIMES) == at(16, 30), "strictly after: never the instant it is decided"
    assert next_batch(at(17, 0), TIMES) == at(10, 0, 8)
    assert last_batch(at(9, 0, 8), TIMES) == at(16, 30, 7)
    assert last_batch(at(14, 0), TIMES) == at(14, 0)


def test_due_dates_count_business_days() -> None:
    """Threat: a held request nobody decides over a weekend — the due date skips Saturday and Sunday."""
    friday = date(2026, 12, 4)
    assert add_business_days(friday, 1) == date(2026, 12, 7)
    assert add_business_days(friday, 5) == date(2026, 12, 11)


def test_overdue_escalates_to_the_approvers_then_the_administrators_and_never_answers() -> None:
    """Threat: an administrator or shell user letting a request lapse unnoticed — levels 1 then 2, each once."""
    held = HeldFile(agency=A, request_id=ProvisionRequest.create_id(), reason="flag", received="2026-12-01",
                    due="2026-12-08")  # fmt: skip
    assert held.escalation_due(date(2026, 12, 8)) == 0
    assert held.escalation_due(date(2026, 12, 9)) == 1
    assert held.escalation_due(date(2026, 12, 11)) == 2
    held.escalate(1, date(2026, 12, 9))
    with pytest.raises(StateConflict):
        held.escalate(1, date(2026, 12, 9))
    held.close(batch="2026-12-09T14:00:00+09:00")
    assert held.escalation_due(date(2026, 12, 31)) == 0, "released: nothing left to escalate"


def test_the_policy_refuses_what_it_cannot_mean() -> None:
    """Threat: an administrator's typo silently answering an item automatically — refused with the field named."""
    policy = AnswerPolicy(agency=A, by="admin")
    assert policy.batch_times == TIMES and policy.due_business_days == 5
    for bad in (["25:00"], ["10:00"] * 0, ["9:00"]):
        with pytest.raises(InputError):
            policy.set_batch_times(bad, by="admin")
    with pytest.raises(InputError):
        policy.set_due_days(0, by="admin")
    with pytest.raises(InputError):
        policy.mark_manual(ManualKind.LEGAL_ITEM, "999", by="admin")
    policy.mark_manual(ManualKind.PROCEDURE, "児童手当", by="admin")
    assert policy.is_manual(74, "児童手当", "地方税関係情報") and not policy.is_manual(74, "other", "other")
    policy.unmark_manual(ManualKind.PROCEDURE, "児童手当", by="admin")
    assert not policy.is_manual(74, "児童手当", "地方税関係情報")


def test_an_answer_is_released_once_and_only_after_it_is_decided() -> None:
    """Threat: the querying agency seeing a decision before the batch time, or twice."""
    r = ProvisionRequest(agency=A, querier=B, subject=pseudonym("x"), legal_item=74, procedure="p", info_kind="i",
                         applicant="unknown")  # fmt: skip
    r.hold(flags=[], batched=True)
    assert not r.answer_released
    with pytest.raises(StateConflict):
        r.release(batch="2026-12-07T14:00:00+09:00")
    r.propose("refuse", "unknown", "rev", "")
    assert r.proposal_version is not None
    r.approve_decision("apr", r.proposal_version)
    assert r.decided and not r.answer_released
    r.release(batch="2026-12-07T14:00:00+09:00")
    assert r.answer_released and r.released_batch == "2026-12-07T14:00:00+09:00"
    with pytest.raises(StateConflict):
        r.release(batch="2026-12-07T16:30:00+09:00")


def test_due_dates_skip_national_holidays_and_the_year_end_closure() -> None:
    """A held request received before the year-end closure or Golden Week is due five days the office is open
    later, not five weekdays: counted over closed days it would escalate, and be pressed for an answer, while
    nobody who could weigh the person's protection is at work (threat: the perpetrator, waiting out a holiday)."""
    assert add_business_days(date(2026, 12, 28), 5) == date(2027, 1, 8)  # 29 Dec–3 Jan closed, then 4–8 Jan
    assert add_business_days(date(2027, 4, 28), 3) == date(2027, 5, 7)  # 29 Apr, 3–5 May are holidays
    assert add_business_days(date(2027, 3, 19), 1) == date(2027, 3, 23)  # 21 Mar falls on a Sunday: 22nd substitutes
