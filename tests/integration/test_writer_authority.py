"""Only the owner writes: a peer agency's events on another agency's streams, or in its name, never take effect.

Threat: **a peer agency** (A, the perpetrator's municipality) with its own node and its own valid key, running a
patched flagledger that signs anything (``tests/support/forge.py``); and **an insider** who writes such an event
straight into another node's store. The owner, B, protects X (both flags) on its node, which also hosts a support
centre (SC); C's node (the target, on SQLite and PostgreSQL) holds B's and SC's published history.

For every shared event type A tries three forgeries on B's and SC's streams — the event appended to their stream in
their name, the same in its own name, and a new stream opened in their name — and delivers each through every entry
path of ``consumers.ingest``: one by one, batched (``ingest_many``), held back behind a gap and released, and
replayed from the parked table after its first cause was fixed. Each is parked as ``foreign_writer`` with a reason
naming stream, version, topic and signer (no payload value, not the owner), the log does not grow, X's flags stay
held on every node and a new query about X is still held. Written straight into the store, the event makes
``audit verify`` fail naming it. On A's own node, the patched-out check is what refuses it (attack 1 as a local write).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from consumers.ingest import Outcome, PendingStore, ingest, ingest_many
from consumers.outbox import publishable
from consumers.parked import park, parked, replay_parked
from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.cli.main import main
from ledger.domain.agencies import Agency
from ledger.domain.flags import Protection
from ledger.domain.identity import ProxyRegistration
from ledger.domain.keys import KeyRegistry
from ledger.domain.types import Action
from ledger.errors import PermissionDenied
from ledger.log.envelope import Envelope
from ledger.log.signing import KeyRecord, Signer
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from tests.conftest import SC, A, B, C, NodeFactory, enrol_standard_staff
from tests.support.answers import release_decided
from tests.support.forge import ANY_AGENCY_TOPICS, SHARED_TOPICS, Forgery, forge, forgeries, templates
from tests.support.links import link, unlink
from tests.support.people import individual_number
from tests.support.postgres import temp_database
from tests.support.soft_authenticator import SoftAuthenticator
from tests.support.staff import enrol
from tests.support.store import delete, forge_head

NAR, ND = "NO_AUTO_RESPONSE", "NON_DISCLOSURE"


@dataclass
class World:
    key: Path  # the pseudonym secret every node shares
    peer: Node  # A's node: the malicious peer
    owner: Node  # B's and SC's node
    genesis: dict[str, KeyRecord]  # each agency's first key, as another node's administrator vouches for it
    x: str  # the person B protects
    forged: list[Forgery]


def vouch(here: Node, code: str, record: KeyRecord) -> None:
    """``here``'s administrator vouches for ``code``'s first key (out of band, as `flagledger agency trust`)."""
    kind = "support_centre" if code == SC else "municipality"
    here.app.register_remote_agency(
        Actor(sorted(here.app.hosted)[0], "admin"),
        code,
        code,
        kind,
        record.key_id,
        record.public_hex,
        record.valid_from,
    )


def first_key(node: Node, code: str) -> KeyRecord:
    return next(r for r in node.app.keyring.records() if r.agency == code)


def ship(src: Node, dst: Node, pending: PendingStore | None = None, skip: frozenset[bytes] = frozenset()) -> int:
    """Every event ``src`` published reaches ``dst`` in order (``skip`` left out); each must apply or be a duplicate."""
    pending = pending or PendingStore(dst.app, dst.engine)
    applied = 0
    for _, _, raw in publishable(src.app):
        if raw in skip:
            continue
        outcome = ingest(dst.app, raw, pending)
        assert outcome.kind in ("applied", "duplicate"), outcome
        applied += outcome.applied
    return applied


def protect(node: Node, agency: str, subject: str, flags: list[str], **kw: object) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), subject, flags, **kw)  # type: ignore[arg-type]
    for approver in ("apr", "apr2", "apr3"):  # apr3: the last holder's release, one approval more (docs/year.md)
        if node.app.approve_request(Actor(agency, approver), rid) == "approved":
            break
    node.app.execute_request(Actor(agency, "op"), rid)


def owner_history(owner: Node, x: str) -> None:
    """B and SC record one event of every shared type (the shapes A copies)."""
    app, admin = owner.app, Actor(B, "admin")
    old = app.signers[B].key_id
    app.rotate_key(admin, Signer.generate(B), datetime.now(UTC))  # KeyAdded, KeyRetired
    app.revoke_key(admin, old, "rotated out")  # KeyRevoked
    app.set_approval_policy(admin, 2)  # ApprovalPolicyChanged
    app.grant_permission(admin, "counter", "audit")  # PermissionGranted
    app.revoke_permission(admin, "counter", "audit")  # PermissionRevoked
    protect(owner, B, x, [NAR, ND])  # Protection.Opened, FlagsSet
    protect(owner, B, x, [NAR, ND], kind="renew", review_date=date.today() + timedelta(days=500))  # FlagsRenewed
    w = individual_number()
    protect(owner, B, w, [ND])
    enrol(owner, admin, "apr3", ["approver"])
    # FlagsReleased, and LastHolderWarning.Raised (nobody else holds ND on W)
    protect(owner, B, w, [ND], kind="release", explanation="本人に説明済み")
    app.record_move(Actor(B, "req"), x, to_agency=C, moved_on=date.today())  # ResidenceChange.Recorded
    body = app.send_body_request(Actor(SC, "req"), B, x, [ND])  # BodyRequest.Sent
    app.request_flags(Actor(B, "req"), x, [ND], body_request_id=body)  # BodyOutcome.Recorded ("requested")
    for decision in ("provide", "refuse"):  # Received, Held, ProbeNotice.Sent, DecisionProposed, then the outcome
        rid = UUID(
            app.receive_query(C, B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報").request_id
        )
        app.propose_decision(Actor(B, "rev"), rid, decision, "unknown")
        app.approve_decision(Actor(B, "apr"), rid, app.provision_request(rid).proposal_version)
    release_decided(app)  # Released, at the batch time
    # Reopened: in hub mode the node records it on the hub's decide_again (consumers.linkage_decisions.reopen);
    # written here the same way, so its forgery on B's stream is tried like every other shared type's
    reopened = app.provision_request(rid)
    assert reopened.reopen()
    app.save_as(B, reopened)
    stranger = individual_number()
    app.receive_query(C, B, stranger, legal_item=74, procedure="児童手当", info_kind="地方税関係情報")  # AutoProvided
    changed = individual_number()
    link(app, B, changed, individual_number())  # PseudonymLink.Linked
    unlink(app, B, changed)  # PseudonymLink.Unlinked
    link(app, B, changed, individual_number())  # PseudonymLink.Relinked
    y = individual_number()
    app.register_proxy(Actor(B, "req"), x, y)  # ProxyRegistration.Registered
    app.cancel_proxy(Actor(B, "req"), x, y, "intake advice")  # ProxyRegistration.Cancelled
    # CancelledThroughHub: in hub mode the node records it on the hub's proxy_cancelled
    # (consumers.linkage_proxy_registrations.cancelled); written here the same way, its forgery tried as the others'
    through_hub = app.find(ProxyRegistration, app.register_proxy(Actor(B, "req"), y, x))
    assert through_hub is not None and through_hub.cancelled_through_hub()
    app.save_as(B, through_hub)
    bar = app.propose_guardian_bar(Actor(B, "req"), x, y, "parent")  # GuardianBar.Proposed
    app.approve_guardian_bar(Actor(B, "apr"), bar)  # GuardianBar.Approved
    app.propose_bar_lift(Actor(B, "req"), bar, "family court decision")  # GuardianBar.LiftProposed
    app.lift_guardian_bar(Actor(B, "apr"), bar)  # GuardianBar.Lifted
    key = SoftAuthenticator()  # StaffRoster.SecurityKeyCertified (req's own staff key signs it)
    app.register_security_key(
        Actor(B, "req"), key.credential, key.cose_key, 0, hashlib.sha256(b"testserver").hexdigest()
    )
    app.deactivate_staff(admin, "aud")  # StaffRoster.KeyRevoked (the roster's Opened, KeyCertified: enrolment)
    app.revoke_role(admin, "apr2", "approver")  # StaffRoster.RolesWithdrawn (RoleCertified: enrolment's grants)
    gone = individual_number()
    app.open_case(Actor(B, "req"), gone, notes="retention ended")
    erasure = app.request_erasure(admin, gone, "retention ended")
    app.approve_erasure(Actor(B, "admin2"), erasure)  # ErasureNotice.Published (issue 22)
    app.sign_checkpoint(B)  # CheckpointLog.Opened, CheckpointSigned


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("authority")
    key = root / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    peer = init_node(root / "peer", (AgencySpec(A, "A市", "municipality"),), pseudonym_key_file=key)
    owner = init_node(
        root / "owner",
        (AgencySpec(B, "B市", "municipality"), AgencySpec(SC, "支援センター", "support_centre")),
        pseudonym_key_file=key,
    )
    for n in (peer, owner):
        enrol_standard_staff(n)
    genesis = {A: first_key(peer, A), B: first_key(owner, B), SC: first_key(owner, SC)}
    vouch(owner, A, genesis[A])  # B's RemoteKeyTrusted
    x = individual_number()
    owner_history(owner, x)
    vouch(peer, B, genesis[B])
    vouch(peer, SC, genesis[SC])
    ship(owner, peer)
    forged = forgeries(peer.app, A, [B, SC])
    yield World(key, peer, owner, genesis, x, forged)
    peer.close()
    owner.close()


def target(make_node: NodeFactory, world: World, backend: str | None, trusting: tuple[str, ...] = (A, B, SC)) -> Node:
    """C's node, trusting the agencies named, before anything of theirs arrived."""
    t = make_node((AgencySpec(C, "C市", "municipality"),), name="c", database_url=backend, pseudonym_key_file=world.key)
    for code in trusting:
        vouch(t, code, world.genesis[code])
    return t


