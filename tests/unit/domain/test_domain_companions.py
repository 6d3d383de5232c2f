"""Companions on a case and guardian bars on their own (issue 21): the guards, four eyes, and the events each
emits (every field shaped as a peer is held to)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger.domain.cases import ProtectionCase
from ledger.domain.guardians import GuardianBar
from ledger.errors import SelfApprovalError, StateConflict
from tests.support.domain import A, emitted, pseudonym

VICTIM, PERP, CHILD = pseudonym("victim"), pseudonym("perpetrator"), pseudonym("child")


def case() -> ProtectionCase:
    c = ProtectionCase(
        agency=A,
        victim=VICTIM,
        perpetrators=[PERP],
        reason="dv",
        checklist={},
        proxies_to_cancel=[],
        notes="",
        opened_by="req",
    )
    c.collect_events()
    return c


def test_a_companion_is_attached_only_through_its_own_request_and_never_as_victim_or_perpetrator() -> None:
    """Threat: an insider attaching (or appearing to attach) a companion without the flag request's approvals:
    attachment names the request it waited on, once; the victim and the perpetrator are never companions."""
    c = case()
    for who in (VICTIM, PERP):
        with pytest.raises(StateConflict):
            c.propose_companion(who, "child", uuid4(), "req")
    rid = uuid4()
    c.propose_companion(CHILD, "child", rid, "req")
    with pytest.raises(StateConflict):
        c.propose_companion(CHILD, "child", uuid4(), "req")
    assert c.attached_companions == [] and c.companion_of(rid) == CHILD
    with pytest.raises(StateConflict):
        c.attach_companion(CHILD, uuid4(), "op")  # another request attaches nothing
    c.attach_companion(CHILD, rid, "op")
    assert c.attached_companions == [CHILD] and c.companion_of(rid) is None
    with pytest.raises(StateConflict):
        c.attach_companion(CHILD, rid, "op")
    assert emitted(c) == [
        "ledger.domain.cases:ProtectionCase.CompanionProposed",
        "ledger.domain.cases:ProtectionCase.CompanionAttached",
    ]
    c.close("req", "")
    with pytest.raises(StateConflict):
        c.propose_companion(pseudonym("another child"), "child", uuid4(), "req")


def test_a_guardian_bar_needs_two_people_to_take_effect_and_two_to_lift() -> None:
    """Threat: an insider (one person barring or un-barring a guardian alone) and the perpetrator (a bar that
    lapses by itself). Shared, as the portal's decisions need it on every node."""
    assert GuardianBar.SHARED is True
    bar = GuardianBar(id=uuid4(), agency=A, subject=CHILD, guardian=PERP, relation="parent", proposed_by="req")
    assert not bar.in_force
    with pytest.raises(SelfApprovalError):
        bar.approve("req")
    with pytest.raises(StateConflict):
        bar.propose_lift("req", "no longer needed")  # not in force
    bar.approve("apr")
    assert bar.in_force
    with pytest.raises(StateConflict):
        bar.approve("apr2")
    with pytest.raises(StateConflict):
        bar.lift("apr")  # lifting is proposed first
    bar.propose_lift("req", "family court decision")
    with pytest.raises(SelfApprovalError):
        bar.lift("req")
    bar.lift("apr")
    assert not bar.in_force
    assert emitted(bar) == [
        "ledger.domain.guardians:GuardianBar.Proposed",
        "ledger.domain.guardians:GuardianBar.Approved",
        "ledger.domain.guardians:GuardianBar.LiftProposed",
        "ledger.domain.guardians:GuardianBar.Lifted",
    ]
