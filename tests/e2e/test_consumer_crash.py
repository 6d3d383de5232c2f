"""A consumer process killed with SIGKILL mid-stream and restarted neither loses nor duplicates an event."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers.outbox import publishable
from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.runtime.bootstrap import AgencySpec, open_node
from projections.flag_state import national_flags
from tests.conftest import A, B
from tests.support.tansu import broker
from tests.support.trust import trust

pytestmark = pytest.mark.kafka
FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))


def test_sigkill_mid_stream_then_restart(make_node, tmp_path: Path, person) -> None:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b, B, "B市")
    people = [person() for _ in range(30)]
    for x in people:
        rid = b.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE"])
        b.app.approve_request(Actor(B, "apr"), rid)
        b.app.execute_request(Actor(B, "op"), rid)
    expected = len(list(publishable(b.app)))
    a_dir, b_dir = a.config.data_dir, b.config.data_dir
    a.close()
    b.close()
    with broker() as address:
        group = f"g{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": address,
            "FLAGLEDGER_KAFKA_TOPIC": f"events-{group}",
            "FLAGLEDGER_KAFKA_DEAD_LETTER_TOPIC": f"dlq-{group}",
            "FLAGLEDGER_KAFKA_GROUP_ID": group,
            "FLAGLEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "FLAGLEDGER_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "FLAGLEDGER_KAFKA_MAX_POLL_INTERVAL_MS": "10000",
            "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "10",
        }
        subprocess.run([FLAGLEDGER, "--data-dir", str(b_dir), "relay"], env=env, check=True, capture_output=True)
        probe = open_node(a_dir)
        start = probe.app.max_position()
        victim = subprocess.Popen(
            [FLAGLEDGER, "--data-dir", str(a_dir), "consume"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 40
        while probe.app.max_position() == start and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)  # somewhere between poll, database commit and offset commit
        victim.wait()
        probe.close()
        subprocess.run(
            [FLAGLEDGER, "--data-dir", str(a_dir), "consume", "--seconds", "12"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    node = open_node(a_dir)
    try:
        from_b = [env_ for _, _, env_ in node.app.envelopes() if env_.header.origin == B]
        assert len(from_b) == expected, "every published event exactly once"
        assert len({e.header.event_id for e in from_b}) == expected
        assert verify_log(node.app).ok
        with node.engine.connect() as conn:
            live = sorted(conn.execute(select(national_flags.c.person, national_flags.c.flag)).all())
        node.projector.rebuild()
        with node.engine.connect() as conn:
            rebuilt = sorted(conn.execute(select(national_flags.c.person, national_flags.c.flag)).all())
        assert live == rebuilt and len(live) == len(people)
    finally:
        node.close()
