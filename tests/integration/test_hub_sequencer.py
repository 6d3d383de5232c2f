"""The hub's sequence and its leader lease, on SQLite (file lock) and PostgreSQL (advisory lock).

Threats: the perpetrator at the portal, through a broken sequence — two hub processes numbering at once would
give records and flag changes numbers that no longer say what came first, and a record made under protection
could be numbered after the release and shown; an administrator (or an operator's mistake) starting a second
hub, or deleting a lease file that looked stale. One writer at a time: a standby refuses to sequence, takes
over when the leader lets go or dies, and a deposed leader that did not notice is refused (fencing).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from ledger.errors import Code, InputError, NotFoundError
from ledger.hub.log import HubStore, ProvisionRecord, open_hub_store
from ledger.hub.sequencer import NotLeader, Sequencer
from ledger.linkage.codes import Registration, agency_code, register
from tests.support.people import individual_number

REPO = Path(__file__).resolve().parents[2]
A, B = "131016", "131024"
SECRET = b"s" * 32


@pytest.fixture
def hub_url(backend: str | None, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend is None else backend


@pytest.fixture
def stores(hub_url: str) -> Iterator[list[HubStore]]:
    """Hub processes' stores on one database (each its own engine, as separate processes would have)."""
    opened: list[HubStore] = []
    yield opened
    for store in opened:
        store.close()


def open_as(stores: list[HubStore], url: str, who: str) -> HubStore:
    store = open_hub_store(url, who)
    stores.append(store)
    return store


def nothing(conn: Connection) -> int | None:
    return None


def bare(seq: Sequencer) -> int:
    """One sequenced item with nothing else written: the number alone."""
    return seq.append(nothing, lambda conn, n: None)


def test_a_standby_refuses_to_sequence_until_the_leader_lets_go(hub_url: str, stores: list[HubStore]) -> None:
    leader, standby = open_as(stores, hub_url, "hub-1").sequencer, open_as(stores, hub_url, "hub-2").sequencer
    assert leader.take_lease() == 1
    with pytest.raises(NotLeader) as refused:
        standby.take_lease()
    assert refused.value.code == Code.NOT_LEADER
    with pytest.raises(NotLeader):
        bare(standby)  # without the lease: nothing sequenced
    assert [bare(leader) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(NotLeader):
        standby.take_lease(wait=0.3)  # the leader is alive: waiting does not help
    leader.release()
    with pytest.raises(NotLeader):
        bare(leader)  # let go: it no longer sequences
    assert standby.take_lease(wait=5) == 2
    assert [bare(standby) for _ in range(2)] == [4, 5]  # on from the last number: none twice, none skipped
    assert standby.last() == leader.last() == 5


LEADER = """
import sys, time
from ledger.hub.log import open_hub_store
store = open_hub_store(sys.argv[1], "hub-doomed")
store.sequencer.take_lease()
for _ in range(4):
    print(store.sequencer.append(lambda conn: None, lambda conn, n: None), flush=True)
print("leading", flush=True)
time.sleep(600)
"""


def test_a_standby_takes_over_when_the_leader_process_dies(hub_url: str, stores: list[HubStore]) -> None:
    """The leader is killed (SIGKILL: no clean-up runs): the kernel drops its file lock, PostgreSQL its session
    and advisory lock; the standby that was refused takes over, numbering on from the dead leader's last."""
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER, hub_url], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert leader.stdout is not None
        lines = [leader.stdout.readline().strip() for _ in range(5)]
        assert lines == ["1", "2", "3", "4", "leading"], leader.stderr.read() if leader.stderr else ""
        standby = open_as(stores, hub_url, "hub-standby").sequencer
        with pytest.raises(NotLeader):
            standby.take_lease()
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(timeout=30)
        assert standby.take_lease(wait=30) == 2
        assert bare(standby) == 5
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()


