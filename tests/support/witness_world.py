"""A hub with its flag map, agencies that publish their own tree heads, and two independent witnesses, on one
memory transport (issue #20, ledger.witness). Each witness has its own keys and its own database; the hub
forwards agencies' heads to them and relays what they seal to each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ledger.hub.heads import MapHeads
from ledger.hub.log import HubStore
from ledger.hub.service import HubService
from ledger.linkage.agency import AgencyEnd, Inbound
from ledger.linkage.checks import MapChecks
from ledger.linkage.map_heads import MapHead, sign_head
from ledger.linkage.person_keys import PersonKeyProver
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from ledger.linkage.tree_heads import TreeHead
from ledger.log.signing import Signer
from ledger.merkle import EMPTY_ROOT, consistency_proof, leaf_hash, root_hash
from ledger.witness.service import WitnessService
from ledger.witness.store import WitnessStore, open_witness_store
from tests.support.hub_store import hub_store
from tests.support.hub_world import START, A, B, Cast
from tests.support.map_hub import vrf_key
from tests.support.postgres import temp_database

W1, W2 = "W-KANTO", "W-KINKI"  # two independent witnesses, e.g. prefectures' nodes


class SplitHeads(MapHeads):
    """A hub insider's split view: every head it announces to ``victim`` is another head for the same sequence
    (a map without any flag), signed with the hub's key; everyone else is shown the true one."""

    victim = ""

    def announcement(self, store: HubStore, head: MapHead, since: MapHead | None, recipient: str):  # type: ignore[no-untyped-def]
        if recipient == self.victim:
            head = sign_head(self.signer, seq=head.seq, log_size=head.log_size, log_root=head.log_root,
                             map_root=bytes(32), time=head.time, index=head.index, prev=head.prev)  # fmt: skip
        return super().announcement(store, head, since, recipient)


class RollingHeads(MapHeads):
    """A hub insider rolling one witness back: once ``victim`` is set, each head announced to it claims the empty
    log of the start (signed, with a fresh sequence number), while everyone else is shown the true one."""

    victim = ""

    def announcement(self, store: HubStore, head: MapHead, since: MapHead | None, recipient: str):  # type: ignore[no-untyped-def]
        if recipient == self.victim:
            head = sign_head(self.signer, seq=head.seq, log_size=0, log_root=EMPTY_ROOT, map_root=head.map_root,
                             time=head.time, index=head.index, prev=head.prev)  # fmt: skip
        return super().announcement(store, head, since, recipient)


def agency_log(signer: Signer, entries: list[bytes], size: int, time: str = "2026-01-01T00:00:00+00:00") -> TreeHead:
    """An agency's signed head over the first ``size`` of ``entries``."""
    leaves = [leaf_hash(e) for e in entries[:size]]
    return TreeHead.sign(signer, size, root_hash(leaves), time)


def proof(entries: list[bytes], old: int, new: int) -> tuple[bytes, ...]:
    return tuple(consistency_proof([leaf_hash(e) for e in entries[:new]], old))


@dataclass
class WitnessWorld:
    cast: Cast
    hub: HubService
    agencies: dict[str, AgencyEnd]
    witnesses: dict[str, WitnessService]
    stores: dict[str, WitnessStore]
    broker: MemoryBroker
    got: dict[str, list[Inbound]] = field(default_factory=dict)

    def settle(self, rounds: int = 12) -> None:
        """Step the hub, the witnesses and the agencies until nothing moves."""
        for _ in range(rounds):
            moved = 0
            step = self.hub.step(timeout_ms=10)
            moved += step.applied + step.parked + step.sent
            for w in self.witnesses.values():
                done = w.step(timeout_ms=10)
                moved += done.applied + done.sent + len(done.refused)
            for name, end in self.agencies.items():
                read = end.read_inbox(timeout_ms=10)
                self.got.setdefault(name, []).extend(read)
                moved += len(read)
            if not moved:
                return

    def received(self, name: str, kind: str) -> list[Inbound]:
        return [i for i in self.got.get(name, []) if type(i.message).kind == kind]

    def reopen(self, name: str) -> WitnessService:
        """The witness's process restarted: a new service on the same database and inbox."""
        old = self.witnesses[name]
        self.witnesses[name] = WitnessService(
            old.store, MemoryTransport(self.broker, name), old.keys, old.directory, old.book.hub_key, old.peers
        )
        return self.witnesses[name]


@contextmanager
def witness_world(
    backend: str | None, tmp_path: Path, heads: type[MapHeads] = MapHeads, quorum: int | None = None
) -> Iterator[WitnessWorld]:
    """A, B, the hub (``heads`` its flag map) and W1, W2, on SQLite files or fresh PostgreSQL databases; with
    ``quorum``, A and B check the hub's map (``MapChecks``) naming W1 and W2, needing that many cosignatures."""
    cast = Cast.of(A, B, W1, W2)
    directory = cast.directory()
    broker = MemoryBroker()
    with ExitStack() as stack:
        url: Callable[[str], str] = (
            (lambda name: f"sqlite:///{tmp_path / (name + '.sqlite')}")
            if backend is None
            else (lambda name: stack.enter_context(temp_database("fl_witness")))
        )
        store = stack.enter_context(hub_store(backend, tmp_path))
        wiring = heads(cast.hub.signer, PersonKeyProver(vrf_key()))
        hub = HubService(store, MemoryTransport(broker, "hub"), cast.hub, directory, lambda: START, heads=wiring,
                         witnesses=(W1, W2))  # fmt: skip

        def checks(name: str) -> MapChecks | None:
            if quorum is None:
                return None
            return MapChecks(name, cast.hub.signer.public_key, vrf_key().public_key(), now=lambda: START,
                             witnesses=(W1, W2), witness_keys=directory.sender_keys(START), quorum=quorum)  # fmt: skip

        ends = {
            n: AgencyEnd(cast.agencies[n], MemoryTransport(broker, n), directory, lambda: START, checks=checks(n))
            for n in (A, B)
        }
        stores, services = {}, {}
        for name in (W1, W2):
            stores[name] = open_witness_store(url(name))
            stack.callback(stores[name].close)
            services[name] = WitnessService(
                stores[name], MemoryTransport(broker, name), cast.agencies[name], directory,
                cast.hub.signer.public_key, peers=(W1, W2), now=lambda: START,
            )  # fmt: skip
        yield WitnessWorld(cast, hub, ends, services, stores, broker)
