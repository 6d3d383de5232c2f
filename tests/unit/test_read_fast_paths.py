"""The reading fast paths decide exactly as the general ones, on valid and on tampered input.

* ``Header.from_bytes`` (canonical header matched by one regular expression) against ``Header.from_json`` (the
  JSON path every header took before): same Header or the same refusal, for any header text.
* ``Envelope.from_bytes`` against a step-by-step reference parser of both layouts (``_old_envelope``).
* ``Envelope.batch_root`` with a memo (reusing the last computation) against no memo and against
  ``ledger.merkle.root_from_inclusion``, in any reading order, with tampered paths, indexes and sizes.
* ``stream_text`` against ``str(UUID(...))``, the row id the library's reader made.
* ``KeyRing.verify_root`` (last verified batch remembered) still refuses what ``verify`` refuses.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.errors import FlagLedgerError, IntegrityError, SignatureError, UntrustedKeyError
from ledger.log.envelope import GENESIS, MAGIC, Envelope, RootMemo, Seal, batch_message, seal_batch
from ledger.log.header import Header
from ledger.log.rows import stream_text
from ledger.log.signing import KeyRecord, KeyRing, Signer
from ledger.merkle import leaf_hash, root_from_inclusion

FUZZ = settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _outcome(f: Any, *args: Any) -> Any:
    try:
        return ("ok", f(*args))
    except FlagLedgerError as exc:
        return ("refused", type(exc), exc.code)


def _header(**changes: Any) -> dict[str, Any]:
    h = {
        "v": 2,
        "commit": "sha256",
        "id": uuid4().hex,
        "origin": "131024",
        "key": "131024:0123456789abcdef",
        "stream": str(uuid4()),
        "version": 3,
        "prev": hashlib.sha256(b"p").hexdigest(),
        "topic": "ledger.domain.provision:ProvisionRequest.Received",
        "time": "2026-11-25T17:33:21.124944+00:00",
        "enc": "json",
        "digest": hashlib.sha256(b"d").hexdigest(),
    }
    h.update(changes)
    return h


def _canonical(d: dict[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- header -------------------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['a"b', "a\\b", "\x00", "\x1f", "\u2028", "é", "児童手当", "", " ", "\ud7ff", "\ufeff"]
)
VALUES = TEXT | st.integers(-3, 3) | st.sampled_from([1.0, True, False, None, 10**18, 10**19, [], {}, "1", 2**63])


@FUZZ
@given(
    field=st.sampled_from(sorted(_header())),
    value=VALUES,
    spelling=st.sampled_from(["canonical", "spaced", "unsorted", "ascii"]),
)
@example(field="version", value=True, spelling="canonical")
@example(field="v", value=1.0, spelling="canonical")
@example(field="v", value=True, spelling="canonical")
@example(field="v", value=1, spelling="canonical")
@example(field="v", value=3, spelling="canonical")
@example(field="commit", value="hmac-sha256", spelling="canonical")
def test_header_fast_path_decides_as_the_json_path(field: str, value: Any, spelling: str) -> None:
    d = _header(**{field: value})
    if spelling == "canonical":
        raw = _canonical(d)
    elif spelling == "spaced":
        raw = json.dumps(d, sort_keys=True).encode()
    elif spelling == "unsorted":
        raw = json.dumps(dict(reversed(d.items())), separators=(",", ":"), ensure_ascii=False).encode()
    else:
        raw = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    assert _outcome(Header.from_bytes, raw) == _outcome(Header.from_json, raw)


@FUZZ
@given(data=st.data())
def test_header_fast_path_decides_as_the_json_path_on_mutated_bytes(data: st.DataObject) -> None:
    raw = bytearray(_canonical(_header(prev=data.draw(st.sampled_from([GENESIS, "a" * 64])))))
    for _ in range(data.draw(st.integers(1, 3))):
        how = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        i = data.draw(st.integers(0, len(raw) - 1))
        if how == "flip":
            raw[i] = data.draw(st.sampled_from([*b'"\\{}:,01 \x00\x1f\x7f\xc3\xa9a9-', raw[i] ^ 0x80]))
        elif how == "insert":
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=3))
        else:
            del raw[i]
    assert _outcome(Header.from_bytes, bytes(raw)) == _outcome(Header.from_json, bytes(raw))


def test_header_fast_path_covers_what_seal_writes() -> None:
    """The fast path is taken for real headers (else it would be dead weight): Header.to_bytes round-trips."""
    h = Header(
        uuid4().hex,
        "131024",
        "131024:0123456789abcdef",
        str(uuid4()),
        7,
        GENESIS,
        "ledger.domain.flags:Protection.FlagsSet",
        datetime.now(UTC).isoformat(),
        "f" * 64,
    )
    from ledger.log.header import _canonical_header

    assert _canonical_header(h.to_bytes().decode()) is not None
    assert Header.from_bytes(h.to_bytes()) == h == Header.from_json(h.to_bytes())


# -- envelope -----------------------------------------------------------------------------------------------


def _old_envelope(raw: bytes) -> tuple[bytes, bytes, int, int, bytes, bytes, int, bytes, bytes]:
    """A step-by-step reference parser of both layouts (v1 ``FLE1``; v2 ``FLE2`` with log head and extensions)."""
    u32, seal, log, u16 = struct.Struct(">I"), struct.Struct(">IIB"), struct.Struct(">Q32s"), struct.Struct(">H")
    try:
        magic = raw[:4]
        if magic not in (b"FLE1", b"FLE2"):
            raise ValueError("bad magic")
        pos = 4
        (hlen,) = u32.unpack_from(raw, pos)
        pos += 4
        header = raw[pos : pos + hlen]
        pos += hlen
        (plen,) = u32.unpack_from(raw, pos)
        pos += 4
        payload = raw[pos : pos + plen]
        pos += plen
        index, size, n = seal.unpack_from(raw, pos)
        pos += seal.size
        path = tuple(raw[pos + 32 * i : pos + 32 * (i + 1)] for i in range(n))
        pos += 32 * n
        log_size, log_root, ext = -1, b"", b""
        if magic == b"FLE2":
            log_size, log_root = log.unpack_from(raw, pos)
            pos += log.size
            (elen,) = u16.unpack_from(raw, pos)
            pos += 2
            ext = raw[pos : pos + elen]
            pos += elen
        signature = raw[pos : pos + 64]
        pos += 64
        if len(header) != hlen or len(payload) != plen or len(signature) != 64 or pos != len(raw):
            raise ValueError("truncated or trailing bytes")
        if size < 1 or index >= size:
            raise ValueError("seal index outside its batch")
        if log_size >= 1 << 63:
            raise ValueError("log size out of range")
    except (ValueError, struct.error, TypeError) as exc:
        raise IntegrityError(f"malformed envelope: {exc}", code="malformed") from exc
    if ext:
        from ledger.log.envelope import check_extensions

        check_extensions(bytes(ext))
    return (
        bytes(header),
        bytes(payload),
        index,
        size,
        b"".join(path),
        bytes(signature),
        log_size,
        bytes(log_root),
        bytes(ext),
    )


def _new_envelope(raw: bytes) -> tuple[bytes, bytes, int, int, bytes, bytes, int, bytes, bytes]:
    e = Envelope.from_bytes(raw)
    s = e.seal
    return e.header_bytes, e.payload, s.leaf_index, s.size, s.path, s.signature, s.log_size, s.log_root, s.ext


def _valid_envelopes() -> list[bytes]:
    signer = Signer.generate("131024")
    headers = [_canonical(_header(version=i + 1)) for i in range(5)]
    v2 = seal_batch(headers, [b"{}"] * 5, signer.key_id, signer.sign, 1234, os.urandom(32))
    v1_headers = [_canonical({k: v for k, v in _header(v=1).items() if k != "commit"}) for _ in range(2)]
    v1 = seal_batch(v1_headers, [b"{}"] * 2, signer.key_id, signer.sign, -1)
    return [e.to_bytes() for e in v2 + v1]


ENVELOPES = _valid_envelopes()


@FUZZ
@given(raw=st.binary(max_size=300))
def test_envelope_parser_decides_as_the_old_one_on_arbitrary_bytes(raw: bytes) -> None:
    for candidate in (raw, MAGIC + raw):
        assert _outcome(_new_envelope, candidate) == _outcome(_old_envelope, candidate)


@FUZZ
@given(data=st.data())
def test_envelope_parser_decides_as_the_old_one_on_mutated_envelopes(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from(ENVELOPES)))
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "length"]))
    if how == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "insert":
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=40))
    else:  # a length field, the seal's index/size/path count set to something else
        tail = 64 + (42 if raw[:4] == b"FLE2" else 0)  # signature, and v2's log head and extensions length
        at = data.draw(st.sampled_from([4, 4 + 4 + 200, len(raw) - tail - 9 - 32 * 3, len(raw) - 64 - 2]))
        width = data.draw(st.sampled_from([1, 4]))
        raw[at : at + width] = data.draw(st.binary(min_size=width, max_size=width))
    assert _outcome(_new_envelope, bytes(raw)) == _outcome(_old_envelope, bytes(raw))
    assert _outcome(_new_envelope, bytearray(raw)) == _outcome(_old_envelope, bytes(raw))


def test_envelopes_round_trip() -> None:
    for raw in ENVELOPES:
        assert Envelope.from_bytes(raw).to_bytes() == raw
        assert _new_envelope(raw) == _old_envelope(raw)


# -- batch root ------------------------------------------------------------------------------------------


def _root(env: Envelope, memo: RootMemo | None = None) -> Any:
    try:
        return env.batch_root(memo)
    except SignatureError as exc:
        return ("refused", exc.code, str(exc))


def _batch(size: int, rng: random.Random) -> tuple[list[Envelope], bytes]:
    headers = [rng.randbytes(40) for _ in range(size)]
    envs = seal_batch(headers, [b"{}"] * size, "131024:0123456789abcdef", lambda m: hashlib.sha512(m).digest())
    root = envs[0].batch_root()
    assert all(
        root_from_inclusion(leaf_hash(h), i, size, _split(e.seal.path)) == root
        for i, (h, e) in enumerate(zip(headers, envs, strict=True))
    )
    return envs, root


def _split(path: bytes) -> list[bytes]:
    return [path[i : i + 32] for i in range(0, len(path), 32)]


def _tampered(env: Envelope, rng: random.Random) -> Envelope:
    s = env.seal
    how = rng.choice(["path_byte", "path_short", "path_long", "index", "size", "header", "swap_path"])
    if how == "path_byte" and s.path:
        i = rng.randrange(len(s.path))
        path = s.path[:i] + bytes([s.path[i] ^ 1]) + s.path[i + 1 :]
        return Envelope(env.header_bytes, env.payload, Seal(s.leaf_index, s.size, path, s.signature))
    if how == "path_short" and s.path:
        return Envelope(env.header_bytes, env.payload, Seal(s.leaf_index, s.size, s.path[:-32], s.signature))
    if how == "path_long":
        return Envelope(env.header_bytes, env.payload, Seal(s.leaf_index, s.size, s.path + os.urandom(32), s.signature))
    if how == "index":
        return Envelope(env.header_bytes, env.payload, Seal(rng.randrange(s.size + 2), s.size, s.path, s.signature))
    if how == "size":
        return Envelope(
            env.header_bytes, env.payload, Seal(s.leaf_index, rng.randrange(1, s.size + 3), s.path, s.signature)
        )
    if how == "swap_path":  # the path of the event before or after it in the batch
        return Envelope(
            env.header_bytes, env.payload, Seal(s.leaf_index, s.size, s.path[32:] + s.path[:32], s.signature)
        )
    return Envelope(env.header_bytes + b" ", env.payload, s)


@pytest.mark.parametrize("seed", range(60))
def test_batch_root_with_a_memo_is_the_root_without(seed: int) -> None:
    rng = random.Random(seed)
    batches = [_batch(rng.choice([1, 2, 3, 5, 8, 13, 31, 64, 100]), rng) for _ in range(3)]
    reads: list[Envelope] = []
    for envs, _ in batches:
        order = list(envs)
        how = rng.choice(["in order", "shuffled", "reversed", "subset", "repeated"])
        if how == "shuffled":
            rng.shuffle(order)
        elif how == "reversed":
            order.reverse()
        elif how == "subset":
            order = [e for e in order if rng.random() < 0.5]
        elif how == "repeated":
            order = [e for e in order for _ in range(2)]
        reads += [_tampered(e, rng) if rng.random() < 0.15 else e for e in order]
    if rng.random() < 0.5:  # batches interleaved, as several readers' events are
        rng.shuffle(reads)
    memo = RootMemo()
    for env in reads:
        expected = _root(env)
        assert _root(env, memo) == expected
        if not isinstance(expected, tuple):
            s = env.seal
            assert expected == root_from_inclusion(leaf_hash(env.header_bytes), s.leaf_index, s.size, _split(s.path))


def test_a_tampered_path_never_borrows_the_memos_root() -> None:
    rng = random.Random(7)
    envs, root = _batch(64, rng)
    memo = RootMemo()
    for i, env in enumerate(envs):
        assert env.batch_root(memo) == root
        if i + 1 < len(envs):  # the next event with one byte of its upper path changed: not the batch's root
            nxt = envs[i + 1]
            s = nxt.seal
            if len(s.path) > 32:
                path = s.path[:-1] + bytes([s.path[-1] ^ 1])
                forged = Envelope(nxt.header_bytes, nxt.payload, Seal(s.leaf_index, s.size, path, s.signature))
                assert forged.batch_root(memo) != root
                assert env.batch_root(memo) == root  # (the memo back on the honest computation)


# -- stream ids ------------------------------------------------------------------------------------------


@FUZZ
@given(
    value=st.one_of(
        st.uuids().map(lambda u: u.hex),
        st.uuids().map(str),
        st.uuids().map(lambda u: u.hex.upper()),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: "{" + str(u) + "}"),
        st.uuids().map(lambda u: "urn:uuid:" + str(u)),
        st.uuids().map(lambda u: u.hex[:-1] + "g"),
        st.text(max_size=40),
        st.binary(max_size=20),
        st.integers(),
    )
)
def test_stream_text_is_str_of_the_uuid_the_library_reads(value: Any) -> None:
    try:
        expected: str | None = str(UUID(value))
    except (ValueError, TypeError, AttributeError):
        expected = None
    assert stream_text(value) == expected


# -- keys ------------------------------------------------------------------------------------------------


def test_verify_root_refuses_what_verify_refuses_even_right_after_the_same_batch() -> None:
    """The remembered batch is only a shortcut: a seal differing in anything signed (size, log head,
    extensions, signature) or a key not valid then is refused, right after the same batch verified."""
    signer = Signer.generate("131024")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ring = KeyRing()
    ring.add(KeyRecord("131024", signer.key_id, signer.public_raw.hex(), start))
    root, size, log_size, log_root = os.urandom(32), 10, 500, os.urandom(32)
    sig = signer.sign(batch_message(signer.key_id, root, size, log_size, log_root))
    seal = Seal(0, size, b"", sig, log_size, log_root)
    at = start + timedelta(days=1)
    ring.verify_root("131024", signer.key_id, at, root, seal)
    ring.verify_root("131024", signer.key_id, at, root, seal)  # the remembered batch
    cases: list[tuple[tuple[Any, ...], type[Exception]]] = [
        (("131024", signer.key_id, start - timedelta(seconds=1), root, seal), UntrustedKeyError),
        (("131016", signer.key_id, at, root, seal), UntrustedKeyError),
        (("131024", signer.key_id, at, os.urandom(32), seal), SignatureError),
        (("131024", signer.key_id, at, root, seal._replace(size=size + 1)), SignatureError),
        (("131024", signer.key_id, at, root, seal._replace(signature=bytes(64))), SignatureError),
        (("131024", signer.key_id, at, root, seal._replace(log_size=log_size - 1)), SignatureError),
        (("131024", signer.key_id, at, root, seal._replace(log_root=os.urandom(32))), SignatureError),
        (("131024", signer.key_id, at, root, seal._replace(ext=b"\x00\x01\x00\x00")), SignatureError),
        (("131024", signer.key_id, at, root, seal._replace(log_size=-1, log_root=b"")), SignatureError),
    ]
    for args, error in cases:
        with pytest.raises(error):
            ring.verify_root(*args)
        agency, key_id, when, r, s = args
        with pytest.raises(error):
            ring.verify(agency, key_id, when, s.message(key_id, r), s.signature)
        ring.verify_root("131024", signer.key_id, at, root, seal)  # remembered again before the next case
    ring.revoke(signer.key_id, at, "lost")
    with pytest.raises(UntrustedKeyError):
        ring.verify_root("131024", signer.key_id, at, root, seal)
    ring.verify_root("131024", signer.key_id, at - timedelta(seconds=1), root, seal)
