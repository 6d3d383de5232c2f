"""Agencies on different nodes vouching for each other's signing keys, as `flagledger agency trust` does."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from ledger.app import Actor
from ledger.runtime.bootstrap import AgencySpec, Node

__all__ = ["agency_pair", "trust", "trust_everyone"]


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


def agency_pair(make_node: Callable[..., Node], tmp_path: Path) -> tuple[Node, Node]:
    """Municipality A on one node, B on another: one pseudonym secret, each vouching for the other's key."""
    from tests.conftest import A, B

    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b)
    trust(b, a)
    return a, b
