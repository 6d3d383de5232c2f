"""An agency node's side of the directory exchange with the hub (issue 19, docs/linkage.md): its own entry for
the hub's ``linkage directory import``, and the hub's entry taken into ``linkage.hub`` — each checked as the
roles check theirs (``ledger.runtime.roles.DirectoryEntry``: the key id is the public key's, keys well-formed,
a time with offset), so a tampered or mistyped entry is refused whole, never half-written into config.json.
"""

from __future__ import annotations

from typing import Any

from ledger.errors import InputError
from ledger.linkage.directory import FEATURES
from ledger.linkage.names import HUB
from ledger.linkage.sealing import public_hex
from ledger.runtime.config import NodeConfig
from ledger.runtime.keystore import Keys, open_keystore
from ledger.runtime.linkage import HubEntry, hosted_agency, sealing_key
from ledger.runtime.roles import DirectoryEntry

__all__ = ["own_entry", "take_hub_entry"]


def own_entry(config: NodeConfig, kind: str = "") -> DirectoryEntry:
    """This agency's published keys: its current signing key and its sealing key (made now if this is the
    first time: the same key hub mode opens with), and its kind as its own ledger registered it (``kind``) —
    a claim the hub's administrator accepts, or not, at import."""
    agency = hosted_agency(config)
    current = config.agency(agency).current_key
    sealing = sealing_key(Keys(open_keystore(config))).public_key()
    return DirectoryEntry(
        agency,
        str(current["key_id"]),
        str(current["public_hex"]),
        str(current["valid_from"]),
        public_hex(sealing),
        kind=kind,
        # what this release understands: the hub sends hub_seq only to an entry naming it (docs/linkage.md,
        # "Upgrade order"); an older hub refuses the field at import — keep the entry it already has
        features=",".join(sorted(FEATURES)),
    ).checked()


def take_hub_entry(config: NodeConfig, raw: Any) -> DirectoryEntry:
    """Keep the hub's entry (``raw``: the hub's ``linkage directory export``, or a list holding it) as
    ``linkage.hub``; the mode is left as it is (switching is the administrator's own step)."""
    given = [DirectoryEntry.parse(e) for e in (raw if isinstance(raw, list) else [raw])]
    others = sorted({e.party for e in given if e.party != HUB})
    if others or len(given) != 1:
        raise InputError(
            f"an agency node takes the hub's entry alone, not {', '.join(others) or 'several'}", field="party"
        )
    (hub,) = given
    HubEntry.of(hub.as_json())
    config.linkage = {**config.linkage, "hub": hub.as_json()}
    config.save()
    return hub
