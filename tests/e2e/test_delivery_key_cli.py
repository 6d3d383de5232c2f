"""The portal's delivery key on the command line (issue 22, copies on the wire): published in its directory
entry, rotated, and the old private halves retired; an agency node's configured portal entry and the hub's
imported one carry it to the providers.

Threats: the broker operator keeping key messages past the delivery key's period (after `--retire` the portal
holds no private half but the two newest), an insider at the portal after that (the same), an administrator
handing a tampered entry (a delivery key on another party's entry is refused).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import InputError
from ledger.linkage.names import PORTAL
from ledger.portal.wire_keys import WIRE_KEYS_FILE
from ledger.runtime.roles import import_entries, open_role

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))


def run(env: dict[str, str], *argv: str) -> Any:
    done = subprocess.run([FLAGLEDGER, *argv], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_portal_publishes_rotates_and_retires_its_delivery_key(tmp_path: Path) -> None:
    env = {**os.environ, "FLAGLEDGER_LOG_LEVEL": "WARNING"}
    hub_dir, portal_dir = tmp_path / "hub", tmp_path / "portal"
    run(env, "init", "--role", "hub", "--data-dir", str(hub_dir))
    run(env, "init", "--role", "portal", "--data-dir", str(portal_dir))
    first = run(env, "linkage", "directory", "export", "--data-dir", str(portal_dir))
    assert first["delivery_hex"] and (portal_dir / WIRE_KEYS_FILE).stat().st_mode & 0o777 == 0o600
    assert run(env, "linkage", "directory", "export", "--data-dir", str(portal_dir)) == first  # made once, kept

    import_entries(open_role(hub_dir), first)  # the hub (and any party reading its directory) sees it
    assert open_role(hub_dir).directory().delivery_key(PORTAL) is not None

    second = run(env, "portal", "rotate-delivery-key", "--data-dir", str(portal_dir))
    assert second["retired"] == 0 and second["entry"]["delivery_hex"] != first["delivery_hex"]
    third = run(env, "portal", "rotate-delivery-key", "--retire", "--data-dir", str(portal_dir))
    assert third["retired"] == 1  # the first: two newest kept (the last period's messages may be in flight)
    wires = open_role(portal_dir).wire_keys()
    try:
        assert len(wires.deliveries()) == 2
        assert wires.delivery(first["delivery_hex"].split(":")[0]) is None
    finally:
        wires.close()

    tampered = {**json.loads(json.dumps(open_role(hub_dir).own.as_json())), "delivery_hex": first["delivery_hex"]}
    with pytest.raises(InputError, match="delivery"):
        import_entries(open_role(portal_dir), tampered)