def test_a_deposed_leader_that_did_not_notice_is_refused(hub_url: str, stores: list[HubStore]) -> None:
    """The leader loses its lease without knowing — its PostgreSQL session cut (a network partition, an
    administrator's ``pg_terminate_backend``), or on SQLite its lease file deleted by an operator who took it
    for stale. A standby takes the lease; the old leader's next append is refused, never a second number 3."""
    old, new = open_as(stores, hub_url, "hub-1"), open_as(stores, hub_url, "hub-2")
    old.sequencer.take_lease()
    assert [bare(old.sequencer) for _ in range(2)] == [1, 2]
    if old.engine.dialect.name == "postgresql":
        assert old.sequencer._conn is not None
        pid = old.sequencer._conn.execute(text("SELECT pg_backend_pid()")).scalar()
        old.sequencer._conn.commit()
        with new.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    else:
        assert old.sequencer.lease_file is not None
        old.sequencer.lease_file.unlink()
    assert new.sequencer.take_lease(wait=10) == 2
    assert bare(new.sequencer) == 3
    with pytest.raises(NotLeader):
        bare(old.sequencer)
    assert not old.sequencer.leader
    assert bare(new.sequencer) == 4 and new.sequencer.last() == 4


def test_a_redelivered_record_keeps_its_number_and_spends_none(hub_url: str, stores: list[HubStore]) -> None:
    """Threat: the broker operator (or the network) handing a provider's record to the hub twice: filed once,
    under its first number; a flag change likewise."""
    hub = open_as(stores, hub_url, "hub-1")
    hub.sequencer.take_lease()
    x = individual_number()
    code = agency_code(SECRET, A, x)
    register(hub.codes, b"h" * 32, Registration(A, code, x))
    record = ProvisionRecord("r-1", code, B, "児童手当", 74, "地方税関係情報", "provided", "2026-12-07T01:00:00+09:00")
    assert hub.log.provision(A, record) == 1
    assert hub.log.provision(A, record) == 1
    assert hub.log.flag(A, code, "NON_DISCLOSURE", "set", "c-1") == 2
    assert hub.log.flag(A, code, "NON_DISCLOSURE", "set", "c-1") == 2
    assert hub.log.provision(A, ProvisionRecord("r-2", *list(vars(record).values())[1:])) == 3
    # and it lasts: a new leader on the same database numbers on
    hub.close()
    again = open_as(stores, hub_url, "hub-2")
    again.sequencer.take_lease()
    assert again.log.provision(A, record) == 1 and bare(again.sequencer) == 4


def test_bad_input_is_refused_with_a_ledger_error_and_spends_no_number(hub_url: str, stores: list[HubStore]) -> None:
    """Threat: a peer agency sending junk or filing under a code it never registered (another agency's, say):
    a clear error, nothing filed, no number spent — the next good item takes the next number."""
    hub = open_as(stores, hub_url, "hub-1")
    hub.sequencer.take_lease()
    x = individual_number()
    code = agency_code(SECRET, A, x)
    register(hub.codes, b"h" * 32, Registration(A, code, x))
    good = ProvisionRecord("r-1", code, B, "児童手当", 74, "地方税関係情報", "provided", "2026-12-07T01:00:00+09:00")
    fields = list(vars(good).values())
    bad = [
        (InputError, lambda: hub.log.provision(A, ProvisionRecord("r-2", *fields[1:3], "x" * 201, *fields[4:]))),
        (InputError, lambda: hub.log.provision(A, ProvisionRecord("", *fields[1:]))),
        (InputError, lambda: hub.log.provision(A, ProvisionRecord("r-3", *fields[1:4], 0, *fields[5:]))),
        (InputError, lambda: hub.log.provision(A, ProvisionRecord("r-4", "a" + "z" * 32, *fields[2:]))),
        (NotFoundError, lambda: hub.log.provision(B, ProvisionRecord("r-5", *fields[1:]))),  # B never registered it
        (InputError, lambda: hub.log.flag(A, code, "SOMETHING", "set", "c-1")),
        (InputError, lambda: hub.log.flag(A, code, "NON_DISCLOSURE", "unset", "c-2")),  # type: ignore[arg-type]
    ]
    for error, attempt in bad:
        with pytest.raises(error):
            attempt()
    assert hub.sequencer.last() == 0
    assert hub.log.provision(A, good) == 1
