"""ledger.log.batch_writer writes exactly the bytes ledger.log.envelope defines (Header, seal_batch, Envelope)."""

from __future__ import annotations

import hashlib
import os
import random
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from ledger.log.batch_writer import HeaderTemplate, check_log_head, envelope_bytes, merkle_paths
from ledger.log.envelope import GENESIS, Envelope, Seal, _paths, batch_message, seal_batch
from ledger.log.header import Header
from ledger.log.signing import Signer
from ledger.merkle import leaf_hash, root_hash

ODD = ["plain", 'with "quotes"', "back\\slash", "line\nbreak\ttab\x01", "日本語の機関", "emoji 🚩", "\u2028\u2029", ""]


def _reference(
    event_id: str,
    origin: str,
    key_id: str,
    stream: object,
    version: int,
    prev: str,
    topic: str,
    time: datetime,
    digest: str,
) -> bytes:
    return Header(
        event_id=event_id,
        origin=origin,
        key_id=key_id,
        stream=str(stream),
        version=version,
        prev=prev,
        topic=topic,
        time=time.isoformat(),
        digest=digest,
    ).to_bytes()


@pytest.mark.parametrize("origin", ODD)
@pytest.mark.parametrize("topic", ODD)
def test_header_template_matches_header_to_bytes(origin: str, topic: str) -> None:
    key_id = f"{origin}:{'ab' * 8}"
    t = HeaderTemplate(origin, key_id)
    times = [
        datetime(2026, 11, 25, 1, 2, 3, 456789, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),  # no microseconds: isoformat leaves them out
        datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9))),
        datetime(2026, 1, 1, 9),  # naive
    ]
    for version, time in zip((1, 2, 17, 2**40), times, strict=True):
        args = (
            os.urandom(16).hex(),
            uuid4(),
            version,
            hashlib.sha256(os.urandom(4)).hexdigest(),
            topic,
            time,
            hashlib.sha256(b"p").hexdigest(),
        )
        assert t.build(*args) == _reference(args[0], origin, key_id, *args[1:])
        assert Header.from_bytes(t.build(*args)).topic == topic


def test_header_template_falls_back_for_unusual_types() -> None:
    t = HeaderTemplate("131024", "131024:" + "cd" * 8)
    time = datetime(2026, 1, 1, tzinfo=UTC)

    class Stamp(datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return 'x"y'

    cases: list[tuple[object, int, datetime]] = [
        ('not-a-"uuid"', 1, time),
        (uuid4(), True, time),  # bool is an int to %d but "true" to JSON
        (uuid4(), 1, Stamp(2026, 1, 1)),
    ]
    for stream, version, at in cases:
        got = t.build("e" * 32, stream, version, GENESIS, "t:T", at, "0" * 64)  # type: ignore[arg-type]
        assert got == _reference(
            "e" * 32, "131024", "131024:" + "cd" * 8, stream, version, GENESIS, "t:T", at, "0" * 64
        )


def test_merkle_paths_match_envelope_paths_for_every_size_up_to_300() -> None:
    for n in range(1, 301):
        leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
        root, paths = merkle_paths(leaves)
        ref_root, ref_paths = _paths(leaves)
        assert root == ref_root == root_hash(leaves)
        assert paths == [b"".join(p) for p in ref_paths]


def test_envelopes_are_byte_identical_to_seal_batch_and_verify() -> None:
    signer = Signer.generate("131024")
    rng = random.Random(3)
    for n in (1, 2, 3, 7, 64, 100, 129):
        headers = [os.urandom(rng.randrange(1, 400)) for _ in range(n)]
        payloads = [os.urandom(rng.randrange(0, 900)) for _ in range(n)]
        log_size, log_root = rng.randrange(0, 1 << 40), os.urandom(32)
        # Ed25519 is deterministic
        reference = seal_batch(headers, payloads, signer.key_id, signer.sign, log_size, log_root)
        root, paths = merkle_paths([leaf_hash(h) for h in headers])
        signature = signer.sign(batch_message(signer.key_id, root, n, log_size, log_root))
        for i, env in enumerate(reference):
            raw = envelope_bytes(headers[i], payloads[i], i, n, paths[i], signature, log_size, log_root)
            assert raw == env.to_bytes() and raw[:4] == b"FLE2"
            back = Envelope.from_bytes(raw)
            assert back.seal == Seal(i, n, bytes(paths[i]), signature, log_size, log_root, b"")
            assert back.batch_root() == root
            signer.public_key.verify(back.seal.signature, back.seal.message(signer.key_id, back.batch_root()))


def test_a_short_log_root_is_refused_not_padded() -> None:
    with pytest.raises(ValueError):
        check_log_head(0, b"\x01" * 31)
    with pytest.raises(ValueError):
        check_log_head(-1, b"\x01" * 32)
    with pytest.raises(ValueError):
        seal_batch([b"h"], [b"p"], "k", lambda m: b"s" * 64, 3, b"\x01" * 31)


def test_header_template_uuid_is_the_canonical_text() -> None:
    u = UUID("0123456789abcdef0123456789abcdef")
    got = HeaderTemplate("o", "k").build("e", u, 1, GENESIS, "t", datetime(2026, 1, 1, tzinfo=UTC), "d" * 64)
    assert b'"stream":"01234567-89ab-cdef-0123-456789abcdef"' in got


def test_sealing_nothing_is_refused_not_an_endless_recursion() -> None:
    signer = Signer.generate("131024")
    with pytest.raises(ValueError, match="cannot seal 0 headers"):
        seal_batch([], [], signer.key_id, signer.sign)
    with pytest.raises(ValueError, match="cannot seal 2 headers with 1 payloads"):
        seal_batch([b"h1", b"h2"], [b"p"], signer.key_id, signer.sign)
    with pytest.raises(ValueError, match="empty batch"):
        merkle_paths([])
