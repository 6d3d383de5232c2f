"""The bounded heads cache of `audit verify`: what is spilled comes back exactly, owners included (threat: an
insider who wrote another agency's event straight into the store must be caught however many streams there are)."""

from __future__ import annotations

import pytest

from ledger.log.stream_heads import StreamHeads


def test_spilled_heads_come_back_exactly_and_new_streams_are_counted_once() -> None:
    with StreamHeads(capacity=4) as heads:
        for i in range(50):
            assert heads.get(f"s{i}") is None
            heads.set(f"s{i}", 1, f"h{i}-1", new=True, owner=f"A{i % 3}", aggregate=f"m:K{i % 2}")
        for i in range(50):  # every head but the newest few now comes back from the temporary table
            assert heads.get(f"s{i}") == (1, f"h{i}-1", f"A{i % 3}", f"m:K{i % 2}")
            heads.set(f"s{i}", 2, f"h{i}-2", new=False, owner=f"A{i % 3}", aggregate=f"m:K{i % 2}")
        assert [heads.get(f"s{i}") for i in range(50)] == [
            (2, f"h{i}-2", f"A{i % 3}", f"m:K{i % 2}") for i in range(50)
        ]
        assert heads.streams == 50 and heads.spilled > 50
        assert len(heads._hot) <= 4
    with pytest.raises(ValueError):
        StreamHeads(capacity=0)
