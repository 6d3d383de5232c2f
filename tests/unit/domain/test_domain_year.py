"""The year's calendar rules, pure: a one-year term, reminders at 30 and 7 days, escalation to the approver and
then the administrator, one business day for an emergency flag.

Threat: the perpetrator waiting for a silent lapse, and an insider (or a broken clock step) doubling or
skipping a reminder: each is due once per term end, and a lapsed term asks for nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from ledger.domain.moves import ReleaseDecision
from ledger.domain.terms import SupportTerm, next_business_day, one_year_after
from ledger.errors import SelfApprovalError, StateConflict


def term(applied: date = date(2026, 1, 10)) -> SupportTerm:
    return SupportTerm(
        id=uuid4(), agency="131024", subject="p" * 16, applied_on=applied.isoformat(),
        ends_on=one_year_after(applied).isoformat(), recorded_by="req",
    )  # fmt: skip


def test_a_term_runs_one_year_and_a_leap_day_ends_on_the_28th() -> None:
    assert one_year_after(date(2026, 1, 10)) == date(2027, 1, 10)
    assert one_year_after(date(2028, 2, 29)) == date(2029, 2, 28)


def test_next_business_day_skips_the_weekend() -> None:
    friday = datetime(2026, 12, 4, 18, tzinfo=UTC)
    assert next_business_day(friday) == datetime(2026, 12, 7, 18, tzinfo=UTC)
    monday = datetime(2026, 12, 7, 9, tzinfo=UTC)
    assert next_business_day(monday) == datetime(2026, 12, 8, 9, tzinfo=UTC)


def test_what_is_due_each_day_and_only_once() -> None:
    t = term()
    assert t.due(date(2026, 12, 10)) == []
    assert t.due(date(2026, 12, 11)) == [("reminder", "30")]
    t.remind("30", "2026-12-11")
    assert t.due(date(2026, 12, 12)) == []
    assert t.due(date(2027, 1, 3)) == [("reminder", "7")]
    t.remind("7", "2027-01-03")
    assert t.due(date(2027, 1, 10)) == []  # the last day is not overdue
    assert t.due(date(2027, 1, 11)) == [("escalation", "approver")]
    t.escalate("approver", "2027-01-11")
    assert t.due(date(2027, 1, 18)) == [("escalation", "administrator")]
    t.escalate("administrator", "2027-01-18")
    assert t.due(date(2028, 1, 1)) == []


def test_a_step_run_late_gives_the_nearer_reminder_and_both_escalations() -> None:
    t = term()
    assert t.due(date(2027, 1, 5)) == [("reminder", "7")]
    assert t.due(date(2027, 2, 1)) == [("escalation", "approver"), ("escalation", "administrator")]


def test_an_extension_moves_the_end_a_year_and_reminders_start_again() -> None:
    t = term()
    t.remind("30", "2026-12-11")
    t.request_extension("2026-12-20", "req")
    assert t.ends_on == "2028-01-10" and t.extensions == ["2026-12-20"]
    assert t.due(date(2027, 12, 11)) == [("reminder", "30")]
    with pytest.raises(StateConflict):
        t.request_extension("2025-01-01", "req")  # before the application


def test_a_lapse_needs_a_proposal_and_another_person_and_then_asks_for_nothing() -> None:
    t = term()
    with pytest.raises(StateConflict):
        t.approve_lapse("apr", "")
    t.propose_lapse("req", "no extension request")
    with pytest.raises(SelfApprovalError):
        t.approve_lapse("req", "")
    t.approve_lapse("apr", "")
    assert not t.open and t.due(date(2030, 1, 1)) == []
    with pytest.raises(StateConflict):
        t.propose_lapse("req", "again")


def test_an_extension_request_withdraws_a_proposed_lapse() -> None:
    t = term()
    t.propose_lapse("req", "no word from the person")
    t.request_extension("2026-12-01", "req")
    with pytest.raises(StateConflict):
        t.approve_lapse("apr", "")


def test_a_named_risk_is_approved_by_another_person_and_used_once() -> None:
    d = ReleaseDecision(
        id=uuid4(), agency="131024", subject="p" * 16, flags=["NO_AUTO_RESPONSE"], kind="handover_gap",
        risk="C does not hold yet", proposed_by="req",
    )  # fmt: skip
    assert not d.covers("p" * 16, ["NO_AUTO_RESPONSE"], "handover_gap")
    with pytest.raises(SelfApprovalError):
        d.approve("req")
    d.approve("apr")
    assert d.covers("p" * 16, ["NO_AUTO_RESPONSE"], "handover_gap")
    assert not d.covers("p" * 16, ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"], "handover_gap")  # names one flag only
    d.use(uuid4())
    assert not d.covers("p" * 16, ["NO_AUTO_RESPONSE"], "handover_gap")
    with pytest.raises(StateConflict):
        d.use(uuid4())


def test_one_business_day_for_a_co_approval_skips_holidays() -> None:
    """A provisional flag made on the eve of a holiday is escalated after the next open day, not on the holiday
    when no administrator can answer (threat: the administrator, left a gap nobody watches)."""
    eve_of_golden_week = datetime(2027, 4, 30, 9, tzinfo=UTC)  # a Friday; 3–5 May are national holidays
    assert next_business_day(eve_of_golden_week) == datetime(2027, 5, 6, 9, tzinfo=UTC)
    new_years_eve = datetime(2026, 12, 28, 9, tzinfo=UTC)
    assert next_business_day(new_years_eve) == datetime(2027, 1, 4, 9, tzinfo=UTC)
