"""The hub role's ``linkage.open_workers`` setting (threat: an administrator's mistyped configuration — refused at
start with a clear message, never read as some other count)."""

from __future__ import annotations

import pytest

from ledger.errors import Code, InputError
from ledger.node.roles import _open_workers


@pytest.mark.parametrize(("value", "workers"), [(0, 0), (3, 3), ("auto", None)])
def test_a_count_or_auto_is_taken(value: object, workers: int | None) -> None:
    assert _open_workers(value) == workers


@pytest.mark.parametrize("value", [-1, "4", True, 2.5, None])
def test_anything_else_is_refused_naming_the_setting(value: object) -> None:
    with pytest.raises(InputError) as raised:
        _open_workers(value)
    assert raised.value.code == Code.CONFIGURATION and "linkage.open_workers" in str(raised.value)
