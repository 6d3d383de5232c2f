"""The rebuild's cheaper spellings give exactly what the plain ones gave (figure "projection rebuild").

* ``canonical_time`` builds the string with ``isoformat`` instead of ``strftime``: same characters for every
  instant, any offset, naive times, and years before 1000 (where the two differ, ``strftime`` is kept);
* the timeline reads event fields from ``__dict__`` only where that is ``getattr``: a class with a property
  of a field's name keeps ``getattr``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from projections.portal import canonical_time
from projections.timeline import _fields, _named_subjects


def _old(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


offsets = st.one_of(
    st.none(), st.just(UTC), st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
)


@given(
    at=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    tz=offsets,
    spec=st.sampled_from(["auto", "seconds", "microseconds", "milliseconds"]),
)
def test_canonical_time_equals_strftime(at: datetime, tz: Any, spec: str) -> None:
    value = at.replace(tzinfo=tz).isoformat(timespec=spec)
    assert canonical_time.__wrapped__(value) == _old(value)


def test_canonical_time_early_years_keep_strftime() -> None:
    for value in ("0999-01-01T00:00:00+00:00", "0001-06-01T12:00:00.5+00:00", "1000-01-01T00:00:00+00:00"):
        assert canonical_time.__wrapped__(value) == _old(value)


class _Plain:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class _WithProperty(_Plain):
    @property
    def subject(self) -> str:
        return "from-property"


def test_fields_fall_back_to_getattr_when_the_class_defines_a_field() -> None:
    plain = _Plain(subject="s1", victim="s2", perpetrators=["s3", "s1"])
    assert _fields(plain) is vars(plain)
    assert _named_subjects(plain, _fields(plain)) == _named_subjects(plain) == ["s1", "s2", "s3"]
    odd = _WithProperty(subject="from-dict")
    assert _fields(odd) is None
    assert _named_subjects(odd, _fields(odd)) == ["from-property"]
