"""Witnesses on the linkage (issue #20, ledger.witness): agencies publish their own tree heads to the hub and to
independent witnesses, the hub announces its map heads to everyone, witnesses gossip; forks and rollbacks are
caught and raised as signed incidents. The real hub loop, witness loops and agencies' ends on one memory
transport; the hub's and each witness's database on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from ledger.errors import Code, FlagLedgerError
from ledger.hub.inbox import parked
from ledger.hub.tables import hub_cosignatures
from ledger.linkage.hub_wire import encode_head
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.tree_heads import (
    Cosignature,
    RelayMessage,
    TreeHeadMessage,
    WitnessIncident,
    cosigned,
    encode_tree_head,
    relayed,
)
from ledger.witness.book import Finding, check_finding
from tests.support.hub_world import START, A, B
from tests.support.people import individual_number
from tests.support.witness_world import W1, W2, RollingHeads, SplitHeads, WitnessWorld, agency_log, proof, witness_world

ENTRIES = [f"event {i}".encode() for i in range(12)]
REWRITTEN = [*ENTRIES[:3], b"event 3, rewritten", *ENTRIES[4:]]


def incidents(world: WitnessWorld, name: str) -> list[Finding]:
    return [Finding.of(i.message) for i in world.received(name, WitnessIncident.kind)]  # type: ignore[arg-type]


def _cosigns(message: object, keys: SenderKeys, witness: str) -> bytes:
    assert isinstance(message, Cosignature)
    try:
        return message.verify(keys, witness)
    except FlagLedgerError:
        return b""


def checked(world: WitnessWorld, finding: Finding) -> bool:
    return check_finding(finding, world.cast.hub.signer.public_key, world.hub.directory.sender_keys(world.hub.now()))


def test_an_agency_showing_the_hub_and_a_witness_two_logs_is_caught(backend: str | None, tmp_path: Path) -> None:
    """Threat: peer agency / insider rewriting its own log — shows the hub one head and a witness another for the
    same size. The witness holds both (the hub forwards what it was shown, the agency's signature inside), raises
    ``checkpoint_fork`` to the agency and the other witness (which keeps it once the evidence checks), and the
    evidence checks with A's key alone. An honest
    head before it is cosigned by both witnesses."""
    with witness_world(backend, tmp_path) as world:
        a = world.agencies[A]
        a.publish_head(agency_log(a.keys.signer, ENTRIES, 3), witnesses=(W1, W2))
        world.settle()
        cosigned = world.received(A, Cosignature.kind)
        assert len(cosigned) == 2 and not world.stores[W1].findings() and not world.stores[W2].findings()
        keys = a.directory.sender_keys(world.hub.now())
        published = encode_tree_head(agency_log(a.keys.signer, ENTRIES, 3))
        assert sorted(w for w in (W1, W2) for c in cosigned if _cosigns(c.message, keys, w) == published) == [W1, W2]

        honest = TreeHeadMessage(encode_tree_head(agency_log(a.keys.signer, ENTRIES, 5)).hex(), 3,
                                 b"".join(proof(ENTRIES, 3, 5)).hex())  # fmt: skip
        forged = TreeHeadMessage(encode_tree_head(agency_log(a.keys.signer, REWRITTEN, 5)).hex(), 3,
                                 b"".join(proof(REWRITTEN, 3, 5)).hex())  # fmt: skip
        a.send(honest)  # to the hub (forwarded to the witnesses)
        a.relay(W1, forged)  # to W1 alone: another log of the same size
        world.settle()

        (found,) = world.stores[W1].findings()
        assert (found.code, found.accused) == (Code.CHECKPOINT_FORK, A) and checked(world, found)
        (told,) = incidents(world, A)
        assert told.digest() == found.digest() and checked(world, told)
        assert world.stores[W2].findings() == [found]  # told by W1, kept once the evidence checked
        assert not incidents(world, B)


def test_a_hub_forking_its_map_heads_between_two_witnesses_is_caught_by_gossip(
    backend: str | None, tmp_path: Path
) -> None:
    """Threat: hub insider — signs two heads for one sequence, one shown to W2 and the true one to everyone
    else. Each witness alone sees a consistent story; W1's gossip shows W2 the other head: ``hub_fork``, raised
    to the hub (parked there under the code) and to the agencies W2 holds heads of, with the hub's two
    signatures as evidence. With an honest hub the same gossip is answered with a cosignature."""
    with witness_world(backend, tmp_path, heads=SplitHeads) as world:
        world.hub.heads.victim = W2  # type: ignore[union-attr]
        a = world.agencies[A]
        a.publish_head(agency_log(a.keys.signer, ENTRIES, 2), witnesses=(W1, W2))
        world.settle()
        assert not world.stores[W1].findings() and not world.stores[W2].findings()

        world.witnesses[W1].gossip()
        world.settle()
        (found,) = world.stores[W2].findings()
        assert (found.code, found.accused) == (Code.HUB_FORK, "hub") and checked(world, found)
        assert Code.HUB_FORK in [p.code for p in parked(world.hub.store.engine)]
        (told,) = incidents(world, A)
        assert told.code == Code.HUB_FORK and checked(world, told)
        assert not world.witnesses[W1].cosigned  # nothing cosigned of a forked head


def test_an_honest_hubs_heads_are_cosigned_through_gossip(backend: str | None, tmp_path: Path) -> None:
    """Threat: hub insider (the control) — with one story told to all, gossip finds nothing and the peer
    cosigns the hub head; the witnesses' state survives a restart, and a replayed gossip is applied once."""
    with witness_world(backend, tmp_path) as world:
        world.settle()
        world.witnesses[W1].gossip()
        world.settle()
        assert not world.stores[W2].findings()
        ((peer, subject),) = world.witnesses[W1].cosigned
        held = world.witnesses[W1].book.hub.latest
        assert peer == W2 and held is not None and subject == held.body() + held.signature
        w2 = world.reopen(W2)
        assert w2.book.hub.latest == world.witnesses[W1].book.hub.latest
        ((by, kept, key_id, signature),) = world.stores[W1].cosignatures()  # kept as evidence, checkable again
        assert by == W2 and kept == subject
        world.hub.directory.sender_keys(START)(W2, key_id).verify(signature, cosigned(subject))


def test_a_rollback_is_caught_and_survives_a_restart(backend: str | None, tmp_path: Path) -> None:
    """Threat: peer agency / insider cutting the tail of its own log — after showing size 6, it shows size 4
    (signed, a real prefix): ``checkpoint_rollback``. The witness restarts in between, so it remembers from its
    database; the finding is kept once however often the message comes."""
    with witness_world(backend, tmp_path) as world:
        a = world.agencies[A]
        a.publish_head(agency_log(a.keys.signer, ENTRIES, 6), witnesses=(W1,))
        world.settle()
        world.reopen(W1)
        world.reopen(W2)
        a.publish_head(agency_log(a.keys.signer, ENTRIES, 4), witnesses=(W1,))
        world.settle()
        codes = sorted((f.code, f.accused) for f in world.stores[W1].findings())
        assert codes == [(Code.CHECKPOINT_ROLLBACK, A)]
        # W2 saw the cut log through the hub's forwarding alone, after its own restart: caught as well
        assert [(f.code, f.accused) for f in world.stores[W2].findings()] == [(Code.CHECKPOINT_ROLLBACK, A)]
        assert all(checked(world, f) for f in incidents(world, A))


def test_no_one_frames_an_agency_and_no_relay_passes_off_anothers_message(backend: str | None, tmp_path: Path) -> None:
    """Threat: peer agency — B sends a head claiming to be A's (its own key), and relays a message sealed to W1
    under a relay naming W2. The hub refuses B's head (``wrong_agency``) and the bent relay (``wrong_route``);
    a head B signed in A's name does not verify at the witness: no finding against A."""
    with witness_world(backend, tmp_path) as world:
        a, b = world.agencies[A], world.agencies[B]
        a.publish_head(agency_log(a.keys.signer, ENTRIES, 3), witnesses=(W1,))
        world.settle()
        framed = agency_log(b.keys.signer, REWRITTEN, 3)
        framed = type(framed)(A, framed.size, framed.root, framed.time, framed.key_id, framed.signature)
        b.send(TreeHeadMessage(encode_tree_head(framed).hex(), 0, ""))
        b.relay(W1, TreeHeadMessage(encode_tree_head(framed).hex(), 0, ""))
        own = TreeHeadMessage(encode_tree_head(agency_log(b.keys.signer, ENTRIES, 1)).hex(), 0, "")
        to_w1 = relayed(b.keys.signer, b.directory.sealing_key(W1), W1, own)
        b.send(RelayMessage(W2, to_w1.sealed))  # sealed to W1, relayed to W2
        world.settle()
        codes = [p.code for p in parked(world.hub.store.engine)]
        assert Code.WRONG_AGENCY in codes and Code.WRONG_ROUTE in codes
        assert not world.stores[W1].findings() and not world.stores[W2].findings()
        assert not incidents(world, A)


def test_an_agency_on_a_digest_schedule_publishes_its_heads_inside_its_digests(
    backend: str | None, tmp_path: Path
) -> None:
    """Threat: broker operator — an agency on a digest schedule shows the broker one digest per tick whatever it
    does; its head and the relayed copy travel inside one, with a consistency proof of a large log, and reach
    both witnesses (cosigned by the one it was relayed to)."""
    entries = [f"event {i}".encode() for i in range(1500)]
    with witness_world(backend, tmp_path) as world:
        a = world.agencies[A]
        a.schedule()
        a.publish_head(agency_log(a.keys.signer, entries, 700), witnesses=(W1,))
        a.publish_head(agency_log(a.keys.signer, entries, 1500), 700, proof(entries, 700, 1500), witnesses=(W1,))
        assert a.tick() == 4 and not a.outgoing
        world.settle()
        for name in (W1, W2):
            assert world.witnesses[name].book.latest[A].size == 1500 and not world.stores[name].findings()
        assert len(world.received(A, Cosignature.kind)) == 2


def test_a_hub_rolling_a_witness_back_to_an_older_log_is_caught(backend: str | None, tmp_path: Path) -> None:
    """Threat: hub insider — after announcing a log with two flag changes, the hub shows W2 a new head over the
    empty log (signed, under a fresh sequence number: a rollback to before the flags). W2 raises
    ``hub_rollback`` to the hub (parked under its code), to W1 and to the agencies whose heads it holds."""
    with witness_world(backend, tmp_path, heads=RollingHeads) as world:
        a, b = world.agencies[A], world.agencies[B]
        a.publish_head(agency_log(a.keys.signer, ENTRIES, 2), witnesses=(W2,))
        a.flag(individual_number(), "NON_DISCLOSURE", "set")
        world.settle()
        assert not world.stores[W2].findings()
        world.hub.heads.victim = W2  # type: ignore[union-attr]
        b.flag(individual_number(), "NO_AUTO_RESPONSE", "set")
        world.settle()
        (found,) = world.stores[W2].findings()
        assert (found.code, found.accused) == (Code.HUB_ROLLBACK, "hub") and checked(world, found)
        assert Code.HUB_ROLLBACK in [p.code for p in parked(world.hub.store.engine)]
        assert [f.code for f in incidents(world, A)] == [Code.HUB_ROLLBACK] and not incidents(world, B)
        assert world.stores[W1].findings() == [found]  # told by W2


def test_a_witness_keeps_no_incident_its_evidence_does_not_show(backend: str | None, tmp_path: Path) -> None:
    """Threat: a witness (or whoever runs it) framing an agency — W2 tells W1 of a ``checkpoint_fork`` whose two
    heads agree: W1 refuses it and keeps nothing; A gets nothing from W1."""
    with witness_world(backend, tmp_path) as world:
        a = world.agencies[A]
        a.publish_head(agency_log(a.keys.signer, ENTRIES, 3), witnesses=(W1, W2))
        world.settle()
        same = encode_tree_head(agency_log(a.keys.signer, ENTRIES, 3))
        bogus = Finding(Code.CHECKPOINT_FORK, A, same, same, "two heads of 131016 for log size 3")
        w2 = world.witnesses[W2]
        w2.store.owe([w2._relay(W1, bogus.incident())])
        world.settle()
        assert not world.stores[W1].findings() and not incidents(world, A)


def test_heads_are_cosigned_before_use_and_kept_as_evidence(backend: str | None, tmp_path: Path) -> None:
    """Threat: the hub insider — a provider needing one witness's cosignature answers automatically only under a
    head a witness checked: W1 and W2 cosign each head that extends their chain and send it to the hub, which
    keeps it (``hub_cosignatures``: each checks with the witness's key against the head the hub signed) and
    attaches it to the decision; A answers Y's query ``auto``. A query routed under a head signed in the same
    batch (no witness has seen it yet) is answered by staff — the availability cost. The holder B sees its
    flag under a head whose cosignatures come with the next announcement, so no ``change_unseen`` is due."""
    with witness_world(backend, tmp_path, quorum=1) as world:
        a, b = world.agencies[A], world.agencies[B]
        x, y, z = individual_number(), individual_number(), individual_number()
        b.flag(x, "NO_AUTO_RESPONSE", "set")
        a.file_person(x)
        a.file_person(y)
        a.file_person(z)
        world.settle()
        heads = world.hub.heads
        assert heads is not None and heads.last is not None
        with world.hub.store.engine.connect() as conn:
            rows = conn.execute(select(hub_cosignatures)).all()
        assert {r.witness for r in rows if r.seq == heads.last.seq} == {W1, W2}
        keys = world.hub.directory.sender_keys(START)
        for r in rows:  # evidence an auditor checks with the witness's key alone
            head = next(h for h in world.witnesses[W1].book.hub.by_seq.values() if h.seq == r.seq)
            keys(r.witness, r.key_id).verify(r.signature, cosigned(encode_head(head)))

        b.query(y, A, "児童手当", 74, "地方税関係情報")
        world.settle()
        (first,) = [i.message for i in world.received(A, "routed_query")]
        assert first.answer == "auto"  # type: ignore[attr-defined]
        checks_b = b.checks
        assert checks_b is not None and b.code(x) in checks_b.unseen  # shown, but not yet known cosigned

        b.flag(individual_number(), "NO_AUTO_RESPONSE", "set")  # the next head is signed in the batch that routes
        b.query(z, A, "児童手当", 74, "地方税関係情報")  # z: not protected, but under a head no witness saw yet
        world.settle()
        answers = [i.message.answer for i in world.received(A, "routed_query")]  # type: ignore[attr-defined]
        assert answers == ["auto", "staff"]
        assert a.checks is not None and a.checks.incidents == [] and a.checks.refusals == [Code.HEAD_UNCOSIGNED]
        # the new head's announcement carried the witnesses' cosignatures of the one before: x's flag was shown
        # under a cosigned head, so its deadline is met
        assert b.code(x) not in checks_b.unseen and checks_b.incidents == []