@contextmanager
def another_target(root: Path, world: World, postgres: bool) -> Iterator[Node]:
    """A fresh C node (in its own PostgreSQL database on that backend), closed and dropped afterwards."""
    with temp_database() if postgres else nullcontext(None) as url:
        t = init_node(root, (AgencySpec(C, "C市", "municipality"),), database_url=url, pseudonym_key_file=world.key)
        try:
            enrol_standard_staff(t)
            for code in (A, B, SC):
                vouch(t, code, world.genesis[code])
            yield t
        finally:
            t.close()


def assert_foreign(outcome: Outcome, f: Forgery, world: World) -> None:
    assert outcome.kind == "parked" and outcome.code == "foreign_writer", f"{f.label}: {outcome}"
    r = outcome.reason
    assert str(f.stream) in r and f"v{f.version} " in r and f.topic in r and f"agency {A}" in r, r
    # the reason names the signer, never the owner, and no payload value (a pseudonym is personal data)
    assert f.victim not in r.replace(str(f.stream), ""), r
    owner_app = world.owner.app
    assert owner_app.subject(world.x) not in r, r


def assert_x_still_protected(node: Node, world: World, provider: str) -> None:
    """X's flags held on the node, and a new query about X held for a person to decide."""
    subject = node.app.subject(world.x)
    assert node.app.flag_state is not None
    state = node.app.flag_state.flags_for(subject)
    assert state == {NAR: [B], ND: [B]}, state
    if provider == C:
        answer = node.app.request_provision(
            Actor(C, "counter"), C, world.x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
    else:
        answer = node.app.receive_query(
            C, provider, world.x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
    assert answer.status == "in_progress", answer


# -- coverage of the forgeries themselves -------------------------------------------------------------------
def test_every_shared_event_type_is_forged_on_another_agencys_stream(world: World) -> None:
    """The matrix is complete: one forgery per shared event type on the owner's streams (the one event another
    agency may append, a proxy cancellation, is the documented exception), plus own-name and new-stream kinds."""
    appended = {f.topic for f in world.forged if f.kind == "their_stream"}
    assert appended == set(SHARED_TOPICS) - ANY_AGENCY_TOPICS
    assert {f.kind for f in world.forged} == {"their_stream", "own_name", "new_stream", "cancel_elsewhere"}
    # the one event any agency may append, on streams of every other shared aggregate of B's and SC's
    elsewhere = {f.stream for f in world.forged if f.kind == "cancel_elsewhere"}
    assert len(elsewhere) >= 8 and all(
        f.topic in ANY_AGENCY_TOPICS for f in world.forged if f.stream in elsewhere and f.kind == "cancel_elsewhere"
    )
    opened = {f.topic.split(":")[1] for f in world.forged if f.kind == "new_stream"}
    assert {"Protection.FlagsSet", "Agency.Registered", "KeyRegistry.Opened", "ProvisionRequest.Received"} <= opened


# -- entry path 1: ingest, one message at a time ------------------------------------------------------------
def test_ingest_parks_every_forgery_and_x_stays_protected_everywhere(
    make_node: NodeFactory, world: World, backend: str | None
) -> None:
    t = target(make_node, world, backend)
    ship(world.owner, t)
    before = [n.app.max_position() for n in (t, world.owner)]
    for f in world.forged:
        for node in (t, world.owner):  # the target and the owner's own node
            assert_foreign(ingest(node.app, f.raw, PendingStore(node.app, node.engine)), f, world)
    assert [n.app.max_position() for n in (t, world.owner)] == before, "a forgery was applied"
    assert PendingStore(t.app, t.engine).waiting() == []
    assert_x_still_protected(t, world, C)
    assert_x_still_protected(world.owner, world, B)
    assert verify_log(t.app, workers=1).ok


# -- entry path 2: batched ingest -----------------------------------------------------------------------------
def test_batched_ingest_parks_every_forgery_and_applies_the_rest(
    make_node: NodeFactory, world: World, backend: str | None
) -> None:
    """One batch holds the owner's whole history with each forgery right after the last event of its stream (so
    the stream's owner is known only from events staged in the same batch), and again on its own."""
    t = target(make_node, world, backend)
    history = [raw for _, _, raw in publishable(world.owner.app)]
    last_of: dict[str, int] = {}
    for i, raw in enumerate(history):
        last_of[Envelope.from_bytes(raw).header.stream] = i
    batch: list[bytes] = []
    after: dict[int, list[Forgery]] = defaultdict(list)
    for f in world.forged:
        after[last_of.get(str(f.stream), len(history) - 1)].append(f)
    expected: list[Forgery | None] = []
    for i, raw in enumerate(history):
        batch.append(raw)
        expected.append(None)
        for f in after[i]:
            batch.append(f.raw)
            expected.append(f)
    size = t.app.max_position()
    outcomes = ingest_many(t.app, batch, PendingStore(t.app, t.engine))
    for f, outcome in zip(expected, outcomes, strict=True):
        if f is None:
            assert outcome.kind == "applied", outcome
        else:
            assert_foreign(outcome, f, world)
    assert t.app.max_position() == size + len(history), "exactly the owner's events were applied"
    size = t.app.max_position()
    again = ingest_many(t.app, [f.raw for f in world.forged], PendingStore(t.app, t.engine))
    for f, outcome in zip(world.forged, again, strict=True):
        assert_foreign(outcome, f, world)
    assert t.app.max_position() == size
    assert_x_still_protected(t, world, C)
    assert verify_log(t.app, workers=1).ok


# -- entry path 3: held back behind a gap, then released --------------------------------------------------------
def test_a_forgery_held_back_behind_a_gap_is_parked_when_released(
    world: World, backend: str | None, tmp_path: Path
) -> None:
    """The forgeries reach C before anything of the streams they append to, so nobody can tell those streams'
    owners yet: each is held back (or parked at once when its payload alone gives it away), then checked when the
    owner's events arrive and fill the gap, parked (kept, through the consumer's parked table) and never applied.
    Every shared event type goes through the release at least once (in its own name where its payload names B)."""
    appended = [f for f in world.forged if f.version > 1]
    # in B's name on B's stream: parked on arrival (the payload says it all), so it takes no room in the pending
    # table, which holds one event per stream and version: the others go in rounds, one per stream and version
    in_their_name = {(f.topic, f.stream) for f in appended if f.kind == "own_name"}
    at_once = [f for f in appended if f.kind == "their_stream" and (f.topic, f.stream) in in_their_name]
    rounds: dict[tuple[UUID, int], list[Forgery]] = defaultdict(list)
    for f in appended:
        if f not in at_once:
            rounds[(f.stream, f.version)].append(f)
    history = [raw for _, _, raw in publishable(world.owner.app)]
    released: set[str] = set()
    for r in range(max(len(v) for v in rounds.values())):
        batch = [fs[r] for fs in rounds.values() if len(fs) > r] + (at_once if r == 0 else [])
        with another_target(tmp_path / f"c{r}", world, backend is not None) as t:
            _release_round(t, world, batch, history, released, check_x=r == 0)
    assert released == set(SHARED_TOPICS)  # the proxy cancellation: on other aggregates' streams


def _release_round(
    t: Node, world: World, batch: list[Forgery], history: list[bytes], released: set[str], check_x: bool
) -> None:
    pending = PendingStore(t.app, t.engine)
    kept: list[tuple[Outcome, bytes]] = []
    pending.on_parked = lambda outcome, raw: kept.append((outcome, raw))
    size = t.app.max_position()
    held: list[Forgery] = []
    for f in batch:
        outcome = ingest(t.app, f.raw, pending)
        if outcome.kind == "parked":  # its payload names another agency: no need to wait for the stream
            assert f.kind == "their_stream", f.label
            assert_foreign(outcome, f, world)
        else:
            assert outcome.kind == "held_gap", (f.label, outcome)
            held.append(f)
    assert t.app.max_position() == size
    outcomes = ingest_many(t.app, history, pending)  # as the consumer delivers a poll
    assert {o.kind for o in outcomes} == {"applied"}
    assert t.app.max_position() == size + len(history), "only the owner's events were applied"
    assert pending.waiting() == []
    by_raw = {raw: outcome for outcome, raw in kept}
    assert len(by_raw) == len(held)
    for f in held:
        assert f.raw in by_raw, f"{f.label} vanished from the pending table without being parked"
        assert_foreign(by_raw[f.raw], f, world)
        released.add(f.topic)
    if check_x:
        assert_x_still_protected(t, world, C)


@pytest.mark.parametrize("forgery_first", [True, False], ids=["forgery-first", "owner-first"])
def test_a_forgery_waiting_for_the_same_place_does_not_push_the_owners_event_out(
    make_node: NodeFactory, world: World, backend: str | None, forgery_first: bool
) -> None:
    """B's v4 of a held provision request (ManuallyProvided) and A's forgery of v4 (Refused) reach C ahead of
    v1-v3: until v1 arrives nobody can tell them apart, so both wait; when the gap fills, B's applies and A's is
    parked. (The pending table kept one event per place: whichever came last replaced the other, so a peer could
    knock an owner's event out, or have its forgery applied.)"""
    t = target(make_node, world, backend)
    peer, owner = world.peer.app, world.owner.app
    stream = templates(peer, [B])[(B, "ledger.domain.provision:ProvisionRequest.ManuallyProvided")].stream
    mine = [raw for _, _, raw in publishable(owner) if Envelope.from_bytes(raw).header.stream == str(stream)]
    assert len(mine) == 5  # v5: the answer Released at the batch time (skipped here like the rest)
    topic = "ledger.domain.provision:ProvisionRequest.Refused"
    f = Forgery("their_stream", B, topic, stream, 4, forge(peer, A, topic, stream, 4, {"approved_by": "apr"}))
    pending = PendingStore(t.app, t.engine)
    kept: list[tuple[Outcome, bytes]] = []
    pending.on_parked = lambda outcome, raw: kept.append((outcome, raw))
    ship(world.owner, t, pending, skip=frozenset(mine))  # B's keys (and everything else) first
    for raw in [f.raw, mine[3]] if forgery_first else [mine[3], f.raw]:
        got = ingest(t.app, raw, pending)
        assert got.kind == "held_gap", got
    assert pending.waiting() == [(str(stream), 4)]
    for raw in mine[:3]:
        got = ingest(t.app, raw, pending)
        assert got.kind == "applied", got
    assert [raw for _, raw in kept] == [f.raw]
    assert_foreign(kept[0][0], f, world)
    assert pending.waiting() == []
    rows = t.app.recorder.select_events(stream)
    assert len(rows) == 4 and t.app.signed_mapper.open(rows[3].state).to_bytes() == mine[3], "v4 is B's own"
    assert t.app.provision_request(stream).status == "provided_manually"


# -- entry path 4: replay of a parked message -------------------------------------------------------------------
def test_replaying_a_parked_forgery_parks_it_again_as_a_foreign_writer(
    make_node: NodeFactory, world: World, backend: str | None
) -> None:
    """C did not trust A yet, so every forgery was parked for its unknown key. An administrator vouches for A's key
    and the operator replays each: still refused, now as ``foreign_writer`` (its parked row says so), not applied."""
    t = target(make_node, world, backend, trusting=(B, SC))
    ship(world.owner, t)
    for f in world.forged:
        outcome = ingest(t.app, f.raw, PendingStore(t.app, t.engine))
        assert outcome.kind == "parked" and outcome.code == "unknown_agency", outcome
        park(t, outcome, f.raw, f"events/0@{f.label}")
    vouch(t, A, world.genesis[A])
    size = t.app.max_position()
    rows = parked(t)
    assert len(rows) == len(world.forged)
    for row, f in zip(rows, world.forged, strict=True):
        assert_foreign(replay_parked(t, row["id"]), f, world)
        assert_foreign(replay_parked(t, row["id"]), f, world)  # and again: nothing changes
    # nothing forged was applied: what the replays added are the incidents they raised (once per message)
    added = [env.header.topic for _, _, env in t.app.envelopes(start=size + 1)]
    assert set(added) <= {"ledger.domain.incidents:Incident.Raised"}
    assert len(added) == len({env.header.stream for _, _, env in t.app.envelopes(start=size + 1)})
    assert {(r["code"], r["status"]) for r in parked(t)} == {("foreign_writer", "parked")}
    assert_x_still_protected(t, world, C)


# -- written straight into the store: the audit names it -----------------------------------------------------------
def _insert(node: Node, f: Forgery) -> int:
    app = node.app
    app.recorder.insert_events([StoredEvent(f.stream, f.version, f.topic, app.signed_mapper.protect(f.raw))])
    return app.max_position()


def test_each_forgery_written_straight_into_the_store_is_the_first_bad_event_of_the_audit(
    make_node: NodeFactory, world: World, backend: str | None
) -> None:
    """An insider (or a bug) puts the event past ingest: ``audit verify`` names it, whatever kind of forgery it is."""
    t = target(make_node, world, backend)
    ship(world.owner, t)
    assert verify_log(t.app, workers=1).ok
    for f in world.forged:
        position = _insert(t, f)
        report = verify_log(t.app, workers=1)
        bad = report.first_bad
        assert bad is not None and bad.code == "foreign_writer", f"{f.label}: {bad}"
        assert (bad.position, bad.stream, bad.version, bad.topic) == (position, str(f.stream), f.version, f.topic)
        delete(t, position)
        forge_head(t)  # the head row followed the insert; put it back as the rows now are
    assert verify_log(t.app, workers=1).ok


def test_audit_verify_on_the_command_line_exits_6_naming_the_forged_release(
    make_node: NodeFactory, world: World, backend: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attack 1 as an insider would leave it: B's protection of X released, signed by A, in C's store."""
    t = target(make_node, world, backend)
    ship(world.owner, t)
    peer, subject = world.peer.app, world.peer.app.subject(world.x)
    x_stream, topic = world.owner.app.ids.protection(B, subject), "ledger.domain.flags:Protection.FlagsReleased"
    version = peer.signed_store.head(x_stream)[0] + 1  # type: ignore[index]
    fields = {
        "agency": B,
        "subject": subject,
        "flags": [NAR, ND],
        "request_id": UUID(int=7),
        "by": "op",
        "explanation": "lifted by A",
    }
    f = Forgery("their_stream", B, topic, x_stream, version, forge(peer, A, topic, x_stream, version, fields))
    assert_foreign(ingest(t.app, f.raw, PendingStore(t.app, t.engine)), f, world)
    position = _insert(t, f)
    code = main(["--data-dir", str(t.config.data_dir), "audit", "verify", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 6, err
    assert f"position {position} ({f.topic} v{f.version} of stream {f.stream})" in err and "[foreign_writer]" in err


# -- attack 2, as stories -------------------------------------------------------------------------------------------
def test_a_peer_cannot_revoke_anothers_key_nor_grant_its_counter_administer(
    make_node: NodeFactory, world: World, backend: str | None
) -> None:
    """A revokes B's current key (on B's registry, and on its own registry naming B's key) and grants B's counter
    role ``administer``: all parked at B's node and C's; B still signs, C still applies B's events, and B's counter
    clerks still may not administer."""
    t = target(make_node, world, backend)
    ship(world.owner, t)
    peer, owner = world.peer.app, world.owner.app
    current = owner.signers[B].key_id
    registry, agency = KeyRegistry.create_id(agency=B), Agency.create_id(code=B)
    own_registry = KeyRegistry.create_id(agency=A)
    revoke = {"key_id": current, "effective_from": datetime.now(UTC).isoformat(), "reason": "stolen", "by": "admin"}
    attempts = [
        forge(
            peer,
            A,
            "ledger.domain.keys:KeyRegistry.KeyRevoked",
            registry,
            owner.signed_store.head(registry)[0] + 1,
            revoke,
        ),  # type: ignore[index]
        forge(
            peer,
            A,
            "ledger.domain.keys:KeyRegistry.KeyRevoked",
            own_registry,
            peer.signed_store.head(own_registry)[0] + 1,
            revoke,
        ),  # type: ignore[index]
        forge(
            peer,
            A,
            "ledger.domain.agencies:Agency.PermissionGranted",
            agency,
            owner.signed_store.head(agency)[0] + 1,
            {"role": "counter", "action": "administer", "by": "admin"},
        ),  # type: ignore[index]
    ]
    for node in (world.owner, t):
        size = node.app.max_position()
        for raw in attempts:
            outcome = ingest(node.app, raw, PendingStore(node.app, node.engine))
            assert outcome.kind == "parked" and outcome.code == "foreign_writer", outcome
        assert node.app.max_position() == size
        assert node.app.keyring.revoked(current) is None
        assert not node.app.agency(B).allows({"counter"}, Action.ADMINISTER)
    # B still signs with the key A tried to revoke, and C still takes its events (on a new stream: the streams
    # the other tests forge on stay as they were)
    link(owner, B, individual_number(), individual_number())
    assert ship(world.owner, t) == 1


# -- on the peer's own node: the check it would have to patch out ------------------------------------------------------
def test_a_peer_node_refuses_to_seal_a_release_of_anothers_protection(world: World) -> None:
    """Attack 1 as first reproduced: on A's node, load B's replicated protection of X, release it, save it signed
    with A's key. Refused before anything is signed; a new protection in B's name is refused too."""
    peer = world.peer.app
    size = peer.max_position()
    # A's node cannot compute B's keyed stream id, but holds B's replicated stream: the attacker takes its id
    x_stream = world.owner.app.ids.protection(B, peer.subject(world.x))
    protection = peer.find(Protection, x_stream)
    assert protection is not None and protection.active(ND)
    protection.release([NAR, ND], UUID(int=1), "op", "lifted by A")
    with pytest.raises(PermissionDenied) as refused:
        peer.save_as(A, protection)
    assert refused.value.code == "foreign_writer" and "Protection.FlagsReleased" in str(refused.value)
    fake = Protection(id=uuid4(), agency=B, subject=peer.subject(individual_number()))
    with pytest.raises(PermissionDenied) as refused:
        peer.save_as(A, fake)
    assert refused.value.code == "foreign_writer" and "`agency`" in str(refused.value)
    assert peer.max_position() == size
    fresh = peer.find(Protection, x_stream)
    assert fresh is not None and fresh.active(ND) and fresh.active(NAR)


def test_the_one_event_another_agency_may_append_is_applied(
    make_node: NodeFactory, world: World, backend: str | None
) -> None:
    """The table's documented exception: X's new municipality (here A's node) cancels a proxy registered at B."""
    t = target(make_node, world, backend)
    x, y = individual_number(), individual_number()
    world.owner.app.register_proxy(Actor(B, "req"), x, y)
    ship(world.owner, t)
    ship(world.owner, world.peer)
    start = world.peer.app.max_position()
    world.peer.app.cancel_proxy(Actor(A, "req"), x, y, "intake advice")
    cancels = [raw for _, _, raw in publishable(world.peer.app, start)]
    assert len(cancels) == 1
    assert ingest(t.app, cancels[0], PendingStore(t.app, t.engine)).kind == "applied"
    assert verify_log(t.app, workers=1).ok
