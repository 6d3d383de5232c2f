"""The witness role's data directory and its running loop (issue #20, ``init --role witness``, ``node --role
witness``): its own keys and database, named by its own code; the loop holds the hub's heads it is announced.

Threats: an administrator's mistake (a witness without a name, or named like the hub: refused); a hub insider
(the loop keeps the hub's heads durably, so a later fork is caught against them).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ledger.errors import InputError
from ledger.hub.heads import MapHeads
from ledger.hub.log import open_hub_store
from ledger.hub.service import HubService
from ledger.linkage.names import HUB
from ledger.linkage.person_keys import PersonKeyProver
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from ledger.node.witness_loop import witness_loop
from ledger.runtime.roles import WITNESS, import_entries, init_role, open_role, role_of
from tests.support.map_hub import vrf_key

W = "W-KANTO"


def test_a_witness_directory_is_named_by_its_code(tmp_path: Path) -> None:
    """Administrator's mistake: no name, or the hub's; the witness's entry publishes its own code and key."""
    with pytest.raises(InputError):
        init_role(tmp_path / "w0", WITNESS)
    with pytest.raises(InputError):
        init_role(tmp_path / "w1", WITNESS, party=HUB)
    made = init_role(tmp_path / "w", WITNESS, party=W)
    again = open_role(tmp_path / "w")
    assert role_of(tmp_path / "w") == WITNESS and again.own == made.own and again.own.party == W
    assert again.keys.name == W and again.keys.signer.key_id == made.keys.signer.key_id


def test_the_witness_loop_keeps_the_heads_the_hub_announces(tmp_path: Path) -> None:
    """Hub insider: the running witness keeps each head the hub announced in its own database, so a restarted
    witness still holds it (and a fork against it is caught: tests/integration/test_witnesses.py)."""
    hub_node, w_node = init_role(tmp_path / "hub", HUB), init_role(tmp_path / "w", WITNESS, party=W)
    import_entries(hub_node, w_node.own.as_json())
    import_entries(w_node, hub_node.own.as_json())
    broker = MemoryBroker()
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    heads = MapHeads(hub_node.keys.signer, PersonKeyProver(vrf_key()))
    hub = HubService(store, MemoryTransport(broker, HUB), hub_node.keys, hub_node.directory(), heads=heads)
    stop, counts = threading.Event(), Counter[str]()
    runner = threading.Thread(target=witness_loop, args=(w_node, MemoryTransport(broker, W), stop, counts))
    runner.start()
    try:
        hub.step(timeout_ms=10)  # the first head, announced to every party the hub knows: the witness too
        deadline = time.monotonic() + 10
        while counts["applied"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(10)
        store.close()
    assert counts["applied"] >= 1 and not runner.is_alive()
    kept = open_role(tmp_path / "w").witness_store()
    try:
        assert [h.seq for h in kept.load().hub_heads] == [heads.last.seq if heads.last else -1]
    finally:
        kept.close()
