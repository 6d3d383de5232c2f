"""A holder's approval of a named proxy reaches the portal through the hub (issue 19), the hub's database on SQLite
and PostgreSQL, the portal's its own, on the in-memory transport.

While a flag applies the portal refuses every proxy and guardian view, unless every holder protecting the person
approved that proxy — by the proxy's own card. Threats: the perpetrator as the victim's proxy or guardian; a peer
agency that holds nothing on the person forging an approval; the broker operator (routing and ciphertext only).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.errors import Code, FlagLedgerError
from ledger.hub.inbox import parked
from ledger.hub.log import HubStore, open_hub_store
from ledger.linkage.buckets import ANSWER_SIZE, BUCKETS
from ledger.linkage.sealing import read_header
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from tests.support.hub_world import A, B, C, Cast, D
from tests.support.people import individual_number
from tests.support.portal_world import PortalWorld

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
MADE = "2026-12-07T12:00:00+09:00"


@pytest.fixture
def hub(backend: str | None, tmp_path: Path) -> Iterator[HubStore]:
    store = open_hub_store(backend or f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    yield store
    store.close()


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def pw(hub: HubStore, broker: MemoryBroker, tmp_path: Path) -> Iterator[PortalWorld]:
    w = PortalWorld.open(Cast.of(A, B, C, D), hub, tmp_path / "portal.sqlite", lambda p: MemoryTransport(broker, p))
    yield w
    w.store.close()


def refused(pw: PortalWorld, number: str, viewer: str, proxy: str | None = None) -> str:
    with pytest.raises(FlagLedgerError) as caught:
        pw.page(number, viewer, proxy)
    return caught.value.code


def protected_with_a_record(pw: PortalWorld) -> tuple[str, str, str]:
    """X with a record from B, protected by A; P (registered by A, approved later) and Q (the perpetrator)
    signed in as proxies."""
    x, p, q = individual_number(), individual_number(), individual_number()
    pw.world.agencies[B].record(x, C, PROCEDURE, ITEM, INFO, "provided", MADE)
    pw.world.agencies[A].flag(x, "NON_DISCLOSURE", "set")
    pw.world.agencies[A].register_proxy(x, p)
    pw.world.agencies[B].record(x, D, PROCEDURE, ITEM, INFO, "provided", MADE)  # after the flag: D, where X moved
    for number in (x, p, q):
        with pytest.raises(FlagLedgerError):
            pw.page(number)  # each card signs in once: its registration is owed, no page yet
    pw.settle()
    return x, p, q


def test_only_the_approved_proxy_reads_while_protected_and_a_revocation_ends_it(pw: PortalWorld) -> None:
    """Threat: the perpetrator as X's proxy or guardian. Refused while A's flag applies; after A approves P, P
    (signed in with P's own card) reads X's page — still hiding what the flag hides — while Q, a guardian, or a
    proxy who gives no card stay refused; A's revocation refuses P again."""
    x, p, q = protected_with_a_record(pw)
    assert refused(pw, x, "proxy", p) == Code.PROXY_REFUSED
    assert refused(pw, x, "guardian") == Code.PROXY_REFUSED

    pw.world.agencies[A].approve_proxy(x, p)
    pw.settle()
    assert parked(pw.world.hub.store.engine) == []
    seen = pw.page(x, "proxy", p)
    assert seen == pw.page(x)  # what X sees: the note, nothing made after the flag
    assert all(r.querier != D for r in seen.records) and seen.note is not None
    assert refused(pw, x, "proxy", q) == Code.PROXY_REFUSED
    assert refused(pw, x, "proxy") == Code.PROXY_REFUSED
    assert refused(pw, x, "guardian", p) == Code.PROXY_REFUSED  # a barred guardian stays refused

    pw.world.agencies[A].approve_proxy(x, p, "revoke")
    pw.settle()
    assert refused(pw, x, "proxy", p) == Code.PROXY_REFUSED


def test_a_second_holder_must_approve_too(pw: PortalWorld) -> None:
    """Threat: the perpetrator as proxy, let in by one holder past another's flag. With A and C both protecting
    X, A's approval alone refuses P; once C approves too, P reads."""
    x, p, _ = protected_with_a_record(pw)
    pw.world.agencies[C].flag(x, "NO_AUTO_RESPONSE", "set")
    pw.world.agencies[A].approve_proxy(x, p)
    pw.settle()
    assert refused(pw, x, "proxy", p) == Code.PROXY_REFUSED
    pw.world.agencies[C].approve_proxy(x, p)
    pw.settle()
    assert pw.page(x, "proxy", p) == pw.page(x)


def test_a_peer_holding_nothing_cannot_approve(pw: PortalWorld, broker: MemoryBroker) -> None:
    """Threat: a peer agency (B, which provides records about X but holds no flag) forging an approval for the
    perpetrator Q: parked at the hub (``wrong_agency``), Q stays refused. Threat: the broker operator — the
    approval and every message on the broker is sealed, bucket-sized, naming no number and no code."""
    x, _, q = protected_with_a_record(pw)
    pw.world.agencies[B].approve_proxy(x, q)
    pw.settle()
    [held] = parked(pw.world.hub.store.engine)
    assert held.claimed_sender == B and held.code == Code.WRONG_AGENCY
    assert refused(pw, x, "proxy", q) == Code.PROXY_REFUSED
    pw.world.agencies[A].approve_proxy(x, q)
    pw.world.agencies[A].register_proxy(x, q)
    pw.settle()
    assert pw.page(x, "proxy", q) == pw.page(x)  # the holder's approval, not the peer's, lets Q in

    codes = [pw.world.agencies[n].code(m) for n in (A, B) for m in (x, q)]
    sizes = set()
    for messages in broker.topics.values():
        for m in messages:
            h = read_header(m)
            sizes.add(size := len(m) - (12 + len(h.sender) + len(h.recipient) + 32 + 32 + 16))
            assert size in BUCKETS  # magic and four lengths, the names, event id, enc, tag: then the bucket
            for secret in (x, q, *codes, "proxy_approval", "approve"):
                assert secret.encode() not in m
    assert ANSWER_SIZE in sizes
