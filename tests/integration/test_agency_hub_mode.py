"""Agency nodes in linkage hub mode (issue 19): three nodes — A the provider, B the holder, C the querier — each
with its own data directory, secrets and databases, talking only to an in-process hub on the in-memory
transport through ``consumers/linkage_bridge.py``.

Threats, per test: the perpetrator (asking at C about X, who fled to B), a peer agency and an insider at the
provider (what A's data directory and secrets hold and can compute), the broker operator (re-injecting a
message, junk in an inbox), and the hub being unreachable (local flags still decide).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import MetaData, func, select

from ledger.app import Actor
from ledger.linkage.codes import agency_code
from ledger.linkage.sealing import seal
from ledger.linkage.transport import Topics
from ledger.log.keyed_hash import KeyedHash
from ledger.runtime.linkage import code_secret_name, subject_of
from ledger.runtime.tables import linkage_applied, linkage_consultations, linkage_parked, linkage_routed
from tests.conftest import NodeFactory
from tests.support.approvals import approve_fully
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, data_dir_bytes, hub_world, set_flag
from tests.support.hub_world import A, B, C
from tests.support.key_probe import hmac_candidates
from tests.support.people import individual_number


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    """Each node and the hub on its own database: SQLite files, or throw-away PostgreSQL databases."""
    yield from _world(make_node, backend, tmp_path)


@pytest.fixture
def ignoring_world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    """The same, the hub running its flag map but routing every query "auto" past the flags it shows."""
    from tests.support.map_hub import IgnoringHeads

    yield from _world(make_node, backend, tmp_path, IgnoringHeads)


@pytest.fixture
def dropping_world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    """The hub running its flag map but dropping B's flags from what providers are shown."""
    from tests.support.map_hub import DroppingHeads

    class DropsB(DroppingHeads):
        victim = B

    yield from _world(make_node, backend, tmp_path, DropsB)


@pytest.fixture
def mapped_world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    """The same, the hub running its flag map honestly (it acknowledges each registration it files)."""
    from ledger.hub.heads import MapHeads

    yield from _world(make_node, backend, tmp_path, MapHeads)


def _world(make_node: NodeFactory, backend: str | None, tmp_path: Path, heads: Any = None) -> Iterator[HubNodes]:
    with hub_world(make_node, backend, tmp_path, (A, B, C), heads) as w:
        yield w


def names(text: str, agency: str) -> bool:
    """Whether ``text`` names ``agency``: its code standing alone, not six digits inside a hex id or a time."""
    return re.search(rf"(?<![0-9a-fA-F.]){agency}(?![0-9a-fA-F])", text) is not None


def _secret(w: HubNodes, code: str) -> KeyedHash:
    """The agency's code secret as its HMAC, computed where it lives (inside the token with ``pkcs11``)."""
    return w.nodes[code].keys.store.keyed_hash(code_secret_name(code))


def _count(w: HubNodes, code: str, table: object) -> int:
    with w.nodes[code].engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _all_rows(w: HubNodes, code: str) -> str:
    """Every row of every table of the node's views and operational database (on PostgreSQL it is not in the
    data directory), as text."""
    engine = w.nodes[code].engine
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return "\n".join(str(tuple(r)) for t in meta.sorted_tables for r in conn.execute(select(t)))


def test_each_node_names_a_person_by_its_own_code(world: HubNodes) -> None:
    """Insider at a peer agency: a subject at A is A's own code, under A's own secret — not a national
    pseudonym B's node would also compute for the same number."""
    x = individual_number()
    at_a, at_b = world.nodes[A].app.subject(x), world.nodes[B].app.subject(x)
    assert at_a == subject_of(agency_code(_secret(world, A), A, x))
    assert at_b == subject_of(agency_code(_secret(world, B), B, x))
    assert at_a != at_b


