"""The providers' staff rosters at the hub (ledger.hub.rosters, ledger.linkage.staff_rosters), through the hub's
loop on the in-memory transport, on SQLite and PostgreSQL: the four-eyes check of a staff decision is made
against the roster events the provider itself sent, folded by the ledger's rule.

Threats, per test: a shell user at the provider (its node key, which seals the roster, certifying a staff key
by itself), a peer agency (sending a roster that certifies another agency's staff, or rewriting what it sent),
the administrator (deciding with a key the roster never certified), the hub's operator (a restarted or new
leader forgetting a roster).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.errors import Code
from ledger.hub.inbox import parked
from ledger.hub.log import HubStore
from ledger.hub.rosters import HubRosters
from ledger.hub.tables import hub_rosters
from ledger.linkage.messages import AnswerMessage
from ledger.linkage.staff_rosters import roster_events
from tests.support.hub_world import A, B, C, World
from tests.support.roster_events import certificate, roster_stream
from tests.support.roster_world import hub_store, roster_world, staff_answer, staff_request
from tests.support.staff_keys import staff_signer

ADMIN, APR, APR2 = (staff_signer(A, n) for n in ("admin", "apr", "apr2"))
STRANGER = staff_signer(A, "stranger")  # a key of A's name the roster never certified


@pytest.fixture
def store(backend: str | None, tmp_path: Path) -> Iterator[HubStore]:
    with hub_store(backend, tmp_path) as opened:
        yield opened


def codes(w: World) -> list[str]:
    return [p.code for p in parked(w.hub.store.engine)]


def test_a_decision_is_checked_against_the_roster_the_provider_sent(store: HubStore) -> None:
    """Administrator or shell user at the provider: before A sends its roster no decision passes; after, one
    signed by two certified staff is relayed, one with a key the roster never certified is refused."""
    w = roster_world(store)
    mine, request_id, desk = staff_request(w)
    w.agencies[A].answer_decided(staff_answer(desk, request_id, APR, APR2))  # the hub holds no roster of A yet
    w.settle()
    assert codes(w) == [Code.STAFF_SIGNATURE] and w.inbox(C) == []

    w.agencies[A].send_roster(roster_stream(ADMIN, APR, APR2, roles={"apr": "reviewer"}))
    w.agencies[A].answer_decided(staff_answer(desk, request_id, APR, STRANGER))
    w.settle()
    assert codes(w) == [Code.STAFF_SIGNATURE, Code.STAFF_SIGNATURE] and w.inbox(C) == []
    w.agencies[A].answer_decided(staff_answer(desk, request_id, APR, APR2))
    w.settle()
    assert [i.message for i in w.inbox(C)] == [AnswerMessage(mine, "answered", "課税所得 0")]
    assert sorted(c.staff for c in HubRosters(store.engine)[A].keys.values()) == ["admin", "admin2", "apr", "apr2"]


def test_the_node_key_alone_certifies_no_staff_key(store: HubStore) -> None:
    """Shell user at A: A's node key seals the roster, but a certificate whose issuer signature is not a
    certified administrator's (here the new key signing for itself) is kept and certifies nothing — as in the
    ledger — so a decision with that key is refused."""
    w = roster_world(store)
    _, request_id, desk = staff_request(w)
    self_made = certificate(STRANGER, STRANGER, certifies=False)
    events = [*roster_stream(ADMIN, APR), *roster_events([("KeyCertified", {"cert": self_made})])]
    w.agencies[A].send_roster(events)
    w.agencies[A].answer_decided(staff_answer(desk, request_id, APR, STRANGER))
    w.settle()
    assert codes(w) == [Code.STAFF_SIGNATURE]
    assert STRANGER.key_id not in HubRosters(store.engine)[A].keys


def test_a_roster_is_the_senders_own_and_is_not_rewritten(store: HubStore) -> None:
    """Peer agency: B sending a roster certifying A's staff makes B's roster (whose key ids do not fit B) and
    nothing of A's; A rewriting its first event, skipping ahead, or sending a second root is refused whole;
    the same stream sent again, or only its new end, is taken."""
    w = roster_world(store)
    stream = roster_stream(ADMIN, APR, roles=False)  # the stream's mechanics: a roster without role events
    w.agencies[B].send_roster(stream)
    w.agencies[A].send_roster(stream)
    w.agencies[A].send_roster(roster_stream(staff_signer(A, "admin"), APR, roles=False))  # another root at 0
    w.agencies[A].send_roster(roster_stream(ADMIN, APR2, roles=False)[1:], position=5)  # a gap
    w.settle()
    assert codes(w) == [Code.CONFLICT, Code.CONFLICT]
    rosters = HubRosters(store.engine)
    assert A not in {c.key_id.split(":")[0] for c in rosters[B].keys.values()}  # B certified nothing of A's
    assert {c.staff for c in rosters[A].keys.values()} == {"admin", "apr"}
    w.agencies[A].send_roster([*stream, *roster_stream(ADMIN, APR2, roles=False)[1:]])  # the stream again, one more
    w.settle()
    assert codes(w) == [Code.CONFLICT, Code.CONFLICT]
    assert {c.staff for c in HubRosters(store.engine)[A].keys.values()} == {"admin", "apr", "apr2"}
    with store.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(hub_rosters).where(hub_rosters.c.agency == A))
        assert count.scalar_one() == 3


def test_a_new_leader_reads_the_rosters_its_predecessor_kept(store: HubStore, backend: str | None) -> None:
    """The hub's operator restarting the hub: rosters are in the hub's database, not in the process."""
    w = roster_world(store)
    w.agencies[A].send_roster(roster_stream(ADMIN, APR, APR2))
    w.settle()
    w.hub.store.sequencer.release()
    again = HubRosters(store.engine)
    assert set(again) == {A} and len(again) == 1
    assert {APR.key_id, APR2.key_id} <= set(again[A].keys)
    assert again.get(B) is None
