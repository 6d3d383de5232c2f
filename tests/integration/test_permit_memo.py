"""Views answer "may this person see this?" from memory while the log stands still — and never after it moves.

A deactivated clerk, a revoked role or a withdrawn permission must shut the counter screen at once, whether the
change was made by this process or by another process writing to the same log (the CLI beside a running node).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.app import Actor
from ledger.errors import PermissionDenied
from ledger.runtime.bootstrap import Node, open_node
from projections import views
from tests.conftest import B


def test_a_deactivated_clerk_is_refused_on_the_next_screen(node: Node, person: Callable[[], str]) -> None:
    x = person()
    views.counter_view(node, Actor(B, "counter"), x)  # allowed, and remembered
    views.counter_view(node, Actor(B, "counter"), x)
    node.app.deactivate_staff(Actor(B, "admin"), "counter")
    with pytest.raises(PermissionDenied) as info:
        views.counter_view(node, Actor(B, "counter"), x)
    assert info.value.code == "inactive_staff"


def test_a_revoked_role_is_refused_even_when_revoked_by_another_process(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    node, x = sqlite_node, person()
    views.counter_view(node, Actor(B, "counter"), x)
    other = open_node(node.config.data_dir)  # e.g. `flagledger staff revoke-role` beside the running node
    try:
        roles = other.app.staff(B, "counter").roles
        for role in roles:
            other.app.revoke_role(Actor(B, "admin"), "counter", role)
    finally:
        other.close()
    with pytest.raises(PermissionDenied) as info:
        views.counter_view(node, Actor(B, "counter"), x)
    assert info.value.code == "role_not_permitted"


def test_a_refusal_is_remembered_with_its_reason_and_lifted_by_a_grant(node: Node, person: Callable[[], str]) -> None:
    x = person()
    for _ in range(2):  # the second answer comes from memory: same error, same code
        with pytest.raises(PermissionDenied) as info:
            views.nationwide_view(node, Actor(B, "nobody"), x)
        assert info.value.code == "unknown_staff"
    node.app.enroll_staff(Actor(B, "admin"), "nobody", "Nobody Yet", ["counter"])
    assert views.nationwide_view(node, Actor(B, "nobody"), x).protected is False
