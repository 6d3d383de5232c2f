"""Wire keys (issue 22, copies on the wire): the inner layer, the sender's and the portal's key files.

Threats: an insider at the portal after an erasure (the key file keeps no destroyed key, not even in its file's
bytes), a peer agency erasing another provider's keys at the portal (refused: only the deliverer's keys go),
the hub showing one record's contents as another's (the record id is bound), the broker operator keeping a key
message past the delivery key's period (it opens with no key left).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import Code, IntegrityError
from ledger.linkage.names import PORTAL
from ledger.linkage.wire_keys import SubjectKey, WireErasure, open_key, seal_key, unwire, wire
from ledger.log.datakeys import AesKek, DataKeys
from ledger.portal.wire_keys import PortalWireKeys

A, C = "131016", "131032"
RID, OTHER = "a" * 32, "b" * 32


def _wrapped(path: Path, ref: bytes) -> bytes:
    """The wrapped key of ``ref`` as the key file stores it."""
    db = sqlite3.connect(str(path))
    try:
        return bytes(db.execute("SELECT wrapped FROM wire_keys WHERE ref = ?", (ref,)).fetchone()[0])
    finally:
        db.close()


@pytest.fixture
def portal(tmp_path: Path) -> PortalWireKeys:
    return PortalWireKeys(tmp_path / "wirekeys.sqlite", AesKek(os.urandom(32)))


def test_a_wired_payload_opens_only_with_its_key_for_its_record(portal: PortalWireKeys) -> None:
    """Hub showing one record's contents as another's; a key never delivered; a key destroyed."""
    ref, key = os.urandom(16), os.urandom(32)
    blob = wire(ref, key, RID, b'{"procedure":"x"}')
    with pytest.raises(IntegrityError) as never:
        unwire(blob, RID, A, portal)
    assert never.value.code == Code.SEALED_MESSAGE
    assert portal.keep(ref, A, key) and not portal.keep(ref, A, key)  # kept once
    assert unwire(blob, RID, A, portal) == b'{"procedure":"x"}'
    for record_id, sender in ((OTHER, A), (RID, C)):  # another record's id; another provider's claim
        with pytest.raises(IntegrityError) as wrong:
            unwire(blob, record_id, sender, portal)
        assert wrong.value.code == Code.SEALED_MESSAGE
    assert portal.destroy(A, [ref], "e" * 32, "2026-12-07T12:00:00+00:00") == 1
    with pytest.raises(IntegrityError) as gone:
        unwire(blob, RID, A, portal)
    assert gone.value.code == Code.ERASED
    assert not portal.keep(ref, A, key)  # the old key message again: not kept back


def test_only_the_provider_that_delivered_a_key_destroys_it_and_no_byte_of_it_stays(
    portal: PortalWireKeys, tmp_path: Path
) -> None:
    """Peer agency erasing another's keys at the portal; insider with the portal's key file after the erasure."""
    ref, key = os.urandom(16), os.urandom(32)
    portal.keep(ref, A, key)
    assert portal.destroy(C, [ref], "c" * 32, "t") == 0 and portal.key(ref, A) == key and portal.erasures() == []
    wrapped = _wrapped(tmp_path / "wirekeys.sqlite", ref)
    assert wrapped in (tmp_path / "wirekeys.sqlite").read_bytes()  # the control: the file holds it while kept
    portal.destroy(A, [ref], "e" * 32, "t")
    assert portal.key(ref, A) is None and [e["sender"] for e in portal.erasures()] == [A]
    assert portal.all_keys() == {}
    assert wrapped not in (tmp_path / "wirekeys.sqlite").read_bytes()  # overwritten (secure_delete, VACUUM)


def test_a_key_message_opens_only_while_its_delivery_key_is_held(portal: PortalWireKeys) -> None:
    """Broker operator keeping a key message past the period: its delivery key is retired, nothing opens it."""
    first_id, first = portal.rotate()
    ref, key = os.urandom(16), os.urandom(32)
    message = SubjectKey(ref.hex(), first_id, seal_key(first, ref, key))
    message.check()
    held = portal.delivery(first_id)
    assert held is not None and open_key(held, ref, message.key) == key
    with pytest.raises(IntegrityError):
        open_key(X25519PrivateKey.generate(), ref, message.key)
    second_id, _ = portal.rotate()
    assert portal.current() is not None and portal.current()[0] == second_id  # type: ignore[index]
    assert portal.retire(keep=1) == 1 and portal.delivery(first_id) is None
    assert all(k.public_key() != first for k in portal.deliveries())


def test_the_senders_wire_key_is_its_own_and_goes_with_the_persons_data_keys(tmp_path: Path) -> None:
    """Insider at the sender after the erasure: the wire key is not the data key, the erasure's refs name it,
    and it is gone from the key file with them; another person's stays."""
    dk = DataKeys(tmp_path / "datakeys.sqlite", AesKek(os.urandom(32)))
    data_ref, data_key = dk.for_subject("p-x")
    ref, key, delivered = dk.wire_key("p-x", PORTAL)
    assert not delivered and key != data_key and ref != data_ref
    dk.wire_delivered(ref)
    wrapped = _wrapped(tmp_path / "datakeys.sqlite", ref)
    assert wrapped in (tmp_path / "datakeys.sqlite").read_bytes()  # the control
    assert dk.wire_key("p-x", PORTAL) == (ref, key, True)
    other, _, _ = dk.wire_key("p-y", PORTAL)
    refs = dk.refs_of("p-x")
    assert refs == sorted([data_ref.hex(), ref.hex()]) and dk.wire_refs(refs, PORTAL) == [ref.hex()]
    assert dk.destroy(refs, "t", "request", "admin2") == 2
    assert dk.held(refs) == [] and dk.held([other.hex()]) == [other.hex()]
    assert dk.wire_refs(refs, PORTAL) == [ref.hex()]  # still known as the portal's, for its wire erasure
    assert wrapped not in (tmp_path / "datakeys.sqlite").read_bytes()
    dk.close()


def test_wire_messages_are_decoded_strictly() -> None:
    """A broken or hostile sender: malformed refs and key lengths are refused."""
    for bad in (SubjectKey("zz", "static", "00" * 80), SubjectKey("a" * 32, "static", "00" * 10)):
        with pytest.raises(Exception):  # noqa: B017 - InputError, whichever field
            bad.check()
    with pytest.raises(Exception):  # noqa: B017
        WireErasure("e" * 32, "").check()
    WireErasure("e" * 32, f"{'a' * 32} {'b' * 32}").check()
