"""``linkage.witnesses`` in an agency node's config.json (issue #20, consumers.linkage_witness): each entry a
witness's published keys, joined to the node's linkage directory; a bent entry is a configuration error."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import Code, ConfigurationError
from ledger.runtime.config import NodeConfig
from ledger.runtime.linkage import linkage_directory, witness_entries
from tests.support.hub_nodes import hub_entry
from tests.support.hub_world import START, agency_keys, hub_keys

W1 = "W-KANTO"


def _config(tmp_path: Path, witnesses: object) -> NodeConfig:
    linkage = {"mode": "hub", "hub": hub_entry(hub_keys(), START.isoformat()), "witnesses": witnesses}
    return NodeConfig(data_dir=tmp_path, linkage=linkage)


def test_configured_witnesses_join_the_directory(tmp_path: Path) -> None:
    """Threat: hub insider — the node seals its relayed heads to the witness's own key (the hub cannot open or
    bend them), so the key must come from the node's config, not from the hub."""
    keys = agency_keys(W1)
    config = _config(tmp_path, [hub_entry(keys, START.isoformat())])
    assert [name for name, _ in witness_entries(config)] == [W1]
    assert linkage_directory(config).sealing_key(W1).public_bytes_raw() == keys.sealing.public_key().public_bytes_raw()
    assert witness_entries(_config(tmp_path, None)) == []


@pytest.mark.parametrize(
    "witnesses",
    [{"party": W1}, [{"key_id": "k"}], [{"party": "not a party!", "key_id": "k"}], ["W-KANTO"]],
)
def test_a_bent_witness_entry_is_a_configuration_error(tmp_path: Path, witnesses: object) -> None:
    """Threat: administrator's mistake — a witnesses entry without its party or keys is refused at start with
    a clear error, not taken as a witness without keys (heads sent nowhere, incidents never checked)."""
    with pytest.raises(ConfigurationError) as err:
        witness_entries(_config(tmp_path, witnesses))
    assert err.value.code == Code.CONFIGURATION
