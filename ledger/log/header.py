"""The signed header of an envelope (:mod:`ledger.log.envelope`): its fields and their canonical JSON.

The header is what an event's leaf hash covers and what the next event of its stream chains to (``prev``);
its bytes are signed, so :meth:`Header.to_bytes` has exactly one spelling per content. Reading accepts any
JSON spelling but refuses a field or commitment kind this release does not know as ``newer_envelope``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, NamedTuple

from ledger.errors import Code, IntegrityError

__all__ = ["COMMITS", "COMMIT_SHA256", "Header", "newer_envelope"]

_decode_json = json.JSONDecoder().decode
# canonical header JSON; one encoder instance (json.dumps with options builds a new one per call)
_encode_header = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
COMMIT_SHA256 = "sha256"
COMMITS = frozenset({COMMIT_SHA256})  # commitment kinds this release checks
_HEADER_KEYS_V1 = frozenset({"v", "id", "origin", "key", "stream", "version", "prev", "topic", "time", "enc", "digest"})
_HEADER_KEYS = _HEADER_KEYS_V1 | {"commit"}
# The canonical v2 header exactly as ``Header.to_bytes`` writes it (sorted keys, no spaces), with every string
# free of what JSON would escape (quote, backslash, control characters): for such text a JSON decoder returns
# each string exactly as written, so matching it and slicing out the values gives the very Header the JSON
# path gives, at about half the cost (figures "audit verify", "ingest"). Anything else — another key order,
# whitespace, escapes, "v": 2.0, a version with 19+ digits, another commitment kind, a v1 header — takes the
# JSON path, which decides as before.
_STR = r'[^"\\\x00-\x1f]*'
_HASH = r'[^"\\\x00-\x1f]{64}'
_canonical_header = re.compile(
    rf'\{{"commit":"sha256","digest":"({_HASH})","enc":"({_STR})","id":"({_STR})","key":"({_STR})",'
    rf'"origin":"({_STR})","prev":"({_HASH})","stream":"({_STR})","time":"({_STR})","topic":"({_STR})","v":2,'
    r'"version":([1-9][0-9]{0,17})\}'
).fullmatch


def newer_envelope(what: str) -> IntegrityError:
    return IntegrityError(
        f"{what}: written by a newer flagledger. Upgrade this node, then replay the message "
        "(`flagledger consumers replay`)",
        code=Code.NEWER_ENVELOPE,
    )


class Header(NamedTuple):
    """The signed header's fields (immutable; a NamedTuple builds several µs faster than a frozen dataclass)."""

    event_id: str
    origin: str
    key_id: str
    stream: str
    version: int
    prev: str
    topic: str
    time: str
    digest: str
    enc: str = "json"
    commit: str = COMMIT_SHA256  # what ``digest`` commits to
    v: int = 2  # the envelope format the header belongs to (1: read for audits only)

    def to_bytes(self) -> bytes:
        fields: dict[str, Any] = {
            "v": self.v,
            "id": self.event_id,
            "origin": self.origin,
            "key": self.key_id,
            "stream": self.stream,
            "version": self.version,
            "prev": self.prev,
            "topic": self.topic,
            "time": self.time,
            "enc": self.enc,
            "digest": self.digest,
        }
        if self.v != 1:
            fields["commit"] = self.commit
        return _encode_header(fields).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Header:
        try:
            m = _canonical_header(raw.decode())
        except UnicodeDecodeError:
            m = None
        if m is not None:
            digest, enc, event_id, key_id, origin, prev, stream, time, topic, version = m.groups()
            return tuple.__new__(
                cls, (event_id, origin, key_id, stream, int(version), prev, topic, time, digest, enc, COMMIT_SHA256, 2)
            )
        return cls.from_json(raw)

    @classmethod
    def from_json(cls, raw: bytes) -> Header:
        """Any JSON spelling of a header (the general path; ``from_bytes`` tries the canonical one first)."""
        d: Any
        try:
            d = _decode_json(raw.decode())
        except ValueError:  # not plain UTF-8 JSON: let json.loads decide exactly as it always did
            try:
                d = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise IntegrityError(f"envelope header is not JSON: {exc}", code=Code.MALFORMED) from exc
        if type(d) is not dict or type(d.get("v")) is not int:
            raise IntegrityError("envelope header has the wrong fields or version", code=Code.MALFORMED)
        v = d["v"]
        if v > 2:
            raise newer_envelope(f"envelope header version {v}")
        keys = _HEADER_KEYS if v == 2 else _HEADER_KEYS_V1
        if v not in (1, 2) or not keys <= d.keys():
            raise IntegrityError("envelope header has the wrong fields or version", code=Code.MALFORMED)
        if d.keys() != keys:
            if v == 1:
                raise IntegrityError("envelope header has the wrong fields or version", code=Code.MALFORMED)
            raise newer_envelope("envelope header has fields this release does not know")
        if not (
            type(d["id"]) is str
            and type(d["origin"]) is str
            and type(d["key"]) is str
            and type(d["stream"]) is str
            and type(d["prev"]) is str
            and type(d["topic"]) is str
            and type(d["time"]) is str
            and type(d["enc"]) is str
            and type(d["digest"]) is str
            and type(d["version"]) is int
            and (v == 1 or type(d["commit"]) is str)
        ):
            raise IntegrityError("envelope header field has the wrong type", code=Code.MALFORMED)
        if len(d["prev"]) != 64 or len(d["digest"]) != 64 or d["version"] < 1:
            raise IntegrityError("envelope header has a malformed hash or version", code=Code.MALFORMED)
        commit = d["commit"] if v == 2 else COMMIT_SHA256
        if commit not in COMMITS:
            raise newer_envelope("envelope header names a commitment kind this release does not know")
        return cls(
            event_id=d["id"],
            origin=d["origin"],
            key_id=d["key"],
            stream=d["stream"],
            version=d["version"],
            prev=d["prev"],
            topic=d["topic"],
            time=d["time"],
            digest=d["digest"],
            enc=d["enc"],
            commit=commit,
            v=v,
        )

    @property
    def timestamp(self) -> datetime:
        try:
            return datetime.fromisoformat(self.time)
        except ValueError as exc:
            raise IntegrityError(f"envelope time {self.time!r} is not ISO 8601", code=Code.MALFORMED) from exc
