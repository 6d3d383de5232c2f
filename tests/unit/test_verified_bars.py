"""The guardian-bar fold of the verified state (projections.verified_bars) on its own."""

from __future__ import annotations

from types import SimpleNamespace

from projections.verified_bars import GuardianBars

K, K2, Y = "pchild", "pchild-new-number", "pguardian"


def test_a_bar_stands_until_every_agency_that_barred_the_pair_lifted_it() -> None:
    """Threat: the perpetrator as guardian — one agency lifting its bar must not reopen access another agency
    still bars; a proposal alone, or a lift of a stream never proposed, changes nothing."""
    bars = GuardianBars()
    for stream in ("bar-b", "bar-c"):
        bars.apply(stream, "Proposed", SimpleNamespace(subject=K, guardian=Y))
    assert not bars.any_barred([K], {Y})
    bars.apply("bar-b", "Approved", None)
    bars.apply("bar-c", "Approved", None)
    bars.apply("unknown", "Lifted", None)
    bars.apply("bar-b", "LiftProposed", None)
    bars.apply("bar-b", "Lifted", None)
    assert bars.any_barred([K2, K], {"pother-number-of-y", Y}) and len(bars) == 1
    bars.apply("bar-c", "Lifted", None)
    assert not bars.any_barred([K], {Y}) and len(bars) == 0
