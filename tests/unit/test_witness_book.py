"""The witness's rules and the wire of agencies' tree heads (issue #20, ledger.witness.book,
ledger.linkage.tree_heads), without a database or a transport."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.app.checkpoints import statement as checkpoint_statement
from ledger.errors import Code, FlagLedgerError, InputError, IntegrityError
from ledger.linkage.digests import DIGEST_SIZE, room
from ledger.linkage.map_heads import MapHead, sign_head
from ledger.linkage.messages import decode
from ledger.linkage.sealing import ring_keys, seal
from ledger.linkage.tree_heads import (
    MAX_GOSSIP,
    GossipMessage,
    TreeHead,
    TreeHeadMessage,
    WitnessIncident,
    decode_tree_head,
    encode_tree_head,
    relayed,
)
from ledger.log.signing import KeyRecord, KeyRing, Signer
from ledger.merkle import EMPTY_ROOT
from ledger.witness.book import Finding, WitnessBook, check_finding
from tests.support.witness_world import agency_log, proof

START = datetime(2026, 1, 1, tzinfo=UTC)
A, B = "131016", "131024"
HUB = Signer.generate("hub")
SIGNERS = {A: Signer.generate(A), B: Signer.generate(B)}
RING = KeyRing.from_records(KeyRecord(n, s.key_id, s.public_raw.hex(), START) for n, s in SIGNERS.items())
KEYS = ring_keys(RING, START)
ENTRIES = [f"event {i}".encode() for i in range(10)]
REWRITTEN = [b"event 0, rewritten", *ENTRIES[1:]]


def head(size: int, entries: list[bytes] = ENTRIES, who: str = A) -> TreeHead:
    return agency_log(SIGNERS[who], entries, size)


def hub_head(seq: int, map_root: bytes = bytes(32), log_size: int = 0, after: MapHead | None = None) -> MapHead:
    return sign_head(HUB, seq=seq, log_size=log_size, log_root=EMPTY_ROOT, map_root=map_root, time="t", after=after)


def test_a_tree_head_is_the_checkpoint_an_agency_signs() -> None:
    """Threat: peer agency — the head published is the node's own checkpoint, byte for byte, so the statement a
    witness holds is the one ``audit verify`` and peers check."""
    h = head(4)
    assert h.statement() == checkpoint_statement(A, 4, h.root, h.time, h.key_id)
    assert decode_tree_head(encode_tree_head(h)) == h
    h.verify(KEYS)


@pytest.mark.parametrize(
    "bent",
    [
        lambda raw: raw[:-1],
        lambda raw: raw + b"\x00",
        lambda raw: b"\x00\x05hub!!" + raw[8:],
    ],
)
def test_bent_tree_head_bytes_are_refused(bent: object) -> None:
    """Threat: broker operator / peer agency — cut, padded or renamed bytes are malformed, never a head."""
    with pytest.raises(IntegrityError):
        decode_tree_head(bent(encode_tree_head(head(4))))  # type: ignore[operator]


def test_the_messages_decode_strictly() -> None:
    """Threat: a hostile party — a gossip with a cut head or a non-hex proof is an input error."""
    good = TreeHeadMessage(encode_tree_head(head(4)).hex(), 0, "")
    assert decode(TreeHeadMessage, good.encode()) == good
    with pytest.raises(InputError):
        decode(TreeHeadMessage, good.encode().replace(b'"consistency":""', b'"consistency":"zz"'))
    gossip = GossipMessage.of(b"", [head(4), head(2, who=B)])
    assert [h.origin for h in decode(GossipMessage, gossip.encode()).heads()] == [A, B]
    with pytest.raises((InputError, IntegrityError)):
        GossipMessage("", gossip.tree_heads[:-2]).check()
    with pytest.raises(InputError):
        WitnessIncident("flag_ignored", A, "", "").check()  # a witness raises forks and rollbacks only


def test_two_roots_for_one_size_are_a_fork_with_evidence_anyone_checks() -> None:
    """Threat: peer agency / insider rewriting its log — the same size with another root is ``checkpoint_fork``;
    the same head again (the other path, a replay) is nothing."""
    book = WitnessBook(HUB.public_key)
    assert book.tree_shown(head(4), KEYS) is None
    assert book.tree_shown(head(4), KEYS) is None
    found = book.tree_shown(head(4, REWRITTEN), KEYS)
    assert found is not None and (found.code, found.accused) == (Code.CHECKPOINT_FORK, A)
    assert check_finding(found, HUB.public_key, KEYS)
    again = Finding.of(found.incident())
    assert again == found and check_finding(again, HUB.public_key, KEYS)
    # evidence bent: its heads swapped for two that agree, or named against another agency
    assert not check_finding(Finding(found.code, A, found.first, found.first, ""), HUB.public_key, KEYS)
    assert not check_finding(Finding(found.code, B, found.first, found.second, ""), HUB.public_key, KEYS)


def test_a_log_that_does_not_extend_the_last_is_a_fork_and_a_smaller_one_a_rollback() -> None:
    """Threat: insider rewriting its own log's past while it grows, or cutting its tail."""
    book = WitnessBook(HUB.public_key)
    assert book.tree_shown(head(3), KEYS) is None
    assert book.tree_shown(head(6), KEYS, 3, proof(ENTRIES, 3, 6)) is None
    grown = book.tree_shown(head(8, REWRITTEN), KEYS, 6, proof(REWRITTEN, 6, 8))
    assert grown is not None and grown.code == Code.CHECKPOINT_FORK and check_finding(grown, HUB.public_key, KEYS)
    cut = book.tree_shown(head(5), KEYS)
    assert cut is not None and cut.code == Code.CHECKPOINT_ROLLBACK and check_finding(cut, HUB.public_key, KEYS)
    assert book.latest[A].size == 6


