"""The hub role's ``linkage.open_workers`` setting (threat: an administrator's mistyped configuration — refused at
start with a clear message, never read as some other count; absent, the workers run: "auto", since a SIGTERM's
stop no longer waits for them, tests/e2e/test_hub_stop_with_openers.py)."""

from __future__ import annotations

import pytest

from ledger.errors import Code, InputError
from ledger.node.roles import _open_workers, _open_workers_setting


@pytest.mark.parametrize(("value", "workers"), [(0, 0), (3, 3), ("auto", None)])
def test_a_count_or_auto_is_taken(value: object, workers: int | None) -> None:
    assert _open_workers(value) == workers


@pytest.mark.parametrize("value", [-1, "4", True, 2.5, None])
def test_anything_else_is_refused_naming_the_setting(value: object) -> None:
    with pytest.raises(InputError) as raised:
        _open_workers(value)
    assert raised.value.code == Code.CONFIGURATION and "linkage.open_workers" in str(raised.value)


def test_absent_it_is_auto_and_zero_still_turns_the_workers_off() -> None:
    assert _open_workers_setting({}) is None  # one per usable CPU, at most 4
    assert _open_workers_setting({"open_workers": 0}) == 0
    with pytest.raises(InputError):
        _open_workers_setting({"open_workers": "none"})
