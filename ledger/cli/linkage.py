"""``flagledger linkage directory export|import|list``: a hub's or portal's published keys, and the other parties'.

Each party exports its entry (its signing key and its sealing key, public halves only) and hands the file to the
others out of band; each imports the entries it needs: the hub every agency's and the portal's, the portal the
hub's. On an agency node (hub mode) ``export`` prints the agency's own entry and ``import`` takes the hub's into
config.json's ``linkage.hub`` (``ledger.runtime.agency_entry``). docs/linkage.md, the roles. ``cosignatures``: an
agency node's witnesses' cosignatures of its own checkpoints (docs/accountable-hub.md).
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from consumers.linkage_witness import cosignatures
from ledger.cli.base import command, data_dir, group, node, out
from ledger.cli.parsing import PATH, argument, choices, option
from ledger.domain.types import AgencyKind
from ledger.errors import InputError
from ledger.hub.erasure import erasures
from ledger.hub.inspect import record_access
from ledger.runtime.agency_entry import own_entry, take_hub_entry
from ledger.runtime.config import NodeConfig
from ledger.runtime.linkage import hosted_agency
from ledger.runtime.roles import LINKAGE_ROLES, import_entries, open_role

linkage = group("linkage", "a hub's or portal's keys in the linkage: export its own, import the other parties'")
directory = group("directory", "the parties' published signing and sealing keys")
linkage.add_command(directory)


@command(directory, "export", help="print this party's own entry (public keys only) as JSON")
def export() -> int:
    config = NodeConfig.load(data_dir())
    if config.role in LINKAGE_ROLES:
        out(open_role(data_dir()).own.as_json())
        return 0
    kind = str(node().app.agency(hosted_agency(config)).kind)  # as this node's own ledger registered it
    out(own_entry(config, kind).as_json())
    return 0


@command(directory, "import", help="take in another party's entry (or a list) from FILE; an agency node: the hub's")
@argument("file", type=PATH)
@option(
    "--kind",
    type=choices(AgencyKind),
    default=None,
    help="at the hub: the agency's kind you vouch for (must match the entry's own, if it names one)",
)
def import_(file: Path, kind: str | None) -> int:
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read a directory entry from the file: {type(exc).__name__}", field="file") from exc
    config = NodeConfig.load(data_dir())
    if config.role not in LINKAGE_ROLES:  # an agency node: the hub's keys, as linkage.hub
        if kind:
            raise InputError("--kind is for an agency's entry imported at the hub", field="kind")
        hub = take_hub_entry(config, raw)
        out({"imported": [hub.party], "mode": str(config.linkage.get("mode", "shared"))})
        return 0
    role = open_role(data_dir())
    imported = import_entries(role, raw, kind or "")
    kinds = {e.party: e.kind for e in role.entries()}
    out({"imported": imported, "kinds": {p: kinds.get(p) or None for p in imported}})
    return 0


@command(directory, "list", help="the parties this hub or portal knows, with their key ids")
def list_() -> int:
    for entry in open_role(data_dir()).entries():
        # its kind and the features it understands (none: an older release, sent no hub_seq)
        fields = {"kind": entry.kind or None, "features": entry.features or None}
        out({"party": entry.party, "key_id": entry.key_id, "valid_from": entry.valid_from, **fields})
    return 0


@command(linkage, "erasures", help="at the hub: the agencies' erasures it applied (sequence, agency, request, records)")
def erasures_() -> int:
    store = open_role(data_dir()).hub_store()
    try:
        # a person's read of the hub's database, recorded before it as every such read (ledger.hub.inspect)
        record_access(
            store.engine, getpass.getuser(), "the hub's erasures (flagledger linkage erasures)", "hub_erasures"
        )
        out({"erasures": erasures(store.engine)})
    finally:
        store.close()
    return 0


@command(linkage, "cosignatures", help="at an agency node: the witnesses' cosignatures of its checkpoints, as evidence")
def cosignatures_() -> int:
    out({"cosignatures": cosignatures(node().engine)})
    return 0