def test_no_one_frames_an_agency_with_a_head_it_did_not_sign() -> None:
    """Threat: peer agency — B signs a head in A's name: refused, nothing held, no finding."""
    book = WitnessBook(HUB.public_key)
    book.tree_shown(head(4), KEYS)
    b = head(4, REWRITTEN, who=B)
    with pytest.raises(FlagLedgerError):
        book.tree_shown(TreeHead(A, b.size, b.root, b.time, b.key_id, b.signature), KEYS)
    with pytest.raises(FlagLedgerError):
        book.tree_gossiped(TreeHead(A, b.size, b.root, b.time, SIGNERS[A].key_id, b.signature), KEYS)
    assert book.trees[(A, 4)] == head(4)


def test_gossip_finds_a_split_view_of_the_hub_and_of_an_agency() -> None:
    """Threat: hub insider and peer agency — each witness alone holds one consistent story; the heads another
    witness gossips show the second."""
    mine, theirs = WitnessBook(HUB.public_key), WitnessBook(HUB.public_key)
    assert mine.hub_announced(hub_head(1)) is None
    assert theirs.hub_announced(hub_head(1, map_root=b"\x01" * 32)) is None
    assert theirs.hub.latest is not None
    forked = mine.hub_gossiped(theirs.hub.latest)
    assert forked is not None and (forked.code, forked.accused) == (Code.HUB_FORK, "hub")
    assert check_finding(forked, HUB.public_key, KEYS)
    mine.tree_shown(head(4), KEYS)
    theirs.tree_shown(head(4, REWRITTEN), KEYS)
    split = mine.tree_gossiped(theirs.latest[A], KEYS)
    assert split is not None and split.code == Code.CHECKPOINT_FORK


def test_a_hub_rolling_back_its_heads_is_caught() -> None:
    """Threat: hub insider — an older head announced after a newer one: ``hub_rollback``."""
    book = WitnessBook(HUB.public_key)
    first = hub_head(1)
    assert book.hub_announced(hub_head(2, after=first)) is None
    rolled = book.hub_announced(first)
    assert rolled is not None and rolled.code == Code.HUB_ROLLBACK and check_finding(rolled, HUB.public_key, KEYS)


def test_a_relayed_head_and_a_full_gossip_fit_a_digest() -> None:
    """Threat: broker operator — on digest schedules (no traffic tells) a message that never fits a digest would
    wait forever: an agency's relayed head, sealed to the hub as a relay, fits the agency's digest; a gossip of
    ``MAX_GOSSIP`` heads as the hub forwards it (the inner message) fits the hub's digest to the peer."""
    hub_key = X25519PrivateKey.generate().public_key()
    big = TreeHead(A, 2**40, b"\x07" * 32, "2026-01-01T00:00:00.000000+09:00", SIGNERS[A].key_id, b"\x01" * 64)
    head_relay = relayed(SIGNERS[A], hub_key, B, TreeHeadMessage(encode_tree_head(big).hex(), 0, ""))
    outer = seal(SIGNERS[A], hub_key, "hub", "0" * 32, head_relay.kind, head_relay.encode())
    assert len(outer) + 4 + 2 <= room(DIGEST_SIZE, SIGNERS[A].key_id)
    gossip = relayed(SIGNERS[A], hub_key, B, GossipMessage.of(b"\x00" * 200, [big] * MAX_GOSSIP))
    assert len(bytes.fromhex(gossip.sealed)) + 4 + 2 <= room(DIGEST_SIZE, "hub:" + "0" * 16)
