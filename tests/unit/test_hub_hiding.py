"""The hiding rule of the portal (ledger/linkage/hiding.py): intervals in the hub's sequence, sticky.

Threat: the perpetrator at the portal (as the person, a proxy, or holding the card). A record that shows
after the victim's protection ends may name the municipality the victim moved to; so once hidden, a record
stays hidden, whatever comes later.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InputError
from ledger.linkage.hiding import INFINITY, NON_DISCLOSURE, FlagChange, Interval, end_of_latest, fold, hidden

A, B = "131016", "131024"
OLD, NEW = "h" + "1" * 32, "h" + "2" * 32


def change(seq: int, action: str, holder: str = A, person: str = OLD, flag: str = NON_DISCLOSURE) -> FlagChange:
    return FlagChange(seq, person, holder, flag, action)  # type: ignore[arg-type]


def test_intervals_are_set_to_release_per_holding_and_an_open_one_never_ends() -> None:
    changes = [change(3, "set"), change(5, "set", B), change(4, "set"), change(9, "release"), change(12, "release", B)]
    assert fold(reversed(changes)) == [Interval(OLD, A, 3, 9), Interval(OLD, B, 5, 12)]
    assert end_of_latest(fold(changes)) == 12
    assert end_of_latest(fold([*changes, change(20, "set")])) == INFINITY
    assert end_of_latest([]) is None
    # other flags make no non-disclosure interval; a release with nothing open changes nothing
    assert fold([change(1, "set", flag="NO_AUTO_RESPONSE"), change(2, "release")]) == []


def test_a_holder_release_under_one_number_leaves_its_holding_under_the_other() -> None:
    """Threat: the perpetrator. After a number change the holder releases the protection it set on the new
    number; the old number's protection is still held — so the person is still protected: hide on."""
    intervals = fold([change(1, "set", person=OLD), change(2, "set", person=NEW), change(3, "release", person=NEW)])
    assert end_of_latest(intervals) == INFINITY
    assert hidden(10**9, intervals)


def test_records_before_during_and_after() -> None:
    """The seed's case 1: a record made before the flag is hidden too; after release only later ones show."""
    intervals = fold([change(10, "set"), change(20, "release")])
    assert [s for s in (1, 9, 10, 15, 19, 20, 21) if hidden(s, intervals)] == [1, 9, 10, 15, 19]
    assert not hidden(1, [])


def test_one_sequence_number_twice_is_refused() -> None:
    with pytest.raises(InputError):
        fold([change(1, "set"), change(1, "release")])
    with pytest.raises(InputError):
        fold([change(1, "unset")])


changes_strategy = st.lists(
    st.tuples(st.sampled_from(["set", "release"]), st.sampled_from([A, B]), st.sampled_from([OLD, NEW])),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(changes=changes_strategy, at=st.integers(0, 12))
def test_once_hidden_a_record_stays_hidden_whatever_comes_after(changes: list[tuple[str, str, str]], at: int) -> None:
    """Threat: the perpetrator waiting for a release. Any history of sets and releases by any holder on any
    of the person's numbers, with a record sequenced somewhere in it: once the record is hidden it is hidden
    at every later point (the end of the latest interval never moves back)."""
    at = min(at, len(changes))
    record = at + 1  # the record's own number in the one sequence; the changes take the others
    history = [change(i + 1 if i < at else i + 2, a, h, p) for i, (a, h, p) in enumerate(changes)]
    seen = [hidden(record, fold(history[:cut])) for cut in range(at, len(history) + 1)]
    if True in seen:
        assert all(seen[seen.index(True) :]), seen