def test_seed_c_asks_a_about_x_held_for_staff_though_a_never_learns_b(world: HubNodes) -> None:
    """Perpetrator asking at C; insider at the provider A (its whole data directory and secrets): B protects X
    with four eyes; C's query about X reaches A through the hub marked for staff, so A holds it (never an
    automatic answer) and C hears "in progress"; Z, unprotected, is answered automatically (the control). A's
    node holds no B code for X, nor anything naming B, and no secret of A computes B's code."""
    x, z = individual_number(), individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)  # A, X's old municipality, holds X's tax data
    world.bridges[A].file_person(z)
    world.settle()
    asked = world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    control = world.bridges[C].ask(Actor(C, "counter"), A, z, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    assert world.bridges[C].query(asked)["status"] == "queued"  # nothing sent before the push: visible
    world.settle()

    assert world.bridges[C].query(asked)["status"] == "in_progress"
    assert world.bridges[C].query(control)["status"] == "answered"
    with world.nodes[A].engine.connect() as conn:
        routed = conn.execute(select(linkage_routed)).all()
    statuses = sorted(world.nodes[A].app.provision_request(UUID(r.local_request_id)).status or "" for r in routed)
    assert statuses == ["held", "provided"]
    held = next(r for r in routed if world.nodes[A].app.provision_request(UUID(r.local_request_id)).status == "held")
    request = world.nodes[A].app.provision_request(UUID(held.local_request_id))
    assert request.subject == world.nodes[A].app.subject(x) and request.querier == C

    # B, the holder, is consulted under its own code, about A's request, without the querier
    consulted = world.bridges[B].consultations()
    assert [(c["provider"], c["subject"]) for c in consulted] == [(A, world.nodes[B].app.subject(x))]
    assert not names(json.dumps(consulted), C)
    assert _count(world, A, linkage_consultations) == 0 and _count(world, C, linkage_consultations) == 0

    # A never learns that B holds: nothing in A's log or tables names B, and no B code for X is anywhere
    b_code = agency_code(_secret(world, B), B, x)
    blob = data_dir_bytes(world.nodes[A].config.data_dir)
    rows = _all_rows(world, A)
    assert world.nodes[A].app.subject(x) in rows  # the search can find a subject
    for form in (b_code, subject_of(b_code), b_code[1:]):
        assert form.encode() not in blob and form not in rows
    events = [
        str(world.nodes[A].app.signed_mapper.decode(env).__dict__) for _, _, env in world.nodes[A].app.envelopes()
    ]
    assert not any(names(e, B) for e in events)
    assert any(names(e, A) for e in events)  # the search can find an agency
    assert any(world.nodes[A].app.subject(x) in e for e in events)  # the search can find a subject
    # ... and cannot compute one: every secret of A's node, used as B's code secret, gives another code
    candidates = hmac_candidates(world.nodes[A].keys.store)
    assert candidates
    for candidate in candidates:
        assert agency_code(candidate, B, x) != b_code
    # the check can fail: B's own secret does compute it
    assert agency_code(_secret(world, B), B, x) == b_code


def test_a_flag_held_locally_decides_while_the_hub_does_not_know(world: HubNodes) -> None:
    """The hub unreachable from the provider (its flag change never sent): A protects W itself, the hub routes
    C's query about W as "auto", and A holds it anyway — a local flag decides without the hub."""
    w = individual_number()
    world.bridges[A].file_person(w)
    world.settle()
    set_flag(world.nodes[A], A, w, "NO_AUTO_RESPONSE")  # A's push does not run: the hub never hears of it
    asked = world.bridges[C].ask(Actor(C, "counter"), A, w, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.bridges[C].push()
    world.hub.step(timeout_ms=20)
    pulled = world.bridges[A].pull(timeout_ms=20)
    assert pulled.applied == ["routed_query"]
    with world.nodes[A].engine.connect() as conn:
        (local,) = conn.execute(select(linkage_routed.c.local_request_id)).scalars()
    assert world.nodes[A].app.provision_request(UUID(local)).status == "held"
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "in_progress"


def test_a_replayed_or_junk_message_is_dropped_or_parked_durably(world: HubNodes) -> None:
    """Broker operator re-injecting the hub's message into A's inbox (after A's bridge restarted, no memory):
    dropped by the applied id in A's database, no second request; junk and a peer's message sealed to A:
    parked, the inbox committed past them."""
    x = individual_number()
    world.bridges[A].file_person(x)
    world.settle()
    world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    inbox = Topics().inbox(A)
    routed = world.broker.topics[inbox][0]
    assert _count(world, A, linkage_routed) == 1 and _count(world, A, linkage_applied) == 1

    world.broker.append(inbox, routed)
    world.broker.append(inbox, b"junk")
    peer = world.nodes[B]
    forged = seal(peer.app.signers[B], world.bridges[A].keys.sealing.public_key(), A, "0" * 32, "answer", b"{}")
    world.broker.append(inbox, forged)
    pulled = world.bridge(A).pull(timeout_ms=20)
    assert pulled.replays == 1 and pulled.applied == []
    assert len(pulled.parked) == 2
    assert _count(world, A, linkage_routed) == 1 and _count(world, A, linkage_parked) == 2
    assert world.bridge(A).pull(timeout_ms=20).parked == []  # committed past: not handed over again


def test_the_staff_made_answer_waits_for_the_consultation_and_the_hub_files_records_and_flags(world: HubNodes) -> None:
    """Perpetrator asking at C, then waiting; an administrator holding one person's staff key. Nothing is
    decided before B's staff advise (``staff_decision_required``); B's counter may not advise; a decision signed
    twice by one reviewer's key is refused by the hub (four eyes are two people); A's reviewer and approver
    decide with their own staff keys and C hears "in progress" until A's batch releases the decision, then the
    decided answer — never an automatic one. The hub filed B's set and release (after B's own chain) and A's
    provision record of the request, once each (its outcome updated in place: ``record_outcome``)."""
    from datetime import timedelta

    from consumers import linkage_decisions as decisions
    from ledger.app.answers import run_batches
    from ledger.errors import FlagLedgerError
    from ledger.hub.tables import hub_decisions, hub_flag_changes, hub_parked, hub_records, hub_sealed_records
    from ledger.linkage.consultation import StaffAnswer, decision_statement
    from ledger.linkage.record_contents import open_contents
    from tests.support.wire_scan import portal_inbox

    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    asked = world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    a, b = world.nodes[A], world.nodes[B]
    with a.engine.connect() as conn:
        (routed,) = conn.execute(select(linkage_routed)).all()
    local = UUID(routed.local_request_id)
    with pytest.raises(FlagLedgerError) as early:  # the holders are still being asked: nothing to sign
        decisions.propose(a.app, a.engine, Actor(A, "rev"), local, "provide", "unknown")
    assert early.value.code == "staff_decision_required"
    assert a.app.provision_request(local).proposal is None

    (consultation,) = world.bridges[B].consultations()
    with pytest.raises(FlagLedgerError) as counter:
        decisions.advise(b.app, b.engine, Actor(B, "counter"), consultation["request_id"], "do_not_disclose")
    assert counter.value.code == "role_not_permitted"
    decisions.advise(b.app, b.engine, Actor(B, "rev"), consultation["request_id"], "do_not_disclose")
    world.settle()
    (case,) = decisions.cases(a.engine)
    assert (case["advice"], case["basis"], case["request_id"]) == ("do_not_disclose", "advised", str(local))
    assert not names(json.dumps(case), B)  # combined advice: the provider learns no holder

    # one person's key on both halves (an administrator, or a reviewer alone): the hub refuses it
    lone = a.app.signer_for(Actor(A, "rev"))
    statement = decision_statement(A, routed.hub_request_id, "answered", "", "do_not_disclose", "advised")
    half = lone.sign(statement)
    forged = StaffAnswer(
        routed.hub_request_id, "answered", "", "do_not_disclose", "advised", *half.values(), *half.values()
    )
    world.bridges[A].end.answer_decided(forged)
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "in_progress"
    with world.hub.store.engine.connect() as conn:
        assert [r.code for r in conn.execute(select(hub_parked))] == ["four_eyes"]

    decisions.propose(a.app, a.engine, Actor(A, "rev"), local, "refuse", "unknown")
    version = a.app.provision_request(local).proposal_version
    assert version is not None
    decisions.approve(a.app, a.engine, Actor(A, "apr"), local, version)
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "in_progress"  # decided, not yet released
    run_batches(a.app, a.app.clock() + timedelta(days=2))
    world.settle()
    # the decision reached C only as a staff_answer the hub checked against A's roster: two of A's people
    assert world.bridges[C].query(asked)["status"] == "not_provided"
    with world.hub.store.engine.connect() as conn:
        (decided,) = conn.execute(select(hub_decisions)).all()
        assert [r.code for r in conn.execute(select(hub_parked))] == ["four_eyes"]  # nothing refused since
    assert (decided.status, decided.advice, decided.basis) == ("not_provided", "do_not_disclose", "advised")
    rev, apr = (a.app.roster(A).current_key(w) for w in ("rev", "apr"))  # type: ignore[union-attr]
    assert rev is not None and apr is not None
    assert (decided.first_key, decided.second_key) == (rev.key_id, apr.key_id)

    rid = world.nodes[B].app.request_flags(
        Actor(B, "req"), x, ["NON_DISCLOSURE"], kind="release", explanation="told in person"
    )
    approve_fully(world.nodes[B].app, B, rid)
    world.nodes[B].app.execute_request(Actor(B, "op"), rid)
    world.settle()
    world.bridges[B].push()  # nothing new: nothing sent twice
    world.settle()
    with world.hub.store.engine.connect() as conn:
        changes = [(r.holder, r.flag, r.action) for r in conn.execute(select(hub_flag_changes).order_by("seq"))]
        sealed = conn.execute(select(hub_sealed_records)).all()
        clear = conn.execute(select(hub_records)).all()
    assert changes == [(B, "NON_DISCLOSURE", "set"), (B, "NON_DISCLOSURE", "release")]
    # the record's contents are A's, sealed to the portal: the portal opens them, the hub keeps none in the clear
    assert world.portal_keys is not None and clear == []
    keys = world.hub.directory.sender_keys(a.app.clock())
    wires, _ = portal_inbox(world.broker, world.portal_keys, keys)  # the record's wire key, delivered to the portal
    records = [
        (r.provider, open_contents(world.portal_keys, r.contents, keys, r.record_id, r.provider, wires)) for r in sealed
    ]
    # one record: filed "held", its outcome updated in place once the batch released the decision
    assert [(provider, c.querier, c.outcome) for provider, c in records] == [(A, C, "refused")]


def test_a_misconfigured_mode_is_refused_never_a_silent_fallback(make_node: NodeFactory) -> None:
    """Administrator's mistake: an unknown mode, hub mode without the hub's keys, or hub mode on a node hosting
    two agencies (one subject space, two codes) is refused at opening — never today's shared pseudonym in its
    place; the default stays the shared mode, and the bridge refuses a shared-mode node."""
    from consumers.linkage_bridge import LinkageBridge
    from ledger.errors import ConfigurationError, InputError
    from ledger.linkage.transport import MemoryBroker, MemoryTransport
    from ledger.log.pseudonym import Pseudonymizer
    from ledger.runtime.bootstrap import AgencySpec, open_node
    from ledger.runtime.config import NodeConfig
    from ledger.runtime.linkage import published_entry
    from ledger.runtime.roles import DirectoryEntry
    from tests.support.hub_nodes import hub_entry
    from tests.support.hub_world import hub_keys

    one = make_node((AgencySpec(A, "A市", "municipality"),), staff=False)
    x = individual_number()
    assert one.app.subject(x) == Pseudonymizer(one.keys.pseudonym_hash())(x)  # the default: shared
    with pytest.raises(InputError):
        LinkageBridge(one, MemoryTransport(MemoryBroker(), A))
    two = make_node((AgencySpec(A, "A市", "municipality"), AgencySpec(B, "B市", "municipality")), staff=False)
    entry = hub_entry(hub_keys(), "2026-01-01T00:00:00+00:00")
    for node, linkage in (
        (one, {"mode": "hubb"}),
        (one, {"mode": "hub"}),
        (one, {"mode": "hub", "hub": {**entry, "sealing_public_hex": "00"}}),
        (one, {"mode": "hub", "hub": {**entry, "party": B}}),  # a peer's entry where the hub's belongs
        (two, {"mode": "hub", "hub": entry}),
    ):
        config = NodeConfig.load(node.config.data_dir)
        config.linkage = linkage
        config.save()
        with pytest.raises(ConfigurationError):
            open_node(node.config.data_dir)
    config = NodeConfig.load(one.config.data_dir)
    config.linkage = {"mode": "hub", "hub": entry}
    config.save()
    opened = open_node(one.config.data_dir)  # the control: a good setting opens, in hub mode
    try:
        assert opened.app.subject(x) != one.app.subject(x)
        # what the agency publishes is what the hub's `linkage directory import` takes
        assert DirectoryEntry.parse(published_entry(opened)).party == A
    finally:
        opened.close()


def test_the_node_loop_in_hub_mode_talks_to_the_hub_only(world: HubNodes) -> None:
    """Peer agency reading the shared topic: B's node loop in hub mode runs the bridge and no relay — its flag
    change reaches the hub sealed, the status file says so, and nothing is published for other agencies."""
    from ledger.hub.tables import hub_flag_changes
    from ledger.linkage.transport import MemoryTransport
    from ledger.node.agency_loop import run_agency

    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    turns = iter(range(3))
    status = run_agency(
        world.nodes[B],
        lambda: next(turns, None) is None,
        poll_timeout_ms=10,
        transport=MemoryTransport(world.broker, B),
    )
    assert status["linkage"]["mode"] == "hub" and status["linkage"]["sent"] == 2  # its staff roster, the change
    assert status["linkage"]["registrations"] == 1 and status["linkage"]["queued"] == 0
    assert status["linkage"]["map_checks"] is False and status["linkage"]["hub_incidents"] == 0  # no VRF key
    assert json.loads((world.nodes[B].config.data_dir / "node-status.json").read_text()) == status
    world.hub.step(timeout_ms=20)
    with world.hub.store.engine.connect() as conn:
        assert [r.holder for r in conn.execute(select(hub_flag_changes))] == [B]
    assert set(world.broker.topics) == {Topics().inbox("hub")}  # the hub's inbox, and no shared events topic


def test_the_command_line_asks_another_agency_through_the_hub(
    world: HubNodes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Perpetrator at C's counter; peer agency's counter staff: `provision request` to an agency not hosted goes
    through the hub (queued, then the provider's answer, "in progress" for X protected at B); the holder's
    consultation is shown to its staff who decide held requests, not to its counter; a query of another agency
    is not found. The holder's reviewer advises on the command line (its counter may not), and the provider's
    reviewer and approver decide there: C hears the decided answer once A's batch releases it."""
    from datetime import timedelta

    from ledger.app.answers import run_batches
    from tests.support.staff import run_in_process

    def cli(code: str, *argv: str) -> tuple[int, dict[str, object]]:
        rc, out, err = run_in_process(["--data-dir", str(world.nodes[code].config.data_dir), *argv], capsys)
        return rc, (json.loads(out) if rc == 0 else {"error": err})

    x = individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.settle()
    rc, asked = cli(C, "provision", "request", "--as", f"{C}/counter", "--provider", A, "--subject", x,
                    "--item", str(ITEM), "--procedure", PROCEDURE, "--info-kind", INFO)  # fmt: skip
    assert rc == 0 and asked["through"] == "hub" and asked["status"] == "queued"
    assert x not in json.dumps(asked, ensure_ascii=False)
    world.settle()
    rc, state = cli(C, "provision", "asked", str(asked["request_id"]), "--as", f"{C}/counter")
    assert rc == 0 and state["status"] == "in_progress" and state["provider"] == A
    rc, shown = cli(B, "provision", "consultations", "--as", f"{B}/rev")
    assert rc == 0 and [c["provider"] for c in shown["consultations"]] == [A]  # type: ignore[attr-defined]
    assert not names(json.dumps(shown), C)
    assert cli(B, "provision", "consultations", "--as", f"{B}/counter")[0] != 0
    assert cli(A, "provision", "asked", str(asked["request_id"]), "--as", f"{A}/counter")[0] != 0

    # B's reviewer advises (its counter may not; a second, different advice is refused); A's staff decide on it
    consulted = str(shown["consultations"][0]["request_id"])  # type: ignore[index]
    assert cli(B, "provision", "advise", consulted, "--advice", "may_disclose", "--as", f"{B}/counter")[0] != 0
    rc, advised = cli(B, "provision", "advise", consulted, "--advice", "may_disclose", "--as", f"{B}/rev")
    assert rc == 0 and advised["advice"] == "may_disclose"
    assert cli(B, "provision", "advise", consulted, "--advice", "do_not_disclose", "--as", f"{B}/rev")[0] != 0
    world.settle()
    rc, queue = cli(A, "provision", "consultations", "--as", f"{A}/rev")
    (case,) = queue["cases"]  # type: ignore[misc]
    assert (case["advice"], case["basis"]) == ("may_disclose", "advised") and not names(json.dumps(case), B)
    held = UUID(case["request_id"])
    rc, _ = cli(A, "provision", "propose", str(held), "--decision", "provide", "--applicant-check", "unknown",
                "--as", f"{A}/rev")  # fmt: skip
    assert rc == 0
    version = world.nodes[A].app.provision_request(held).proposal_version
    rc, _ = cli(A, "provision", "approve", str(held), "--proposal", str(version), "--as", f"{A}/apr")
    assert rc == 0
    run_batches(world.nodes[A].app, world.nodes[A].app.clock() + timedelta(days=2))
    world.settle()
    rc, state = cli(C, "provision", "asked", str(asked["request_id"]), "--as", f"{C}/counter")
    assert rc == 0 and state["status"] == "answered"  # the staff answer, signed by A's rev and apr


def test_a_number_change_at_the_holder_protects_under_the_new_number(world: HubNodes) -> None:
    """Perpetrator after the victim's number changed: B protects X under the old number and records the change
    with four eyes; C asks under the new number, A knows only the old one — A is asked under its own old-number
    code and holds the request for staff; the hub joined the two numbers from B's link."""
    from ledger.hub.tables import hub_links

    old, new = individual_number(), individual_number()
    set_flag(world.nodes[B], B, old, "NON_DISCLOSURE")
    b = world.nodes[B].app
    link = b.request_link(Actor(B, "req"), old, new, "個人番号の変更")
    b.approve_link(Actor(B, "apr"), link)
    world.bridges[A].file_person(old)
    world.settle()
    with world.hub.store.engine.connect() as conn:
        assert len(conn.execute(select(hub_links)).all()) == 1
    asked = world.bridges[C].ask(Actor(C, "counter"), A, new, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "in_progress"
    with world.nodes[A].engine.connect() as conn:
        (local,) = conn.execute(select(linkage_routed.c.local_request_id)).scalars()
    request = world.nodes[A].app.provision_request(UUID(local))
    assert request.status == "held" and request.subject == world.nodes[A].app.subject(old)


def _received(w: HubNodes, code: str) -> int:
    topic = "ledger.domain.provision:ProvisionRequest.Received"
    return len(w.nodes[code].app.recorder.select_notifications(start=1, limit=1000, topics=[topic]))


@pytest.mark.parametrize("crash", ["after_the_request", "before_the_request"])
def test_a_routed_query_is_received_once_across_a_crash(
    world: HubNodes, monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    """A crash of the provider's bridge between the provision request's commit (event store) and its own rows
    (views database), or just before the request: the message comes again, and the request exists exactly
    once — adopted from the log, or received now — and the querier hears once."""
    import consumers.linkage_inbound as inbound
    from consumers.linkage_receipt import receive

    x = individual_number()
    world.bridges[A].file_person(x)
    world.settle()
    asked = world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.bridges[C].push()
    world.hub.step(timeout_ms=20)

    def crashing(app: object, engine: object, agency: str, hub_request_id: str) -> None:
        with world.nodes[A].engine.connect() as conn:
            row = conn.execute(select(linkage_routed).where(linkage_routed.c.hub_request_id == hub_request_id)).one()
        if crash == "after_the_request":
            world.nodes[A].app.receive_query(
                row.querier, A, row.subject, legal_item=row.legal_item, procedure=row.procedure,
                info_kind=row.info_kind, staff_answer=bool(row.staff_answer),
            )  # fmt: skip
        raise RuntimeError("the bridge's process died here")

    monkeypatch.setattr(inbound, "receive", crashing)
    with pytest.raises(RuntimeError):
        world.bridges[A].pull(timeout_ms=20)
    assert _received(world, A) == (1 if crash == "after_the_request" else 0)
    monkeypatch.setattr(inbound, "receive", receive)

    pulled = world.bridge(A).pull(timeout_ms=20)  # a new process: the inbox was not committed
    assert pulled.replays == 1 and pulled.applied == []
    assert _received(world, A) == 1
    with world.nodes[A].engine.connect() as conn:
        (row,) = conn.execute(select(linkage_routed)).all()
    assert row.answered == "" and row.local_request_id != row.hub_request_id
    world.settle()
    assert world.bridges[C].query(asked)["status"] == "answered" and _received(world, A) == 1


def test_a_hub_mode_node_refuses_the_shared_topic(world: HubNodes) -> None:
    """Peer agency reading the shared events topic: a hub-mode node's relay and ingest (`flagledger relay`,
    `consume`, or any caller) are refused before connecting — B's acts never reach a topic every agency reads."""
    from consumers.inbox import Consumer
    from consumers.outbox import Relay
    from consumers.settings import KafkaSettings
    from ledger.errors import ConfigurationError

    settings = KafkaSettings.from_config(world.nodes[B].config)
    with pytest.raises(ConfigurationError, match="hub mode"):
        Relay(world.nodes[B], settings)
    with pytest.raises(ConfigurationError, match="hub mode"):
        Consumer(world.nodes[B], settings)


def test_the_http_api_asks_another_agency_through_the_hub(world: HubNodes) -> None:
    """Perpetrator at C's counter on the API: a query to A (not hosted at C) goes through the hub; C's staff
    see "in progress" — byte for byte what a held request says — until A's answer, and never why; another
    agency's id is not found. A's reviewer and approver decide on the API too: C hears the decided answer."""
    from datetime import timedelta

    from tests.support.api import auth, client

    x, z = individual_number(), individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.bridges[A].file_person(z)
    world.settle()
    http, h = client(world.nodes[C]), auth(world.nodes[C], C, "counter")
    ask = {"provider": A, "legal_item": ITEM, "procedure": PROCEDURE, "info_kind": INFO}
    held = http.post("/api/v1/provision-requests", json={**ask, "subject": x}, headers=h)
    free = http.post("/api/v1/provision-requests", json={**ask, "subject": z}, headers=h)
    assert held.status_code == free.status_code == 201, held.text
    assert held.json()["status"] == free.json()["status"] == "in_progress"  # queued: nothing answered yet
    world.settle()
    got = {k: http.get(f"/api/v1/provision-requests/{r.json()['request_id']}", headers=h) for k, r in
           (("held", held), ("free", free))}  # fmt: skip
    assert got["held"].json()["status"] == "in_progress" and got["free"].json()["status"] == "answered"
    assert got["held"].json()["message"] == held.json()["message"]
    other = client(world.nodes[A]).get(
        f"/api/v1/provision-requests/{held.json()['request_id']}", headers=auth(world.nodes[A], A, "counter")
    )
    assert other.status_code == 404

    # A's staff decide on the API once B advised: the same signed staff answer reaches C
    from consumers import linkage_decisions as decisions
    from ledger.app.answers import run_batches

    (consultation,) = world.bridges[B].consultations()
    b = world.nodes[B]
    decisions.advise(b.app, b.engine, Actor(B, "rev"), consultation["request_id"], "may_disclose")
    world.settle()
    (case,) = decisions.cases(world.nodes[A].engine)
    at_a = client(world.nodes[A])
    path = f"/api/v1/provision-requests/{case['request_id']}"
    body = {"decision": "provide", "applicant_check": "unknown", "note": ""}
    proposed = at_a.post(f"{path}/propose", json=body, headers=auth(world.nodes[A], A, "rev"))
    assert proposed.status_code == 200, proposed.text
    version = world.nodes[A].app.provision_request(UUID(case["request_id"])).proposal_version
    approved = at_a.post(f"{path}/approve", json={"proposal_version": version}, headers=auth(world.nodes[A], A, "apr"))
    assert approved.status_code == 200, approved.text
    run_batches(world.nodes[A].app, world.nodes[A].app.clock() + timedelta(days=2))
    world.settle()
    after = http.get(f"/api/v1/provision-requests/{held.json()['request_id']}", headers=h)
    assert after.json()["status"] == "answered"


def test_filing_needs_the_number_and_an_act_without_one_is_parked(world: HubNodes) -> None:
    """Shell user or a broken caller: a person filed by a subject string (no number typed here) is refused —
    nothing can be registered at the hub; a flag set on such a subject cannot be shared and is parked, visibly,
    rather than sent under a code the hub does not know."""
    from ledger.errors import NotFoundError
    from ledger.hub.tables import hub_flag_changes, hub_rosters

    x = individual_number()
    stranger = subject_of(agency_code(bytes(32), B, x))  # a subject never typed as a number at B
    with pytest.raises(NotFoundError):
        world.bridges[B].file_person(stranger)
    set_flag(world.nodes[B], B, stranger, "NON_DISCLOSURE")
    pushed = world.bridges[B].push()
    assert pushed.parked == 1 and pushed.acts == ["staff_roster"] and _count(world, B, linkage_parked) == 1
    world.settle()  # what B sent (its staff roster, in as many messages as fit a digest) reached the hub
    with world.hub.store.engine.connect() as conn:
        assert conn.execute(select(hub_flag_changes)).all() == [], "nothing of the flag reached the hub"
        assert conn.execute(select(hub_rosters)).all() != []


def test_the_agency_exchanges_directory_entries_on_the_command_line(
    world: HubNodes, make_node: NodeFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Administrator's mistake, or a tampered file handed over: an agency node prints its own entry (public
    keys only, what the hub imports) and takes the hub's into ``linkage.hub``; an entry whose key id is not its
    key's, or another party's, is refused and config.json is left as it was; the mode is not switched by it."""
    from ledger.runtime.bootstrap import AgencySpec, open_node
    from ledger.runtime.config import NodeConfig
    from ledger.runtime.linkage import published_entry
    from tests.support.hub_nodes import hub_entry
    from tests.support.staff import run_in_process

    def cli(data_dir: Path, *argv: str) -> tuple[int, str]:
        rc, out, err = run_in_process(["--data-dir", str(data_dir), *argv], capsys)
        return rc, out if rc == 0 else err

    a = world.nodes[A]
    rc, printed = cli(a.config.data_dir, "linkage", "directory", "export")
    assert rc == 0 and json.loads(printed) == published_entry(a)
    assert json.loads(printed)["features"] == "hub_seq"  # the hub sends hub_seq only to an entry naming it
    assert a.keys.store.get("linkage-sealing.key") not in printed  # the public half only

    fresh = make_node((AgencySpec(A, "A市", "municipality"),), name="fresh", staff=False)
    data_dir = fresh.config.data_dir
    fresh.close()
    entry = hub_entry(world.hub_keys, "2026-01-01T00:00:00+00:00")
    tampered = tuple(data_dir.parent / f"{n}.json" for n in ("hub", "bad", "peer"))
    tampered[0].write_text(json.dumps(entry))
    other_id = entry["key_id"][:-1] + ("1" if entry["key_id"].endswith("0") else "0")
    tampered[1].write_text(json.dumps({**entry, "key_id": other_id}))
    tampered[2].write_text(json.dumps(published_entry(world.nodes[B])))
    before = (data_dir / "config.json").read_text()
    for bad in tampered[1:]:
        rc, why = cli(data_dir, "linkage", "directory", "import", str(bad))
        assert rc != 0 and ("key" in why or "hub's entry alone" in why)
        assert (data_dir / "config.json").read_text() == before
    rc, printed = cli(data_dir, "linkage", "directory", "import", str(tampered[0]))
    assert rc == 0 and json.loads(printed) == {"imported": ["hub"], "mode": "shared"}
    config = NodeConfig.load(data_dir)
    assert config.linkage["hub"] == entry and config.linkage.get("mode", "shared") == "shared"
    config.linkage["mode"] = "hub"  # the switch stays the administrator's step
    config.save()
    opened = open_node(data_dir)  # hub mode opens with the hub's keys as imported
    try:
        rc, printed = cli(data_dir, "linkage", "directory", "export")
        assert rc == 0 and json.loads(printed) == published_entry(opened)
    finally:
        opened.close()


def test_the_flag_map_is_checked_before_any_automatic_answer(ignoring_world: HubNodes) -> None:
    """Perpetrator at C, helped by a hub that routes "answer automatically" past the flag its own map shows: A's
    node checks the hub's signed decision and proof before answering — Z, unflagged, is answered automatically
    (the checks pass: the control), X is held for staff and never answered automatically, and the hub's signed
    lie is recorded at A as a security incident (``flag_ignored``) with its evidence."""
    from consumers.linkage_receipt import HELD_HERE
    from ledger.app.incidents import incidents_of

    world = ignoring_world
    x, z = individual_number(), individual_number()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.bridges[A].file_person(x)
    world.bridges[A].file_person(z)
    world.settle()
    checks = world.bridges[A].checks
    assert checks is not None and len(checks.keys) == 2  # a map key for each person A filed, from the hub
    asked = world.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    control = world.bridges[C].ask(Actor(C, "counter"), A, z, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    world.settle()

    assert world.bridges[C].query(control)["status"] == "answered"
    assert world.bridges[C].query(asked)["status"] == "in_progress"
    a = world.nodes[A]
    with a.engine.connect() as conn:
        routed = {r.subject: r for r in conn.execute(select(linkage_routed))}
    held = routed[a.app.subject(x)]
    assert a.app.provision_request(UUID(held.local_request_id)).status == "held"
    assert held.staff_answer == HELD_HERE  # held by A's own check: the hub said "auto"
    (incident,) = incidents_of(a.app, A)
    assert (incident.kind, incident.code) == ("hub_misbehaviour", "flag_ignored")
    assert [i.code for i in checks.incidents] == ["flag_ignored"]
    assert incident.message == checks.incidents[0].digest  # the evidence's digest, kept with its bytes
    holder = world.bridges[B].checks  # B, the holder, saw its own flag in the map under the hub's heads
    assert holder is not None and holder.checked > 0 and holder.incidents == [] and not holder.unfiled


def test_a_holder_node_finds_its_flag_dropped_from_the_map(dropping_world: HubNodes) -> None:
    """Perpetrator helped by a hub that drops the holder's flag from what providers are shown: B's node checks
    its own flag under each head the hub announces and records the hub's signed omission as a security incident
    (``flag_dropped``) with its evidence — the hub's lie is caught where the flag is held."""
    from ledger.app.incidents import incidents_of

    world = dropping_world
    x = individual_number()
    world.bridges[B].file_person(x)
    world.settle()
    set_flag(world.nodes[B], B, x, "NON_DISCLOSURE")
    world.settle()
    world.bridges[A].file_person(x)  # any later change makes the hub sign and announce a new head
    world.settle()
    checks = world.bridges[B].checks
    assert checks is not None and [i.code for i in checks.incidents] == ["flag_dropped"]
    (incident,) = incidents_of(world.nodes[B].app, B)
    assert (incident.kind, incident.code, incident.message) == (
        "hub_misbehaviour",
        "flag_dropped",
        checks.incidents[0].digest,
    )


def test_a_registration_the_hub_filed_is_not_kept_sealed_at_the_agency(mapped_world: HubNodes) -> None:
    """Insider at A who later also steals the hub's sealing key: once the hub has acknowledged filing X's
    registration, A's node keeps the row (never sent again) but not the number sealed to the hub — a copy of A's
    database taken after that opens no number with any key."""
    from ledger.runtime.tables import linkage_registrations

    world = mapped_world
    x = individual_number()
    world.bridges[A].file_person(x)
    a = world.nodes[A]
    with a.engine.connect() as conn:
        (before,) = conn.execute(select(linkage_registrations.c.sealed)).all()
    assert len(before.sealed) > 0  # kept until the hub has it
    world.settle()
    with a.engine.connect() as conn:
        (row,) = conn.execute(select(linkage_registrations)).all()
    assert row.subject == a.app.subject(x) and bytes(row.sealed) == b""
    assert world.bridges[A].checks is not None and len(world.bridges[A].checks.keys) == 1  # the hub did file it
