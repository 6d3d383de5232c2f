"""A hub and agencies on one transport, each with its own keys: the in-process slice of the linkage (issue 19).

Keys are generated here for tests only (an Ed25519 signing key, an X25519 sealing key and a code secret per
party); ``Directory`` publishes what each party may know of the others. Nothing but the transport's broker is
shared between the parties, and the hub's database is the hub's alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.domain.types import AgencyKind
from ledger.hub.log import HubStore
from ledger.hub.service import HubService, Step
from ledger.linkage.agency import AgencyEnd, Inbound
from ledger.linkage.directory import FEATURES, Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import Message
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.transport import Transport
from ledger.log.signing import KeyRecord, Signer
from ledger.log.staff_roster import RosterState

START = datetime(2026, 1, 1, tzinfo=UTC)
A, B, C, D = "131016", "131024", "131032", "131041"  # X's old municipality, where X fled, a querier, another


def agency_keys(name: str) -> PartyKeys:
    return PartyKeys(Signer.generate(name), X25519PrivateKey.generate(), os.urandom(32))


def hub_keys() -> PartyKeys:
    return PartyKeys(Signer.generate(HUB), X25519PrivateKey.generate(), os.urandom(32))


@dataclass(frozen=True)
class Cast:
    """Everyone's keys, made once: two worlds built from one cast differ only in what happens in them."""

    hub: PartyKeys
    agencies: dict[str, PartyKeys]

    @classmethod
    def of(cls, *names: str) -> Cast:
        return cls(hub_keys(), {n: agency_keys(n) for n in names})

    @property
    def portal(self) -> PartyKeys:
        """The portal's keys, for a cast made with ``PORTAL`` among its names (records sealed to the portal)."""
        return self.agencies[PORTAL]

    def directory(self) -> Directory:
        d = Directory()
        parties = [(self.hub.signer, self.hub.sealing), *((k.signer, k.sealing) for k in self.agencies.values())]
        for signer, sealing in parties:
            record = KeyRecord(signer.agency, signer.key_id, signer.public_raw.hex(), START)
            # an agency as the hub's administrator imports it: with its kind (every agency of a cast is a
            # municipality; a hub asks no kind of itself or of the portal)
            kind = None if signer.agency in (HUB, PORTAL) else AgencyKind.MUNICIPALITY
            # and of this release: it understands the hub's sequence in its messages (ledger.linkage.directory)
            d.add(record, sealing.public_key(), kind, () if kind is None else FEATURES)
        return d


@dataclass
class World:
    cast: Cast
    hub: HubService
    agencies: dict[str, AgencyEnd] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        cast: Cast,
        store: HubStore,
        open_transport: Callable[[str], Transport],
        now: Callable[[], datetime] | None = None,
        rosters: Mapping[str, RosterState] | None = None,
    ) -> World:
        directory = cast.directory()
        now = now or (lambda: START)  # every key is valid from START on
        hub = HubService(store, open_transport(HUB), cast.hub, directory, now, rosters)
        ends = {n: AgencyEnd(k, open_transport(n), directory, now) for n, k in cast.agencies.items()}
        return cls(cast, hub, ends)

    def settle(self, rounds: int = 20, timeout_ms: int = 50) -> list[Step]:
        """Step the hub until a step finds nothing to do."""
        steps = []
        for _ in range(rounds):
            step = self.hub.step(timeout_ms=timeout_ms)
            steps.append(step)
            if not (step.applied or step.parked or step.replays or step.sent):
                break
        return steps

    def inbox(self, name: str, timeout_ms: int = 50) -> list[Inbound]:
        return self.agencies[name].read_inbox(timeout_ms=timeout_ms)


def normalised(messages: list[Inbound], *ids: str) -> list[tuple[str, dict[str, object]]]:
    """Kinds and fields with every random id (event ids, request ids) replaced by its order of appearance."""
    names: dict[str, str] = {i: f"<given {n}>" for n, i in enumerate(ids)}
    out = []
    for inbound in messages:
        fields = asdict(inbound.message)  # type: ignore[call-overload]  # every Message is a dataclass
        for key in ("request_id",):
            if key in fields:
                fields[key] = names.setdefault(str(fields[key]), f"<id {len(names)}>")
        out.append((type(inbound.message).kind, fields))
    return out


def values(message: Message) -> set[str]:
    return {str(v) for v in asdict(message).values()}  # type: ignore[call-overload]
