"""Agencies on different nodes vouching for each other's signing keys, as `flagledger agency trust` does."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.app import Actor
from ledger.bootstrap import Node

__all__ = ["trust", "trust_everyone"]


def trust(here: Node, there: Node, code: str | None = None, name: str | None = None) -> None:
    """``here``'s administrator vouches for the current key of ``there``'s agency ``code`` (default: the first
    agency ``there`` hosts), exchanged out of band; ``name`` defaults to the code."""
    code = code or sorted(there.app.hosted)[0]
    signer = there.app.signers[code]
    record = next(r for r in there.app.keyring.records() if r.key_id == signer.key_id)
    here.app.register_remote_agency(
        Actor(sorted(here.app.hosted)[0], "admin"), code, name or code, "municipality", signer.key_id,
        signer.public_raw.hex(), record.valid_from,
    )  # fmt: skip


def trust_everyone(nodes: Sequence[Node]) -> None:
    """Every node vouches for every agency hosted on every other node."""
    for here in nodes:
        for there in nodes:
            if there is not here:
                for code in sorted(there.app.hosted):
                    trust(here, there, code)
