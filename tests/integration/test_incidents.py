"""Incidents are raised, not just parked.

B (on a node it shares with C) protects X; A, on its own node, receives B's events. When a forged signature, a
fork of a stream, a checkpoint fork or a revoked key's late use is parked, the agency owning the targeted record
— the holder of X's protection, whose protected person may need to move — is alerted through its work queue
(only it, when it is hosted on the node); a node that does not host the owner alerts every agency it hosts.
Each alert is a local ledger event, raised once however often the message is delivered, and stays in the
record after a staff member acknowledges it. Faults (garbage, gaps, an agency not yet trusted) raise nothing.
Messages reach ingest directly here; tests/integration/test_kafka_incidents.py sends them through the broker.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumers.ingest import Outcome, PendingStore, ingest
from consumers.outbox import publishable
from consumers.parked import park, parked, replay_parked
from ledger.app import Actor
from ledger.app.holds import holds
from ledger.app.incidents import acknowledge, incidents_of
from ledger.audit.verify import verify_log
from ledger.domain.incidents import Incident
from ledger.errors import InputError, NotFoundError, PermissionDenied, StateConflict
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node
from projections.views import work_queue
from tests.conftest import A, B, C
from tests.integration.test_checkpoint_exchange import _fork as fork_checkpoints
from tests.integration.test_revoked_key_backdating import scene as revoked_scene  # noqa: F401 (a fixture)
from tests.support.forgery import published, resigned, tampered
from tests.support.ship import ship
from tests.support.trust import trust

FLAGS = ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"]


@dataclass
class Nodes:
    a: Node  # hosts A
    bc: Node  # hosts B, which protects X, and C
    x: str  # X's individual number (never stored)
    pseudonym: str
    shipped: int


def protect(node: Node, agency: str, x: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), x, FLAGS)
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


@pytest.fixture
def nodes(make_node: Callable[..., Node], tmp_path: Path, backend: str | None, person: Callable[[], str]) -> Nodes:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    bc = make_node(
        (AgencySpec(B, "B市", "municipality"), AgencySpec(C, "C市", "municipality")),
        name="bc",
        pseudonym_key_file=key,
        database_url=backend,
    )
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key)
    trust(a, bc, B)
    trust(a, bc, C)
    trust(bc, a, A)
    x = person()
    protect(bc, B, x)
    shipped = ship(bc, a)
    return Nodes(a, bc, x, bc.app.subject(x), shipped)


def deliver(node: Node, raw: bytes, source: str) -> tuple[Outcome, list[Incident]]:
    """What the consumer does with one message: ingest, and park it (raising incidents) if refused."""
    outcome = ingest(node.app, raw, PendingStore(node.app, node.engine))
    return outcome, (park(node, outcome, raw, source) if outcome.kind == "parked" else [])


def flags_of(node: Node, pseudonym: str) -> set[str]:
    node.projector.catch_up()
    assert node.app.flag_state is not None
    return set(node.app.flag_state.flags_for(pseudonym))


def reads(node: Node, what: str) -> list[tuple[str, str]]:
    """(reader, subject) of every recorded read of protected details named ``what``."""
    out = []
    for _, _, env in node.app.envelopes():
        if env.header.topic == "ledger.domain.identity:AccessRecord.ProtectedDetailsRead":
            ev = node.app.signed_mapper.decode(env)
            if ev.what == what:  # type: ignore[attr-defined]
                out.append((f"{ev.agency}/{ev.staff}", ev.subject))  # type: ignore[attr-defined]
    return out


def test_a_forged_signature_on_a_protection_alerts_its_holder_and_no_other_agency(nodes: Nodes) -> None:
    """Threat: a peer agency (or the broker operator) alters B's FlagsSet of X in transit, dropping the
    non-disclosure flag. On B's own node the message is parked and B — the holder, whose person may need to
    move — is alerted; C, hosted on the same node, learns nothing of X; the counter clerk sees nothing."""
    genuine = published(nodes.bc, B, "Protection.FlagsSet")
    forged = tampered(genuine)
    outcome, raised = deliver(nodes.bc, forged, "flagledger.events/0@41")
    assert (outcome.kind, outcome.code) == ("parked", "bad_signature")
    assert [(i.agency, i.kind, i.code) for i in raised] == [(B, "forged_signature", "bad_signature")]
    assert flags_of(nodes.bc, nodes.pseudonym) == set(FLAGS), "nothing of the forgery was applied"

    queue = work_queue(nodes.bc, Actor(B, "rev"))
    [alert] = queue.incidents
    stream = Envelope.from_bytes(genuine).header.stream
    [row] = parked(nodes.bc)
    assert (alert.kind, alert.stream, alert.version, alert.origin) == ("forged_signature", stream, 2, B)
    assert alert.topic.endswith("Protection.FlagsSet") and alert.parked_id == row["id"]
    assert alert.subjects == (nodes.pseudonym,) and queue.incidents_open == 1
    assert reads(nodes.bc, "incident queue") == [(f"{B}/rev", nodes.pseudonym)], "the listing is a recorded read"
    for other in (Actor(C, "rev"), Actor(C, "admin"), Actor(B, "counter"), Actor(B, "req")):
        q = work_queue(nodes.bc, other)
        assert q.incidents == () and q.incidents_open == 0, other
    assert work_queue(nodes.bc, Actor(B, "admin")).incidents == (alert,)  # the node's security officer
    assert verify_log(nodes.bc.app).ok


def test_a_forgery_aimed_at_a_record_hosted_elsewhere_alerts_every_agency_of_the_node(nodes: Nodes) -> None:
    """Threat: the broker operator alters B's event on its way to A. A's node does not host the record's owner,
    so it cannot tell whom the forgery targets: every agency it hosts (here A) is alerted."""
    forged = tampered(published(nodes.bc, B, "Protection.FlagsSet"))
    _, raised = deliver(nodes.a, forged, "flagledger.events/0@41")
    assert [(i.agency, i.owner, i.subjects) for i in raised] == [(A, B, [nodes.pseudonym])]
    assert [i.kind for i in work_queue(nodes.a, Actor(A, "rev")).incidents] == ["forged_signature"]


def test_a_fork_of_a_protection_alerts_the_holder_on_its_own_node_and_every_agency_elsewhere(nodes: Nodes) -> None:
    """Threat: an insider with B's data directory and signing key publishes a second history of X's protection
    (a different v2, properly signed). A's node parks it as a fork; B's own node as a forgery of its own event."""
    genuine = published(nodes.bc, B, "Protection.FlagsSet")
    fork = resigned(genuine, nodes.bc.app.signers[B])
    outcome, raised_a = deliver(nodes.a, fork, "flagledger.events/0@42")
    assert outcome.code == "fork" and [(i.agency, i.kind) for i in raised_a] == [(A, "fork")]
    outcome, raised_b = deliver(nodes.bc, fork, "flagledger.events/0@42")
    assert outcome.code == "forged_own" and [(i.agency, i.kind) for i in raised_b] == [(B, "fork")]
    [alert] = work_queue(nodes.bc, Actor(B, "apr")).incidents
    assert alert.code == "forged_own" and alert.subjects == (nodes.pseudonym,)
    assert work_queue(nodes.bc, Actor(C, "apr")).incidents == ()
    assert flags_of(nodes.a, nodes.pseudonym) == set(FLAGS) == flags_of(nodes.bc, nodes.pseudonym)


def test_a_checkpoint_fork_alerts_every_agency_and_records_the_hold(nodes: Nodes) -> None:
    """Threat: a peer agency (A) shows B's node two histories of its log. The hold the node places on A is
    part of the alert, and every agency of the node is alerted: any of them may hold what A rewrote."""
    nodes.a.app.sign_checkpoint()
    last = ship(nodes.a, nodes.bc)
    fork_checkpoints(nodes.a)
    [(_, _, raw)] = list(publishable(nodes.a.app, last))
    outcome, raised = deliver(nodes.bc, raw, "flagledger.events/1@9")
    assert outcome.code == "checkpoint_fork" and [h["agency"] for h in holds(nodes.bc.app)] == [A]
    assert sorted((i.agency, i.kind, i.origin_held) for i in raised) == [(B, "fork", True), (C, "fork", True)]
    assert [i.origin_held for i in work_queue(nodes.bc, Actor(C, "rev")).incidents] == [True]


def test_a_revoked_key_used_late_is_an_incident(revoked_scene) -> None:  # noqa: F811
    """Threat: a thief of B's old key backdates a release of X's flags after B revoked the key. A parks it
    (revoked_key_late) and is alerted; the incident names X's protection stream."""
    a, _, x, forged = revoked_scene
    release = next(raw for raw in forged if b"Protection.Flags" in raw)  # (not the last-holder warning beside it)
    outcome, raised = deliver(a, release, "flagledger.events/0@77")
    assert outcome.code == "revoked_key_late"
    assert [(i.agency, i.kind, i.subjects) for i in raised] == [(A, "revoked_key_late", [a.app.subject(x)])]


