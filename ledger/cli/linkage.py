"""``flagledger linkage directory export|import|list``: a hub's or portal's published keys, and the other parties'.

Each party exports its entry (its signing key and its sealing key, public halves only) and hands the file to the
others out of band; each imports the entries it needs: the hub every agency's and the portal's, the portal the
hub's. Agencies' own export is the agency node's (another piece of #19). docs/linkage.md, the roles.
"""

from __future__ import annotations

import json
from pathlib import Path

from ledger.cli.base import command, data_dir, group, out
from ledger.cli.parsing import PATH, argument
from ledger.errors import InputError
from ledger.runtime.roles import import_entries, open_role

linkage = group("linkage", "a hub's or portal's keys in the linkage: export its own, import the other parties'")
directory = group("directory", "the parties' published signing and sealing keys")
linkage.add_command(directory)


@command(directory, "export", help="print this hub's or portal's own entry (public keys only) as JSON")
def export() -> int:
    out(open_role(data_dir()).own.as_json())
    return 0


@command(directory, "import", help="take in another party's entry (or a list of entries) from FILE")
@argument("file", type=PATH)
def import_(file: Path) -> int:
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read a directory entry from the file: {type(exc).__name__}", field="file") from exc
    out({"imported": import_entries(open_role(data_dir()), raw)})
    return 0


@command(directory, "list", help="the parties this hub or portal knows, with their key ids")
def list_() -> int:
    for entry in open_role(data_dir()).entries():
        out({"party": entry.party, "key_id": entry.key_id, "valid_from": entry.valid_from})
    return 0
