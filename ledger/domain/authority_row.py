"""The shape of one row of the writer-authority table (:class:`Rule`, who may write, which node kinds may
sign), the stream ids a creation event must have, and the wording the rows share. The rows are in the
``authority_rules_*`` modules, assembled by :mod:`ledger.domain.authority_rules`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

__all__ = [
    "ADMIN",
    "AGENCY_NODES",
    "DOMAIN_PREFIX",
    "NODE",
    "SETUP",
    "NodeKind",
    "Rule",
    "Writer",
    "admin",
    "agency_stream",
    "checkpoints_stream",
    "keys_stream",
    "roster_stream",
]


class NodeKind(StrEnum):
    AGENCY = "agency"  # a municipality's or protection body's node (every node today)
    HUB = "hub"  # the linkage hub (情報提供ネットワークシステム), coming
    PORTAL = "portal"  # Mynaportal, coming


class Writer(StrEnum):
    OWNER = "owner"  # the agency that signed the stream's v1
    ANY_AGENCY = "any agency"


AGENCY_NODES = frozenset({NodeKind.AGENCY})


@dataclass(frozen=True)
class Rule:
    topic: str
    shared: bool
    writer: Writer
    locally: str
    agency_fields: tuple[str, ...] = ()
    key_fields: tuple[str, ...] = ()
    other_agency_fields: tuple[str, ...] = ()
    party: str = ""
    nodes: frozenset[NodeKind] = AGENCY_NODES
    # the stream id a creation event must have, from the signer's agency (aggregates with one stream per agency:
    # a peer cannot take another agency's registry id with a stream of its own)
    stream_of: Callable[[str], UUID] | None = None
    note: str = ""


def agency_stream(origin: str) -> UUID:
    from ledger.domain.agencies import Agency

    return Agency.create_id(code=origin)


def keys_stream(origin: str) -> UUID:
    from ledger.domain.keys import KeyRegistry

    return KeyRegistry.create_id(agency=origin)


def roster_stream(origin: str) -> UUID:
    from ledger.domain.roster import StaffRoster

    return StaffRoster.create_id(agency=origin)


def checkpoints_stream(origin: str) -> UUID:
    from ledger.domain.checkpoints import CheckpointLog

    return CheckpointLog.create_id(agency=origin)


DOMAIN_PREFIX = "ledger.domain."
ADMIN = "administrator (`administer`)"


def admin(command: str) -> str:
    return f"administrator (`administer`: `flagledger {command}`)"


SETUP = "the node at set-up (`flagledger init`)"
NODE = "the node itself (no staff)"
