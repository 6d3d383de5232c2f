"""``flagledger key rotate|revoke|list``: the hosted agencies' signing keys."""

from __future__ import annotations

from pathlib import Path

from ledger.app import Actor
from ledger.cli.base import as_actor, command, group, node, out
from ledger.cli.parsing import PATH, argument, option
from ledger.runtime.bootstrap import rotate_key

key = group("key", "signing keys")


@command(key, "rotate", help="create a new signing key and retire the current one")
@as_actor()
@option("--signing-key-file", type=PATH, default=None, help="adopt this new Ed25519 key (PEM, a mounted secret)")
def rotate(actor: Actor, signing_key_file: Path | None) -> int:
    out({"key_id": rotate_key(node(), actor, signing_key_file)})
    return 0


@command(key, "revoke", help="revoke a (retired) key")
@as_actor()
@argument("key_id")
@option("--reason", required=True)
def revoke(actor: Actor, key_id: str, reason: str) -> int:
    node().app.revoke_key(actor, key_id, reason)
    out({"revoked": key_id, "by": str(actor)})
    return 0


@command(key, "list", help="list known keys")
def list_() -> int:
    for r in node().app.keyring.records():
        out(
            {
                "agency": r.agency,
                "key_id": r.key_id,
                "public_hex": r.public_hex,
                "valid_from": r.valid_from,
                "valid_until": r.valid_until,
                "revoked_from": r.revoked_from,
            }
        )
    return 0
