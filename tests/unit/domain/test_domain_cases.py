"""ProtectionCase (intake) on its own: who is on a case, and a closed case takes no more changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.domain.cases import CHECKLIST_ITEMS, ProtectionCase
from ledger.errors import StateConflict
from tests.support.domain import A, emitted, pseudonym

VICTIM, PERP = pseudonym("victim"), pseudonym("perpetrator")


def case() -> ProtectionCase:
    return ProtectionCase(
        agency=A,
        victim=VICTIM,
        perpetrators=[PERP],
        reason="dv",
        checklist={CHECKLIST_ITEMS[0]: True},
        proxies_to_cancel=[],
        notes="intake",
        opened_by="req",
    )


def test_the_victim_is_never_added_as_a_perpetrator_and_nobody_twice() -> None:
    """Threat: the perpetrator — a victim recorded as a perpetrator of their own case would have the
    perpetrator-facing rules applied to them."""
    c = case()
    with pytest.raises(StateConflict, match="already on the case"):
        c.add_perpetrator(VICTIM, "req")
    with pytest.raises(StateConflict, match="already on the case"):
        c.add_perpetrator(PERP, "req")
    second = pseudonym("second perpetrator")
    c.add_perpetrator(second, "req")
    assert c.perpetrators == [PERP, second]
    assert emitted(c) == [
        "ledger.domain.cases:ProtectionCase.Opened",
        "ledger.domain.cases:ProtectionCase.PerpetratorAdded",
    ]


def test_a_closed_case_takes_no_more_changes_and_notes_stay_local() -> None:
    """Threat: a peer agency (case notes never leave the node) and an insider editing a closed case."""
    assert ProtectionCase.SHARED is False
    c = case()
    c.update_checklist({CHECKLIST_ITEMS[1]: 1, CHECKLIST_ITEMS[0]: 0}, "req")
    assert c.checklist == {CHECKLIST_ITEMS[0]: False, CHECKLIST_ITEMS[1]: True}  # coerced to booleans
    c.close("req", "moved")
    assert not c.open
    changes: list[Callable[[], None]] = [
        lambda: c.add_perpetrator(pseudonym("x"), "req"),
        lambda: c.update_checklist({}, "req"),
        lambda: c.close("req", "again"),
    ]
    for change in changes:
        with pytest.raises(StateConflict, match="closed"):
            change()
    assert emitted(c)[-2:] == [
        "ledger.domain.cases:ProtectionCase.ChecklistUpdated",
        "ledger.domain.cases:ProtectionCase.Closed",
    ]
