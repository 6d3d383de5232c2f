"""The days Japanese public offices are open: every due date and escalation counts these.

Closed: Saturdays and Sundays; the national holidays of 国民の祝日に関する法律 with their substitute days
(jpholiday keeps the table and its amendments); and the year-end closure, 29 December to 3 January, which
行政機関の休日に関する法律 第1条 sets for national agencies and each municipality's 休日条例 sets for itself under
地方自治法 第4条の2. An agency with other closed days (a local holiday by its own ordinance) is not modelled.

Pure (no clock, no I/O): the dates computed here are recorded in events, so a replay reads them, never recomputes.
"""

from __future__ import annotations

from datetime import date

import jpholiday

__all__ = ["is_business_day"]


def _year_end(day: date) -> bool:
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def is_business_day(day: date) -> bool:
    """Whether public offices are open on ``day``."""
    return day.weekday() < 5 and not _year_end(day) and not jpholiday.is_holiday(day)
