"""``flagledger linkage erasures`` at the hub and ``flagledger portal erasures`` at the portal (issue 22): each
role's audit lists the erasures it applied or was told of, from its own database, and nothing of the records.

Threat: an administrator at the hub or the portal who would have an erasure go unseen, or see what was erased:
the listing names the erasing agency, its request and how many records (the hub) or the card's code (the
portal), never a record's contents.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from ledger.hub.erasure import erase
from ledger.hub.inspect import accesses
from ledger.hub.log import open_hub_store
from ledger.hub.sealed_records import file_sealed
from ledger.linkage.codes import Registration, agency_code, register
from ledger.linkage.erasure_messages import ErasureMessage, PageErasure
from ledger.linkage.record_contents import SealedRecordMessage
from ledger.portal.store import open_portal_store
from tests.support.hub_world import A
from tests.support.people import individual_number

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))


def run(env: dict[str, str], *argv: str) -> Any:
    done = subprocess.run([FLAGLEDGER, *argv], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_hub_and_the_portal_list_their_erasures(tmp_path: Path) -> None:
    env = {**os.environ, "FLAGLEDGER_LOG_LEVEL": "WARNING"}
    hub_dir, portal_dir = tmp_path / "hub", tmp_path / "portal"
    run(env, "init", "--role", "hub", "--data-dir", str(hub_dir))
    run(env, "init", "--role", "portal", "--data-dir", str(portal_dir))
    assert run(env, "linkage", "erasures", "--data-dir", str(hub_dir)) == {"erasures": []}
    assert run(env, "portal", "erasures", "--data-dir", str(portal_dir)) == {"erasures": []}

    store = open_hub_store(f"sqlite:///{hub_dir / 'hub.sqlite'}", "test")
    try:
        store.sequencer.take_lease()
        code = agency_code(os.urandom(32), A, individual_number())
        register(store.codes, os.urandom(32), Registration(A, code, individual_number()))
        file_sealed(store, A, SealedRecordMessage(uuid.uuid4().hex, code, "c2VhbGVkIHRvIHRoZSBwb3J0YWw="))
        request = uuid.uuid4().hex
        erase(store, A, ErasureMessage(request, code))
        store.sequencer.release()
    finally:
        store.close()
    listed = run(env, "linkage", "erasures", "--data-dir", str(hub_dir))["erasures"]
    assert "c2VhbGVk" not in json.dumps(listed) and code not in json.dumps(listed)  # no contents, no code
    store = open_hub_store(f"sqlite:///{hub_dir / 'hub.sqlite'}", "test")
    try:  # each listing is a person's read of the hub's database: recorded before it
        assert [a.what for a in accesses(store.engine, "test", "check")][:2] == ["hub_erasures", "hub_erasures"]
    finally:
        store.close()
    assert [(e["agency"], e["erasure_id"], e["records"]) for e in listed] == [(A, request, 1)]

    portal = open_portal_store(f"sqlite:///{portal_dir / 'portal.sqlite'}")
    try:
        portal.erased(uuid.uuid4().hex, PageErasure("m" + "2" * 32, listed[0]["seq"]))
    finally:
        portal.close()
    assert run(env, "portal", "erasures", "--data-dir", str(portal_dir)) == {
        "erasures": [{"code": "m" + "2" * 32, "version": listed[0]["seq"]}]
    }
