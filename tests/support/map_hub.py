"""The hub with its flag map wired in (ledger.hub.heads), agencies that check it (ledger.linkage.checks), and
malicious hubs: each a small subclass of the real :class:`MapHeads`, bent in one way, run by the real
``HubService`` over the real database and transport (issue #20, docs/accountable-hub.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import cast

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Connection

from ledger.hub.heads import MapHeads, Seal
from ledger.hub.log import HubStore
from ledger.hub.service import HubService
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.checks import MapChecks
from ledger.linkage.flag_map import MapProof, SparseMerkleMap
from ledger.linkage.hiding import FlagChange
from ledger.linkage.map_heads import AUTO, STAFF, Action, MapHead, RoutingDecision, decide, sign_head
from ledger.linkage.map_messages import MapHeadMessage
from ledger.linkage.names import HUB
from ledger.linkage.person_keys import PersonKeyProver
from ledger.linkage.transport import Transport
from ledger.merkle import CompactRange, leaf_hash
from tests.support.hub_world import START, Cast, World
from tests.support.people import individual_number


@cache
def vrf_key() -> rsa.RSAPrivateKey:
    """One 2048-bit VRF key per test process (making one takes a while)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Clock:
    at: datetime = START

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def open_map_world(
    cast: Cast,
    store: HubStore,
    open_transport: Callable[[str], Transport],
    heads: type[MapHeads] = MapHeads,
    *,
    hub_clock: Callable[[], datetime] | None = None,
    agency_clock: Callable[[], datetime] | None = None,
    max_age: timedelta = timedelta(seconds=60),
) -> World:
    directory = cast.directory()
    hub_now = hub_clock or (lambda: START)
    agency_now = agency_clock or (lambda: START)
    wiring = heads(cast.hub.signer, PersonKeyProver(vrf_key()))
    hub = HubService(store, open_transport(HUB), cast.hub, directory, hub_now, heads=wiring)
    ends = {}
    for name, keys in cast.agencies.items():
        checks = MapChecks(name, cast.hub.signer.public_key, vrf_key().public_key(), max_age, agency_now)
        ends[name] = AgencyEnd(keys, open_transport(name), directory, lambda: START, checks=checks)
    return World(cast, hub, ends)


def checks(world: World, name: str) -> MapChecks:
    found = world.agencies[name].checks
    assert found is not None
    return found


# -- malicious hubs ------------------------------------------------------------------------------------------


class DroppingHeads(MapHeads):
    """Files and logs every flag change, then drops ``victim``'s flags from what providers are shown (the
    person's leaf), keeping the holder's own leaf — or, with ``whole``, from the map altogether."""

    victim = ""
    whole = False

    def fold(self, change: FlagChange) -> None:
        super().fold(change)
        if change.holder != self.victim or change.action != "set":
            return
        if self.whole:
            self.flags.apply(FlagChange(change.seq, change.person, change.holder, change.flag, "release"))
        else:
            for person in self.flags._chain(change.person):
                self.flags.map.delete(self.key_of(person))


class IgnoringHeads(MapHeads):
    """Routes every query "answer automatically", with the honest proof of a flagged leaf."""

    def route(self, *, request: str, provider: str, person: str) -> tuple[RoutingDecision, MapHead, MapProof]:
        decision, head, proof = super().route(request=request, provider=provider, person=person)
        lie = decide(self.signer, request=request, provider=provider, person_key=decision.person_key, action=AUTO,
                     head=head)  # fmt: skip
        return lie, head, proof


class StaleHeads(MapHeads):
    """Keeps its first head and map, and routes under them: a stale map, from before any flag was set."""

    first: tuple[MapHead, SparseMerkleMap] | None = None

    def publish(self, store: HubStore, seal: Seal, recipients: list[str], now: datetime) -> MapHead:
        head = super().publish(store, seal, recipients, now)
        if self.first is None:
            self.first = (head, copy.deepcopy(self.flags.map))
        return head

    def route(self, *, request: str, provider: str, person: str) -> tuple[RoutingDecision, MapHead, MapProof]:
        assert self.first is not None
        head, old = self.first
        key = self.key_of(person)
        proof = old.prove(key)
        action: Action = STAFF if proof.value is not None else AUTO
        decision = decide(self.signer, request=request, provider=provider, person_key=key, action=action, head=head)
        return decision, head, proof


