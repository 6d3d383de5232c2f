"""What the read side takes of a running node, named by shape: ``ledger.runtime.bootstrap.Node`` (the one
bootstrap, a layer above) satisfies it, so views and audits read a node without importing the bootstrap."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ledger.app import FlagLedger
    from ledger.log.keyed_hash import KeyedHash
    from projections.base import Projector
    from projections.verified import VerifiedState

__all__ = ["NodeKeys", "NodeParts", "NodeSettings"]


class NodeSettings(Protocol):
    """The parts of a node's configuration the read side uses."""

    @property
    def data_dir(self) -> Path: ...

    def views_url(self) -> str: ...


class NodeKeys(Protocol):
    """The secrets the read side uses (from the node's key store)."""

    def pseudonym_hash(self) -> KeyedHash: ...


class NodeParts(Protocol):
    """A running node: its ledger, its views' engine and projector, and the state security decisions read."""

    @property
    def config(self) -> NodeSettings: ...

    @property
    def keys(self) -> NodeKeys: ...

    @property
    def app(self) -> FlagLedger: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def projector(self) -> Projector: ...

    @property
    def state(self) -> VerifiedState: ...

    @property
    def extra(self) -> dict[str, object]: ...
