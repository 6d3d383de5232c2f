"""The four-eyes aggregates (guardian bars, holders' proxy approvals, erasure and link requests) share one lifecycle
(ledger/domain/four_eyes.py), but each event keeps the class name, topic and payload fields it was signed with.

Threat: an administrator / shell user, or anyone who later checks a node's log — a refactoring that renamed a topic
or a payload field would change the bytes the signature covers, so every existing signed event of these kinds would
fail verification (or read back as another kind) on the next rebuild. The digests below were taken of the events as
they were before the lifecycle was shared; each is the sha256 of the topic and the payload the mapper signs
(``SignedMapper.seal``: the event's state less originator id and version, JSON-encoded), cut to 128 bits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, UUIDAsHex
from eventsourcing.utils import get_topic

from ledger.domain.erasure import ErasureRequest
from ledger.domain.guardians import GuardianBar
from ledger.domain.identity import LinkRequest
from ledger.domain.proxy_approvals import HolderProxyApproval

_ID = UUID("6f1c1f0e-43a5-4c1e-9b6e-0d2a54b0c0de")
_AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
_SIG = {"key": "k1", "sig": "00ff"}


def _signed(events: list[Aggregate.Event]) -> list[tuple[str, str]]:
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    out = []
    for e in events:
        state = dict(vars(e))
        state.pop("originator_id")
        state.pop("originator_version")
        state["timestamp"] = _AT
        topic = get_topic(type(e))
        out.append((topic, hashlib.sha256(topic.encode() + b"\x00" + transcoder.encode(state)).hexdigest()[:32]))
    return out


def _bar() -> list[Aggregate.Event]:
    bar = GuardianBar(
        id=_ID, agency="131024", subject="s", guardian="g", relation="parent", proposed_by="sato", staff_signature=_SIG
    )
    bar.approve("suzuki", staff_signature=_SIG)
    bar.propose_lift("sato", "the court lifted the order", staff_signature=_SIG)
    bar.lift("suzuki", staff_signature=_SIG)
    return list(bar.collect_events())


def _proxy() -> list[Aggregate.Event]:
    a = HolderProxyApproval(
        id=_ID, agency="131024", subject="s", proxy="p", proposed_by="sato", note="her sister", staff_signature=_SIG
    )
    a.approve("suzuki", staff_signature=_SIG)
    a.propose_withdrawal("sato", "she withdrew her consent", staff_signature=_SIG)
    a.withdraw("suzuki", staff_signature=_SIG)
    return list(a.collect_events())


def _erased() -> list[Aggregate.Event]:
    req = ErasureRequest(agency="131024", subject="s", requested_by="sato", reason="asked under APPI art. 35")
    req.approve("suzuki", "checked", ["ab" * 16, "cd" * 16])
    return list(req.collect_events())


def _erasure_rejected() -> list[Aggregate.Event]:
    req = ErasureRequest(agency="131024", subject="s", requested_by="sato", reason="asked")
    req.reject("suzuki", "a case is open")
    return list(req.collect_events())


def _linked() -> list[Aggregate.Event]:
    req = LinkRequest(agency="131024", kind="link", old="o", new="n", requested_by="sato", reason="new number")
    req.approve("suzuki", "seen the card")
    return list(req.collect_events())


def _link_rejected() -> list[Aggregate.Event]:
    req = LinkRequest(agency="131024", kind="unlink", old="o", new="n", requested_by="sato", reason="typo")
    req.reject("suzuki", "not a typo")
    return list(req.collect_events())


_BEFORE: dict[str, list[tuple[str, str]]] = {
    "_bar": [
        ("ledger.domain.guardians:GuardianBar.Proposed", "a5ccb70a2c8c934410a363b4f7466642"),
        ("ledger.domain.guardians:GuardianBar.Approved", "abdd401fea3d11e8ef2f216485eb6fb4"),
        ("ledger.domain.guardians:GuardianBar.LiftProposed", "0ebdb561d7faaa6becd4a24333360a9a"),
        ("ledger.domain.guardians:GuardianBar.Lifted", "e34e94b93f8798add5202860e33f9633"),
    ],
    "_proxy": [
        ("ledger.domain.proxy_approvals:HolderProxyApproval.Proposed", "af437b55f87aac07234c35422b4afed6"),
        ("ledger.domain.proxy_approvals:HolderProxyApproval.Approved", "f4eae21d3bdd4d3c81305c7bb441dab7"),
        ("ledger.domain.proxy_approvals:HolderProxyApproval.WithdrawalProposed", "4089ff347eac47abd682528eb0dcc052"),
        ("ledger.domain.proxy_approvals:HolderProxyApproval.Withdrawn", "2ae63ca75f7399c5c04518c13ee2f949"),
    ],
    "_erased": [
        ("ledger.domain.erasure:ErasureRequest.Requested", "da414f1d7aa8f6c79f56d5a0c9a0a177"),
        ("ledger.domain.erasure:ErasureRequest.Approved", "34361a5e4922b55828756b0315dd6c59"),
        ("ledger.domain.erasure:ErasureRequest.Erased", "996070ceaa0e3a50b4506375447df77f"),
    ],
    "_erasure_rejected": [
        ("ledger.domain.erasure:ErasureRequest.Requested", "8736b0db5dedc1de0abbbf6d09c47b66"),
        ("ledger.domain.erasure:ErasureRequest.Rejected", "b7811e32a7f3624fa5191573db21442b"),
    ],
    "_linked": [
        ("ledger.domain.identity:LinkRequest.Requested", "6408d2e09780f29ceb2693842caf1a74"),
        ("ledger.domain.identity:LinkRequest.Approved", "8216a9b6e7cff4b5637d2fe564c22f42"),
    ],
    "_link_rejected": [
        ("ledger.domain.identity:LinkRequest.Requested", "d5da3fb3c047c5171f87d46c11e57fd8"),
        ("ledger.domain.identity:LinkRequest.Rejected", "e8f80fb952de0db47e4c574091e12c55"),
    ],
}


@pytest.mark.parametrize(
    "lifecycle", [_bar, _proxy, _erased, _erasure_rejected, _linked, _link_rejected], ids=lambda f: f.__name__
)
def test_each_event_signs_the_same_bytes_as_before_the_lifecycle_was_shared(
    lifecycle: Callable[[], list[Aggregate.Event]],
) -> None:
    assert _signed(lifecycle()) == _BEFORE[lifecycle.__name__]