def test_redelivery_and_republishing_raise_no_second_incident(nodes: Nodes) -> None:
    """Threat: the broker operator (or a crash before the offset commit) delivers the forgery again and again,
    at the same offset and at new ones: one incident per agency, ever; the parked record keeps each delivery."""
    forged = tampered(published(nodes.bc, B, "Protection.FlagsSet"))
    _, first = deliver(nodes.bc, forged, "flagledger.events/0@41")
    for source in ("flagledger.events/0@41", "flagledger.events/0@41", "flagledger.events/0@97"):
        assert deliver(nodes.bc, forged, source)[1] == []
    assert len(first) == 1 and [i.id for i in incidents_of(nodes.bc.app, B)] == [first[0].id]
    rows = parked(nodes.bc)
    assert [r["source"] for r in rows] == ["flagledger.events/0@41", "flagledger.events/0@97"]
    assert replay_parked(nodes.bc, rows[0]["id"]).kind == "parked"  # still forged: still one incident
    assert len(incidents_of(nodes.bc.app, B)) == 1 and len(work_queue(nodes.bc, Actor(B, "rev")).incidents) == 1


def test_faults_are_parked_without_raising_an_incident(nodes: Nodes, make_node, tmp_path: Path) -> None:
    """Threat: none — garbage, a gap and an agency not yet trusted are faults an operator fixes. Raising them
    would bury real alerts (and let anyone flood every agency's queue with junk)."""
    stranger = make_node((AgencySpec("131040", "D市", "municipality"),), name="d")
    first = next(raw for _, _, raw in publishable(stranger.app))
    ahead = resigned(published(nodes.bc, B, "Protection.FlagsSet"), nodes.bc.app.signers[B], skip=3)
    for raw, code in ((b"\x00garbage", "malformed"), (first, "unknown_agency"), (ahead, "gap")):
        outcome = ingest(nodes.a.app, raw)
        assert outcome.code == code
        assert park(nodes.a, outcome, raw, "flagledger.events/2@1") == []
    assert incidents_of(nodes.a.app, A) == [] and work_queue(nodes.a, Actor(A, "admin")).incidents == ()