class RewritingHeads(MapHeads):
    """Rewrites the first leaf of its log (an old flag change) before each head after the first: its log forks."""

    def sign(self, store: HubStore, *, seq: int, time: str) -> MapHead:
        if self.last is not None and self.leaves:
            self.leaves[0] = leaf_hash(b"another history")
            self.tree = CompactRange(self.leaves)
        return super().sign(store, seq=seq, time=time)


@dataclass
class SplitHeads(MapHeads):
    """Shows the provider, with its decision, another head under the number of the one it announced."""

    shown: list[MapHead] = field(default_factory=list)

    def route(self, *, request: str, provider: str, person: str) -> tuple[RoutingDecision, MapHead, MapProof]:
        decision, head, proof = super().route(request=request, provider=provider, person=person)
        other = sign_head(self.signer, seq=head.seq, log_size=head.log_size, log_root=head.log_root,
                          map_root=head.map_root, time=head.time + "+another-view", index=head.index,
                          prev=head.prev)  # fmt: skip
        self.shown.append(other)
        lie = decide(self.signer, request=request, provider=provider, person_key=decision.person_key,
                     action=cast(Action, decision.action), head=other)  # fmt: skip
        return lie, other, proof


class BentKeyHeads(MapHeads):
    """Answers registrations with the VRF proof of another number: the agency would check another key."""

    def registered(self, person: str, number: str) -> tuple[bytes, bytes, Callable[[Connection, int], None]]:
        _, key, keep = super().registered(person, number)
        other, _, _ = super().registered(person, individual_number())
        return other, key, keep


class TwoFacedHeads(MapHeads):
    """Announces to ``victim`` another head than to everyone else under each number: its own map view."""

    victim = ""

    def announcement(self, store: HubStore, head: MapHead, since: MapHead | None, recipient: str) -> MapHeadMessage:
        if recipient == self.victim:
            head = sign_head(self.signer, seq=head.seq, log_size=head.log_size, log_root=head.log_root,
                             map_root=head.map_root, time=head.time + "+for-" + recipient, index=head.index,
                             prev=head.prev)  # fmt: skip
        return super().announcement(store, head, since, recipient)


@dataclass
class StoryHeads(MapHeads):
    """Tells one story under one head and another under the next: once ``victim`` (a person id) is set, it
    signs a head whose map lacks the person's flags, routes an automatic answer about them under it, and
    announces that head to everyone but ``hidden`` (the holder); under the next head the flags are back."""

    victim: str = ""
    hidden: str = ""
    saved: bytes | None = None

    def changed(self) -> bool:
        return bool(self.victim) or self.saved is not None or super().changed()

    def sign(self, store: HubStore, *, seq: int, time: str) -> MapHead:
        key = self.key_of(self.victim) if self.victim else b""
        if self.victim and self.saved is None:
            self.saved = self.flags.map.prove(key).value
            self.flags.map.delete(key)
        elif self.saved is not None and not self.victim:
            self.flags.map.set(self._restore_key, self.saved)
            self.saved = None
        return super().sign(store, seq=seq, time=time)

    def publish(self, store: HubStore, seal: Seal, recipients: list[str], now: datetime) -> MapHead:
        lying = bool(self.victim) and self.saved is None
        shown = [r for r in recipients if not (lying and r == self.hidden)]
        return super().publish(store, seal, shown, now)

    def route(self, *, request: str, provider: str, person: str) -> tuple[RoutingDecision, MapHead, MapProof]:
        head = self.last
        assert head is not None
        if person != self.victim:
            return super().route(request=request, provider=provider, person=person)
        key = self.key_of(person)
        decision = decide(self.signer, request=request, provider=provider, person_key=key, action=AUTO, head=head)
        self._restore_key, self.victim = key, ""  # the story is told once: the next head restores the flags
        return decision, head, self.flags.map.prove(key)

    _restore_key: bytes = b""
