"""Sealing checks the signing key's validity for the batch's earliest and latest event times only: it must
refuse exactly the batches in which some event, anywhere in the batch, is outside the key's validity."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger.domain.identity import AccessRecord
from ledger.errors import UntrustedKeyError
from ledger.runtime.bootstrap import AgencySpec
from tests.conftest import B, NodeFactory


def _events(times: list[datetime]) -> list[Any]:
    out: list[Any] = []
    for i, t in enumerate(times):
        record = AccessRecord(agency=B, staff="aud", subject=f"p{i:032x}", what="holders", purpose="監査")
        (e,) = record.collect_events()
        object.__setattr__(e, "timestamp", t)
        out.append(e)
    return out


def test_a_bad_time_anywhere_in_the_batch_refuses_it(make_node: NodeFactory) -> None:
    node = make_node((AgencySpec(B, "B市", "municipality"),), staff=False)
    mapper = node.app.signed_mapper
    key_id = node.app.signers[B].key_id
    start = node.app.keyring.get(key_id).valid_from
    end = start + timedelta(hours=1)
    node.app.keyring.retire(key_id, end)
    inside = [start + timedelta(minutes=m) for m in (10, 1, 59, 30)]
    sealed = mapper.seal(_events(inside), B, {})
    for row in sealed:
        mapper.to_domain_event(row)  # verifies the signature and the key at the event's own time
    for bad, code in ((start - timedelta(microseconds=1), "key_not_yet_valid"), (end, "key_expired")):
        for where in range(len(inside) + 1):  # first, middle, last
            times = [*inside[:where], bad, *inside[where:]]
            with pytest.raises(UntrustedKeyError, match="refusing to sign") as refused:
                mapper.seal(_events(times), B, {})
            assert refused.value.code == code


def test_seal_refuses_exactly_what_a_per_event_check_refuses(make_node: NodeFactory) -> None:
    node = make_node((AgencySpec(B, "B市", "municipality"),), staff=False)
    mapper, ring = node.app.signed_mapper, node.app.keyring
    key_id = node.app.signers[B].key_id
    start = ring.get(key_id).valid_from
    ring.revoke(key_id, start + timedelta(minutes=30), "compromised")
    rng = random.Random(11)
    outcomes = set()
    for _ in range(300):
        times = [start + timedelta(seconds=rng.randrange(-60, 1900)) for _ in range(rng.randrange(1, 12))]
        each_ok = True
        for t in times:
            try:
                ring.check_key(B, key_id, t)
            except UntrustedKeyError:
                each_ok = False
        try:
            mapper.seal(_events(times), B, {})
            sealed_ok = True
        except UntrustedKeyError:
            sealed_ok = False
        assert sealed_ok == each_ok, times
        outcomes.add(sealed_ok)
    assert outcomes == {True, False}