def test_acknowledging_clears_the_open_queue_and_keeps_the_record(nodes: Nodes) -> None:
    """Threat: an insider at another agency or in the wrong role trying to make an alert go away. Only staff of
    the alerted agency who act on it acknowledge it, with a note; the acknowledgement is a signed event and
    the incident stays in the record (the breach report still lists it)."""
    forged = tampered(published(nodes.bc, B, "Protection.FlagsSet"))
    [incident] = deliver(nodes.bc, forged, "flagledger.events/0@41")[1]
    with pytest.raises(PermissionDenied):
        acknowledge(nodes.bc.app, Actor(B, "counter"), incident.id, "見ました")
    with pytest.raises(NotFoundError) as refused:
        acknowledge(nodes.bc.app, Actor(C, "admin"), incident.id, "見ました")
    assert B not in str(refused.value), "the refusal names nobody else"
    with pytest.raises(InputError):
        acknowledge(nodes.bc.app, Actor(B, "rev"), incident.id, "  ")
    with pytest.raises(InputError) as numbered:
        acknowledge(nodes.bc.app, Actor(B, "rev"), incident.id, f"本人 {nodes.x} に連絡済み")
    assert nodes.x not in str(numbered.value)
    done = acknowledge(nodes.bc.app, Actor(B, "rev"), incident.id, "本人に連絡し、安全を確認した")
    assert done.acknowledged_by == "rev" and done.acknowledged_at
    with pytest.raises(StateConflict):
        acknowledge(nodes.bc.app, Actor(B, "admin"), incident.id, "二度目")
    queue = work_queue(nodes.bc, Actor(B, "rev"))
    assert queue.incidents == () and queue.incidents_open == 0
    [kept] = incidents_of(nodes.bc.app, B)
    assert (kept.id, kept.acknowledged_by, kept.note) == (incident.id, "rev", "本人に連絡し、安全を確認した")
    assert nodes.x not in repr(vars(kept))
