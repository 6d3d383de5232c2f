"""Envelope v2, designed once: a version in the magic and the header, the commitment kind, the log head and
extension records under the batch signature — and what a reader that does not know a later field does.

Threats: **a peer agency** or **the broker operator** altering what an envelope says besides its payload
(stripping the log head to pass a batch off as v1, adding or removing an extension) — every such change
breaks the signature; and a node meeting a newer format refuses it visibly instead of misreading it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import IntegrityError
from ledger.log.envelope import GENESIS, MAGIC, MAGIC_V1, Envelope, Seal, check_extensions, seal_batch
from ledger.log.head import LogHead
from ledger.log.header import Header
from ledger.log.signing import KeyRecord, KeyRing, Signer
from ledger.merkle import EMPTY_ROOT, CompactRange, root_hash

AGENCY = "131024"


def _header(**changes: object) -> Header:
    h = Header(
        os.urandom(16).hex(),
        AGENCY,
        f"{AGENCY}:0123456789abcdef",
        "ed107a97-7fc0-47ca-a5c0-d2f345c67a42",
        1,
        GENESIS,
        "ledger.domain.flags:Protection.Opened",
        datetime.now(UTC).isoformat(),
        hashlib.sha256(b"{}").hexdigest(),
    )
    return h._replace(**changes)


def _ring(signer: Signer) -> KeyRing:
    ring = KeyRing()
    ring.add(KeyRecord(AGENCY, signer.key_id, signer.public_raw.hex(), datetime(2020, 1, 1, tzinfo=UTC)))
    return ring


def _verify(ring: KeyRing, env: Envelope) -> None:
    h = env.header
    ring.verify_root(h.origin, h.key_id, h.timestamp, env.batch_root(), env.seal)


def test_a_v2_header_names_its_version_and_commitment_and_takes_the_fast_path() -> None:
    raw = _header().to_bytes()
    d = json.loads(raw)
    assert d["v"] == 2 and d["commit"] == "sha256"
    from ledger.log.header import _canonical_header

    assert _canonical_header(raw.decode()) is not None
    assert Header.from_bytes(raw) == Header.from_json(raw) == _header()._replace(event_id=d["id"], time=d["time"])


@pytest.mark.parametrize(
    "change",
    [{"wrap": {"131016": "AAAA"}}, {"commit": "hmac-sha256"}, {"v": 3}],
    ids=["an unknown field (e.g. recipient key wrapping)", "an unknown commitment kind", "a later version"],
)
def test_a_header_from_a_newer_release_is_refused_as_such(change: dict[str, object]) -> None:
    d = json.loads(_header().to_bytes()) | change
    with pytest.raises(IntegrityError) as err:
        Header.from_bytes(json.dumps(d, sort_keys=True, separators=(",", ":")).encode())
    assert err.value.code == "newer_envelope" and "upgrade" in str(err.value).lower()


def test_the_format_in_the_magic_and_in_the_header_must_agree() -> None:
    signer = Signer.generate(AGENCY)
    v1_header = _header(v=1).to_bytes()
    assert "commit" not in json.loads(v1_header)
    (v2,) = seal_batch([v1_header], [b"{}"], signer.key_id, signer.sign, 0, EMPTY_ROOT)  # FLE2 around a v1 header
    with pytest.raises(IntegrityError):
        Envelope.from_bytes(v2.to_bytes()).header  # noqa: B018
    (v1,) = seal_batch([_header().to_bytes()], [b"{}"], signer.key_id, signer.sign, -1)  # FLE1 around a v2 one
    assert v1.to_bytes()[:4] == MAGIC_V1
    with pytest.raises(IntegrityError):
        Envelope.from_bytes(v1.to_bytes()).header  # noqa: B018


def test_the_signature_covers_the_log_head_and_extensions_and_v1_cannot_be_faked_from_v2() -> None:
    signer = Signer.generate(AGENCY)
    ring = _ring(signer)
    log_root = os.urandom(32)
    ext = struct.pack(">HH", 0x0001, 3) + b"abc"  # a non-critical record no release defines: skipped, but signed
    header = _header(key_id=signer.key_id).to_bytes()
    (env,) = seal_batch([header], [b"{}"], signer.key_id, signer.sign, 41, log_root, ext)
    raw = env.to_bytes()
    assert raw[:4] == MAGIC
    back = Envelope.from_bytes(raw)
    assert (back.seal.log_size, back.seal.log_root, back.seal.ext) == (41, log_root, ext)
    _verify(ring, back)
    s = back.seal
    for changed in (
        s._replace(log_size=40),
        s._replace(log_root=os.urandom(32)),
        s._replace(ext=b""),
        s._replace(log_size=-1, log_root=b"", ext=b""),
    ):
        with pytest.raises(IntegrityError):  # a bad signature (or, stripped to v1, a header that says v2)
            _verify(_ring(signer), Envelope(back.header_bytes, back.payload, changed))


def test_extension_records_unknown_and_critical_are_refused_and_must_be_in_order() -> None:
    check_extensions(struct.pack(">HH", 0x0002, 0) + struct.pack(">HH", 0x0005, 1) + b"x")
    with pytest.raises(IntegrityError) as err:
        check_extensions(struct.pack(">HH", 0x8001, 2) + b"kk")  # e.g. recipient wrapping, once defined
    assert err.value.code == "newer_envelope"
    for bad in (struct.pack(">HH", 5, 0) + struct.pack(">HH", 2, 0), struct.pack(">HH", 1, 9) + b"short", b"\x00"):
        with pytest.raises(IntegrityError) as err:
            check_extensions(bad)
        assert err.value.code == "malformed"
    signer = Signer.generate(AGENCY)
    (env,) = seal_batch(
        [_header().to_bytes()], [b"{}"], signer.key_id, signer.sign, 0, EMPTY_ROOT, struct.pack(">HH", 0x8003, 0)
    )
    with pytest.raises(IntegrityError) as err:
        Envelope.from_bytes(env.to_bytes())
    assert err.value.code == "newer_envelope"


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 700), st.integers(0, 40))
def test_a_frontier_saved_and_restored_goes_on_to_the_same_roots(first: int, more: int) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(first + more)]
    saved = CompactRange(leaves[:first])
    head = LogHead(saved.size, saved.root(), tuple(saved.frontier()))
    back = LogHead.from_row(head.size, head.root, head.frontier_bytes())
    assert back == head
    assert back.extend(leaves[first:]).root == root_hash(leaves)
    assert len(head.frontier) == bin(first).count("1")


def test_a_head_row_that_disagrees_with_itself_is_refused() -> None:
    tree = CompactRange([hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest(), hashlib.sha256(b"c").digest()])
    frontier = b"".join(tree.frontier())
    LogHead.from_row(3, tree.root(), frontier)
    for size, root, blob in (
        (4, tree.root(), frontier),
        (3, os.urandom(32), frontier),
        (3, tree.root(), frontier[:-1]),
        (-1, tree.root(), frontier),
        ("3", tree.root(), None),
    ):
        with pytest.raises(IntegrityError) as err:
            LogHead.from_row(size, root, blob)
        assert err.value.code == "head_corrupt"


def test_a_seal_of_v1_has_no_log_head() -> None:
    assert Seal(0, 1, b"", b"s" * 64).v1 and not Seal(0, 1, b"", b"s" * 64, 0, EMPTY_ROOT).v1
