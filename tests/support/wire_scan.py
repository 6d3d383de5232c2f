"""The insider's scan of the broker (issue 22, copies on the wire): every retained record, opened with every key
that remains at every party, as far as the keys reach.

A record is tried as sealed to every party under every private key left (the hub's, the portal's and each
agency's sealing keys, the portal's delivery keys not yet retired); what opens is searched for nested sealed
messages (a relay's hex, a sealed record's or page's base64, a digest's messages), each tried the same way; a
retained key message (``subject_key``) is opened with every key left, and the wire key it yields joins the
wire keys the parties still hold (the portal's key file, each agency's ``datakeys.sqlite``); then every
payload under a wire key (``DKW1``) is tried with all of them. What comes back is every plaintext an insider
with all those keys reads from the broker's retention.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import FlagLedgerError
from ledger.linkage.digests import DIGEST_KIND, unpack
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.record_contents import RecordContents
from ledger.linkage.sealing import MAGIC, SenderKeys, unseal
from ledger.linkage.transport import MemoryBroker, Topics
from ledger.linkage.wire_keys import WIRE_MAGIC, SubjectKey, WireErasure, open_key, unwire
from ledger.log.datakeys import DataKeys
from tests.support.portal_world import PortalWorld

__all__ = ["Keys", "every_key_left", "opened_from", "portal_inbox", "sent_to_portal"]


@dataclass
class Keys:
    """Every key left: (party, X25519 private key) pairs to try a seal with, and wire keys by ref."""

    sealing: list[tuple[str, X25519PrivateKey]]
    wire: dict[bytes, bytes]
    sender_keys: SenderKeys


class _AnyWire:
    """A wire key by ref, whoever sent it (the insider does not care who delivered it)."""

    def __init__(self, keys: dict[bytes, bytes]) -> None:
        self.keys = keys

    def key(self, ref: bytes, sender: str) -> bytes | None:
        return self.keys.get(ref)

    def erased(self, ref: bytes) -> bool:
        return False


def agency_wire_keys(dk: DataKeys) -> dict[bytes, bytes]:
    """The wire keys an agency still holds, unwrapped with its key-encryption key (the insider holds it)."""
    if not dk.path.exists():
        return {}
    db = sqlite3.connect(str(dk.path))
    try:
        rows = db.execute("SELECT ref, wrapped FROM wire_keys").fetchall()
    finally:
        db.close()
    return {bytes(r): dk.wrapper.unwrap(bytes(w), bytes(r)) for r, w in rows}


def every_key_left(pw: PortalWorld) -> Keys:
    """Every key the agencies, the hub and the portal hold now."""
    cast = pw.world.cast
    sealing = [(HUB, cast.hub.sealing), (PORTAL, pw.keys.sealing)]
    sealing += [(name, k.sealing) for name, k in cast.agencies.items()]
    wire: dict[bytes, bytes] = {}
    if pw.wires is not None:
        sealing += [(PORTAL, k) for k in pw.wires.deliveries()]
        wire |= pw.wires.all_keys()
    for dk in pw.agency_keys.values():
        wire |= agency_wire_keys(dk)
    return Keys(sealing, wire, pw.world.hub.directory.sender_keys(pw.portal.now()))


def _nested(value: Any) -> Iterator[bytes]:
    """Every byte string inside a JSON payload that may be a sealed message or a wired payload."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _nested(v)
    elif isinstance(value, list):
        for v in value:
            yield from _nested(v)
    elif isinstance(value, str) and len(value) >= 32:
        for decoded in _decodings(value):
            if decoded[:4] in (MAGIC, WIRE_MAGIC):
                yield decoded


def _decodings(text: str) -> Iterator[bytes]:
    with contextlib.suppress(ValueError):
        yield bytes.fromhex(text)
    with contextlib.suppress(binascii.Error, ValueError):
        yield base64.b64decode(text, validate=True)


def opened_from(records: list[bytes], keys: Keys) -> list[bytes]:
    """Every plaintext the keys open in ``records`` (and in what they carry)."""
    plain: list[bytes] = []
    wired: list[tuple[bytes, str]] = []  # (payload under a wire key, its record id)
    key_messages: list[SubjectKey] = []
    queue = list(records)
    while queue:
        blob = queue.pop()
        for name, private in keys.sealing:
            try:
                opened = unseal(private, name, blob, keys.sender_keys)
            except FlagLedgerError:
                continue
            payload = opened.payload
            if opened.kind == DIGEST_KIND:
                queue += unpack(payload)
                break
            if opened.kind == RecordContents.kind and payload[:4] == WIRE_MAGIC:
                wired.append((payload, opened.event_id))
                break
            plain.append(payload)
            if opened.kind == SubjectKey.kind:
                key_messages.append(decode(SubjectKey, payload))
            with contextlib.suppress(ValueError):
                queue += list(_nested(json.loads(payload)))
            break
    wire = dict(keys.wire)
    for m in key_messages:  # a retained key message opens with a delivery key (or sealing key) still held
        for _, private in keys.sealing:
            try:
                wire[m.raw_ref()] = open_key(private, m.raw_ref(), m.key)
            except FlagLedgerError:
                continue
    for payload, record_id in wired:
        try:
            plain.append(unwire(payload, record_id, "", _AnyWire(wire)))
        except FlagLedgerError:
            continue
    return plain


Erased = tuple[str, list[str]]  # a wire erasure: its sender, the refs


def sent_to_portal(records: list[bytes], keys: Keys) -> tuple[dict[bytes, bytes], list[Erased]]:
    """What the portal would take from its inbox: the wire keys delivered (opened with the keys given), and each
    wire erasure as (sender, refs)."""
    delivered: dict[bytes, bytes] = {}
    erasures: list[Erased] = []
    for blob in records:
        for name, private in keys.sealing:
            try:
                opened = unseal(private, name, blob, keys.sender_keys)
            except FlagLedgerError:
                continue
            if opened.kind == SubjectKey.kind:
                m = decode(SubjectKey, opened.payload)
                for _, k in keys.sealing:
                    try:
                        delivered[m.raw_ref()] = open_key(k, m.raw_ref(), m.key)
                    except FlagLedgerError:
                        continue
            elif opened.kind == WireErasure.kind:
                erasures.append((opened.sender, decode(WireErasure, opened.payload).refs.split(" ")))
            break
    return delivered, erasures


def portal_inbox(broker: MemoryBroker, portal: PartyKeys, sender_keys: SenderKeys) -> tuple[_AnyWire, list[Erased]]:
    """The portal's inbox on the in-memory broker as the portal would take it: the wire keys delivered (as a
    lookup for ``open_contents``) and the wire erasures."""
    delivered, erasures = sent_to_portal(
        broker.topics.get(Topics().inbox(PORTAL), []), Keys([(PORTAL, portal.sealing)], {}, sender_keys)
    )
    return _AnyWire(delivered), erasures
