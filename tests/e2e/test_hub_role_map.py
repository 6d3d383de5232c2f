"""The hub's flag map and the consultation's four-eyes check switched on in the running hub role (issues #19,
#20): ``flagledger node --role hub`` as a real process on the Tansu broker, set up only through the command line
(``init --role hub``, ``linkage directory export|import``), with agencies in-process (``AgencyEnd`` with
``MapChecks``) that take the hub's VRF key from its published entry and nothing on the hub's word.

Threats: the hub insider and a peer agency — the provider does not take routing on trust: every decision it
acts on comes with the hub's signed decision, head and map proof, checked against keys the hub published; the
holder checks its own flag under the heads the hub announces; a staff decision signed with a key the
provider's own roster never certified is refused by the hub (the administrator or a shell user at the
provider), one by two certified staff members is relayed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import create_engine

from consumers.kafka_transport import KafkaTransport, ensure_inboxes
from consumers.settings import KafkaSettings
from ledger.errors import Code
from ledger.hub.inbox import parked
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.checks import MapChecks
from ledger.linkage.consultation import AdviceRelay, StaffAnswer, StaffDesk
from ledger.linkage.directory import Directory
from ledger.linkage.messages import AnswerMessage, Consultation, Message, RoutedQuery
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import public_from_hex, public_hex
from ledger.linkage.staff_rosters import fold
from ledger.linkage.transport import Topics
from ledger.log.signing import KeyRecord
from ledger.runtime.roles import DirectoryEntry
from tests.support.hub_world import START, A, B, C, Cast
from tests.support.people import individual_number
from tests.support.roster_events import roster_stream
from tests.support.staff_keys import approval, staff_signer
from tests.support.tansu import broker

pytestmark = pytest.mark.kafka

FLAGLEDGER = str(Path(sys.executable).with_name("flagledger"))
PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
ADMIN, APR, APR2, STRANGER = (staff_signer(A, n) for n in ("admin", "apr", "apr2", "stranger"))


def run(env: dict[str, str], *argv: str) -> Any:
    done = subprocess.run([FLAGLEDGER, *argv], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with broker() as where:
        yield where


class Inboxes:
    """What each in-process agency has read, checked by its ``MapChecks``."""

    def __init__(self, ends: dict[str, AgencyEnd]) -> None:
        self.ends = ends
        self.got: dict[str, list[Message]] = {name: [] for name in ends}

    def until(self, done: Callable[[], bool], what: str, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
            for name, end in self.ends.items():
                self.got[name] += [i.message for i in end.read_inbox(timeout_ms=100)]

    def of(self, name: str, kind: type[Message]) -> list[Any]:
        return [m for m in self.got[name] if type(m) is kind]


@dataclass
class SeenChecks(MapChecks):
    """The real checks, noting the kind of each message the hub sent before checking it."""

    kinds: list[str] = field(default_factory=list)

    def take(self, message: Message) -> Message | None:
        self.kinds.append(message.kind)
        return super().take(message)


def checks_of(end: AgencyEnd) -> SeenChecks:
    assert isinstance(end.checks, SeenChecks)
    return end.checks


def test_the_running_hub_proves_its_routing_and_checks_four_eyes(address: str, tmp_path: Path) -> None:
    """Hub insider, peer agency, administrator or shell user at the provider (see the module)."""
    prefix = f"m{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "FLAGLEDGER_KAFKA_BOOTSTRAP_SERVERS": address,
        "FLAGLEDGER_KAFKA_FETCH_MAX_WAIT_MS": "50",
        "FLAGLEDGER_LINKAGE_TOPIC_PREFIX": prefix,
        "FLAGLEDGER_MAP_HEAD_EVERY_SECONDS": "1",  # a heartbeat the test sees
    }
    hub_dir, portal_dir = tmp_path / "hub", tmp_path / "portal"
    run(env, "init", "--role", "hub", "--data-dir", str(hub_dir))
    run(env, "init", "--role", "portal", "--data-dir", str(portal_dir))  # fed, not run
    hub_entry = run(env, "linkage", "directory", "export", "--data-dir", str(hub_dir))
    portal_entry = run(env, "linkage", "directory", "export", "--data-dir", str(portal_dir))
    published = DirectoryEntry.parse(hub_entry)  # what an agency takes in: the VRF key's public half with it
    cast = Cast.of(A, B, C)
    entries = [
        {
            "party": name,
            "key_id": k.signer.key_id,
            "public_hex": k.signer.public_raw.hex(),
            "valid_from": START.isoformat(),
            "sealing_public_hex": public_hex(k.sealing.public_key()),
            "kind": "municipality",  # the hub routes no query from or to an agency of no kind
        }
        for name, k in cast.agencies.items()
    ]
    (tmp_path / "for-hub.json").write_text(json.dumps([*entries, portal_entry]))
    run(env, "linkage", "directory", "import", str(tmp_path / "for-hub.json"), "--data-dir", str(hub_dir))

    settings = KafkaSettings(bootstrap_servers=address, fetch_max_wait_ms=10, delivery_timeout_ms=20000)
    topics = Topics(prefix)
    ensure_inboxes(settings, topics, [HUB, PORTAL, A, B, C])
    log = (tmp_path / "hub.log").open("w")
    hub = subprocess.Popen(
        [FLAGLEDGER, "node", "--role", "hub", "--data-dir", str(hub_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    directory = Directory()
    directory.add(
        KeyRecord(HUB, published.key_id, published.public_hex, START), public_from_hex(published.sealing_public_hex)
    )
    hub_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(published.public_hex))
    ends = {
        n: AgencyEnd(
            cast.agencies[n],
            KafkaTransport(settings, n, topics),
            directory,
            checks=SeenChecks(n, hub_key, published.vrf_public_key(), max_age=timedelta(seconds=60)),
        )
        for n in (A, B, C)
    }
    read = Inboxes(ends)
    try:
        x, y = individual_number(), individual_number()
        stream = roster_stream(ADMIN, APR, APR2, roles={"apr": "reviewer"})  # apr proposes, apr2 approves
        ends[A].send_roster(stream)
        ends[B].flag(x, "NON_DISCLOSURE", "set")
        ends[A].file_person(x)
        ends[A].file_person(y)
        b = checks_of(ends[B])
        keys = {ends[A].code(x), ends[A].code(y)}
        read.until(
            lambda: b.checked >= 1 and set(checks_of(ends[A]).keys) == keys,  # the hub's VRF proofs checked
            "B to find its flag under a head the hub announced, A its map keys",
        )

        first = checks_of(ends[A]).freshness.newest
        assert first is not None
        read.until(
            lambda: (n := checks_of(ends[A]).freshness.newest) is not None and n.seq > first.seq,
            "a heartbeat head",
        )

        mine_x = ends[C].query(x, A, PROCEDURE, ITEM, INFO)
        mine_y = ends[C].query(y, A, PROCEDURE, ITEM, INFO)
        read.until(lambda: len(read.of(A, RoutedQuery)) == 2 and read.of(B, Consultation), "the routed queries")
        routed = {q.code: q for q in read.of(A, RoutedQuery)}
        assert routed[ends[A].code(x)].answer == "staff"  # flagged by B: never automatic
        assert routed[ends[A].code(y)].answer == "auto"  # only after the decision, head and proof checked
        for name in (A, B, C):
            assert checks_of(ends[name]).incidents == [] and checks_of(ends[name]).refusals == []
            assert "map_head" in checks_of(ends[name]).kinds  # the hub's heads announced to every agency
        kinds = checks_of(ends[A]).kinds
        assert kinds.count("proven_query") == 2 and "routed_query" not in kinds  # each with its proof

        ends[A].answer(routed[ends[A].code(y)].request_id, "answered", "課税所得 0")
        request_id = routed[ends[A].code(x)].request_id
        ends[B].advise(request_id, "may_disclose")
        read.until(lambda: bool(read.of(A, AdviceRelay)) and bool(read.of(C, AnswerMessage)), "the relay, y's answer")
        assert read.of(C, AnswerMessage) == [AnswerMessage(mine_y, "answered", "課税所得 0")]
        desk = StaffDesk(A, fold(A, stream))
        assert desk.take(routed[ends[A].code(x)]) and desk.take(read.of(A, AdviceRelay)[0])
        statement = desk.statement(request_id, "not_provided", "")
        one, stranger = approval(APR, statement), approval(STRANGER, statement)
        alone = StaffAnswer(
            request_id, "not_provided", "", "may_disclose", "advised", one.key_id, one.signature, stranger.key_id,
            stranger.signature,
        )  # fmt: skip
        ends[A].answer_decided(alone)
        engine = create_engine(f"sqlite:///{hub_dir / 'hub.sqlite'}")
        try:
            read.until(lambda: bool(parked(engine)), "the hub to refuse the stranger's decision")
            assert [p.code for p in parked(engine)] == [Code.STAFF_SIGNATURE]
        finally:
            engine.dispose()
        ends[A].answer_decided(desk.decide(request_id, "not_provided", "", one, approval(APR2, statement)))
        read.until(lambda: len(read.of(C, AnswerMessage)) == 2, "the staff answer")
        assert read.of(C, AnswerMessage)[1] == AnswerMessage(mine_x, "not_provided", "")
    finally:
        for end in ends.values():
            end.transport.close()
        hub.send_signal(signal.SIGTERM)
        out = hub.communicate(timeout=60)[0]
        log.close()
    assert hub.returncode == 0, (tmp_path / "hub.log").read_text()[-2000:]
    done = json.loads(out.strip().splitlines()[-1])
    assert done["stopped"] == "hub" and done["parked"] == 1
