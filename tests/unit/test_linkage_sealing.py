"""Sealed linkage messages (issue 19, docs/linkage.md): signed by the sender, sealed to the recipient, padded.

Each test names the threat it defends against: the broker operator and the network (sees routing and
ciphertext only), a peer agency (cannot open what was sealed to another, cannot pass as another), the hub
or any recipient re-sending a signed message elsewhere, and a sender hiding data in the padding.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import Code, FlagLedgerError, InputError, IntegrityError, SignatureError, UntrustedKeyError
from ledger.linkage.buckets import ANSWER_SIZE, BUCKETS
from ledger.linkage.names import HUB
from ledger.linkage.sealing import (
    MAGIC,
    SUITE,
    new_sealing_key,
    public_from_hex,
    public_hex,
    read_header,
    ring_keys,
    seal,
    sealing_key_from_hex,
    unseal,
)
from ledger.log.signing import KeyRecord, KeyRing, Signer

A, B = "131016", "131024"
START = datetime(2026, 1, 1, tzinfo=UTC)


class Party:
    """One party's node keys: an Ed25519 signing key (registered with everyone) and an X25519 sealing key."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signer = Signer.generate(name)
        self.sealing = X25519PrivateKey.generate()
        self.public = self.sealing.public_key()


@pytest.fixture
def parties() -> dict[str, Party]:
    return {name: Party(name) for name in (A, B, HUB)}


def registry(*parties: Party) -> KeyRing:
    ring = KeyRing()
    for p in parties:
        ring.add(KeyRecord(p.name, p.signer.key_id, p.signer.public_raw.hex(), START))
    return ring


def new_id() -> str:
    return uuid.uuid4().hex


def test_a_message_opens_for_its_recipient_with_everything_bound(parties: dict[str, Party]) -> None:
    a, hub = parties[A], parties[HUB]
    event_id = new_id()
    payload = json.dumps({"query": "a1f", "item": 74}).encode()
    message = seal(a.signer, hub.public, HUB, event_id, "query", payload)
    opened = unseal(hub.sealing, HUB, message, ring_keys(registry(*parties.values()), START + timedelta(days=1)))
    assert (opened.sender, opened.recipient, opened.event_id, opened.kind, opened.payload) == (
        A,
        HUB,
        event_id,
        "query",
        payload,
    )
    assert opened.key_id == a.signer.key_id


def test_the_broker_sees_routing_and_ciphertext_of_a_bucket_size_only(parties: dict[str, Party]) -> None:
    """Threat: the broker operator and the network. Two different payloads of one bucket make messages of equal
    size; nothing of the payload or its kind is readable; the header is all that decodes."""
    a, hub = parties[A], parties[HUB]
    number_like = b"123456789018"
    short = seal(a.signer, hub.public, HUB, new_id(), "registration", b'{"number": "123456789018"}')
    longer = seal(a.signer, hub.public, HUB, new_id(), "consultation", b"x" * 700 + number_like)
    assert len(short) == len(longer)
    for message in (short, longer):
        assert number_like not in message and b"registration" not in message and b"consultation" not in message
        with pytest.raises(UnicodeDecodeError):
            message.decode("utf-8")
        header = read_header(message)
        assert (header.sender, header.recipient) == (A, HUB)
        # 4 magic + 2 length + header + 32 encapsulated key + bucket + 16 tag
        assert len(message) == 4 + 2 + len(header.encode()) + 32 + BUCKETS[0] + 16
    # the next bucket up is the next size up, and nothing in between
    big = seal(a.signer, hub.public, HUB, new_id(), "query", b"y" * (BUCKETS[0] + 1))
    assert len(big) - len(short) == BUCKETS[1] - BUCKETS[0]


def test_answers_are_padded_to_one_size_whatever_they_say(parties: dict[str, Party]) -> None:
    """Threat: the broker operator and the querying agency's network — a "no data" answer, a held one and one
    with data are one size, so size does not tell a flag from an answer."""
    hub, b = parties[HUB], parties[B]
    sizes = {
        len(seal(hub.signer, b.public, B, new_id(), "answer", body, at_least=ANSWER_SIZE))
        for body in (b"{}", b'{"status": "in_progress"}', json.dumps({"data": "z" * 2000}).encode())
    }
    assert len(sizes) == 1


def test_a_peer_agency_cannot_open_a_message_sealed_to_another(parties: dict[str, Party]) -> None:
    """Threat: a peer agency (or an insider with its keys) that reads another agency's inbox."""
    hub, a, b = parties[HUB], parties[A], parties[B]
    message = seal(hub.signer, a.public, A, new_id(), "answer", b'{"data": "secret"}')
    keys = ring_keys(registry(*parties.values()), START + timedelta(days=1))
    with pytest.raises(IntegrityError) as misaddressed:
        unseal(b.sealing, B, message, keys)
    assert misaddressed.value.code == Code.MISADDRESSED
    # B pretending to be A does not help: the seal is A's key's
    with pytest.raises(IntegrityError) as sealed:
        unseal(b.sealing, A, message, keys)
    assert sealed.value.code == Code.SEALED_MESSAGE


def test_a_readdressed_message_is_refused(parties: dict[str, Party]) -> None:
    """Threat: the broker operator or the network changing the routing header (recipient, sender or id) to
    replay a message elsewhere or under another id: the header is bound into the seal."""
    a, b, hub = parties[A], parties[B], parties[HUB]
    keys = ring_keys(registry(*parties.values()), START + timedelta(days=1))
    message = seal(a.signer, hub.public, HUB, new_id(), "query", b"{}")
    header = read_header(message)
    for changed in (
        message.replace(header.sender.encode(), B.encode(), 1),
        message.replace(header.event_id.encode(), new_id().encode(), 1),
    ):
        assert read_header(changed) != header
        with pytest.raises(IntegrityError) as refused:
            unseal(hub.sealing, HUB, changed, keys)
        assert refused.value.code == Code.SEALED_MESSAGE
    # a message sealed to B, its header rewritten to name A (same length): refused at A
    to_b = seal(hub.signer, b.public, B, new_id(), "answer", b"{}")
    to_a = to_b.replace(B.encode(), A.encode(), 1)
    with pytest.raises(IntegrityError) as refused:
        unseal(a.sealing, A, to_a, keys)
    assert refused.value.code == Code.SEALED_MESSAGE


def test_a_recipient_cannot_resend_a_signed_message_to_another_or_under_another_kind(
    parties: dict[str, Party],
) -> None:
    """Threat: a recipient (the hub, or an insider with its keys) that opens a signed message and re-seals its
    signed contents to another party, or relabels its kind, to pass it off as the sender's act. The signature
    covers recipient and kind, so the next recipient refuses it."""
    a, b, hub = parties[A], parties[B], parties[HUB]
    keys = ring_keys(registry(*parties.values()), START + timedelta(days=1))
    original = seal(a.signer, hub.public, HUB, new_id(), "query", b'{"q": 1}')
    opened = unseal(hub.sealing, HUB, original, keys)

    class Replayer:
        """Seals with A's name and key id and A's real signature, taken from the opened message."""

        agency = A
        key_id = a.signer.key_id
        signature = b""

        def sign(self, _message: bytes) -> bytes:
            return self.signature

    replayer = Replayer()
    # the hub decrypts its own message by hand and takes A's signature out of the plaintext
    head_len = int.from_bytes(original[4:6], "big")
    plain = SUITE.decrypt(
        original[6 + head_len :],
        hub.sealing,
        info=b"flagledger/linkage/sealed/1\x00" + MAGIC + original[6 : 6 + head_len],
    )
    at = 2 + len(b"query") + 2 + len(a.signer.key_id)
    replayer.signature = plain[at : at + 64]
    assert len(replayer.signature) == 64

    to_b = seal(replayer, b.public, B, opened.event_id, "query", opened.payload)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        unseal(b.sealing, B, to_b, keys)
    relabelled = seal(replayer, hub.public, HUB, opened.event_id, "answer", opened.payload)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        unseal(hub.sealing, HUB, relabelled, keys)
    # the control: the same replayer with the same kind and recipient passes (the signature itself is genuine)
    same = seal(replayer, hub.public, HUB, opened.event_id, "query", opened.payload)  # type: ignore[arg-type]
    assert unseal(hub.sealing, HUB, same, keys).payload == opened.payload


def test_a_forged_sender_is_refused(parties: dict[str, Party]) -> None:
    """Threat: a peer agency that seals a message in another agency's name — with its own key claiming the
    other's name, or with a fresh key nobody registered."""
    a, b, hub = parties[A], parties[B], parties[HUB]
    keys = ring_keys(registry(*parties.values()), START + timedelta(days=1))

    class Impostor:
        agency = A  # claims to be A
        key_id = a.signer.key_id  # and names A's key
        sign = b.signer.sign  # but signs with B's

    forged = seal(Impostor(), hub.public, HUB, new_id(), "flags_set", b"{}")  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        unseal(hub.sealing, HUB, forged, keys)

    class OwnKey:
        agency = A
        key_id = b.signer.key_id  # B's registered key, claimed for A
        sign = b.signer.sign

    with pytest.raises(UntrustedKeyError) as wrong:
        unseal(hub.sealing, HUB, seal(OwnKey(), hub.public, HUB, new_id(), "q", b"{}"), keys)  # type: ignore[arg-type]
    assert wrong.value.code == Code.WRONG_AGENCY
    stranger = Signer.generate(A)  # a key A never registered
    with pytest.raises(UntrustedKeyError) as unknown:
        unseal(hub.sealing, HUB, seal(stranger, hub.public, HUB, new_id(), "q", b"{}"), keys)
    assert unknown.value.code == Code.UNKNOWN_KEY


def test_a_revoked_sender_key_is_refused(parties: dict[str, Party]) -> None:
    """Threat: an insider holding a stolen, since revoked, node key of an agency."""
    a, hub = parties[A], parties[HUB]
    ring = registry(*parties.values())
    ring.revoke(a.signer.key_id, START + timedelta(days=2), "stolen")
    message = seal(a.signer, hub.public, HUB, new_id(), "query", b"{}")
    with pytest.raises(UntrustedKeyError) as revoked:
        unseal(hub.sealing, HUB, message, ring_keys(ring, START + timedelta(days=3)))
    assert revoked.value.code == Code.REVOKED_KEY


def test_hidden_bytes_in_the_padding_are_refused(parties: dict[str, Party]) -> None:
    """Threat: a sender hiding data past the payload (a covert channel past the recipient's checks)."""
    import ledger.linkage.sealing as sealing

    a, hub = parties[A], parties[HUB]
    keys = ring_keys(registry(*parties.values()), START + timedelta(days=1))
    real_pad = sealing.pad
    try:
        sealing.pad = lambda inner, at_least=0: real_pad(inner, at_least)[:-1] + b"\x01"  # type: ignore[assignment]
        message = seal(a.signer, hub.public, HUB, new_id(), "query", b"{}")
    finally:
        sealing.pad = real_pad
    with pytest.raises(IntegrityError) as refused:
        unseal(hub.sealing, HUB, message, keys)
    assert refused.value.code == Code.SEALED_MESSAGE


def test_malformed_and_oversized_input_gets_clear_codes(parties: dict[str, Party]) -> None:
    a, hub = parties[A], parties[HUB]
    keys = ring_keys(registry(*parties.values()), START)
    for junk in (b"", b"not a message", MAGIC + b"\x00", MAGIC + b"\xff\xff" + b"x" * 10):
        with pytest.raises(IntegrityError) as bad:
            unseal(hub.sealing, HUB, junk, keys)
        assert bad.value.code == Code.MALFORMED
    message = seal(a.signer, hub.public, HUB, new_id(), "query", b"{}")
    with pytest.raises(IntegrityError) as cut:
        unseal(hub.sealing, HUB, message[:-1], keys)
    assert cut.value.code == Code.MALFORMED
    with pytest.raises(InputError) as big:
        seal(a.signer, hub.public, HUB, new_id(), "query", b"z" * BUCKETS[-1])
    assert big.value.code == Code.OVERSIZE
    for bad_id in ("", "x" * 32, uuid.uuid4().hex.upper()):
        with pytest.raises(InputError):
            seal(a.signer, hub.public, HUB, bad_id, "query", b"{}")
    with pytest.raises(InputError):
        seal(a.signer, hub.public, "hub\x00", new_id(), "query", b"{}")
    assert public_from_hex(public_hex(hub.public)) == hub.public
    with pytest.raises(InputError):
        public_from_hex("zz")
    with pytest.raises(InputError):
        sealing_key_from_hex("00" * 31)


def test_a_sealing_key_kept_as_hex_opens_what_was_sealed_to_it(parties: dict[str, Party]) -> None:
    """A key store keeps the X25519 key as a text secret; read back, it opens the party's messages."""
    a = parties[A]
    kept, key = new_sealing_key()
    message = seal(a.signer, key.public_key(), HUB, new_id(), "query", b"{}")
    keys = ring_keys(registry(*parties.values()), START)
    assert unseal(sealing_key_from_hex(kept), HUB, message, keys).payload == b"{}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_byte_is_refused_with_a_ledger_error(parties: dict[str, Party], data: st.DataObject) -> None:
    """Threat: the broker operator and the network flipping, cutting or extending bytes anywhere — framing,
    header, encapsulated key, ciphertext, tag. Every change is refused with a ledger error (a clear code, never
    a crash of the reader), and nothing changed ever opens."""
    a, hub = parties[A], parties[HUB]
    keys = ring_keys(registry(*parties.values()), START)
    message = seal(a.signer, hub.public, HUB, "0" * 32, "query", b'{"q": 1}')
    at = data.draw(st.integers(0, len(message) - 1))
    how = data.draw(st.sampled_from(["flip", "cut", "extend", "zero_key"]))
    if how == "flip":
        changed = message[:at] + bytes([message[at] ^ data.draw(st.integers(1, 255))]) + message[at + 1 :]
    elif how == "cut":
        changed = message[:at]
    elif how == "extend":
        changed = message + data.draw(st.binary(min_size=1, max_size=64))
    else:  # an all-zero (low-order) encapsulated key where the real one was
        head = 6 + int.from_bytes(message[4:6], "big")
        changed = message[:head] + bytes(32) + message[head + 32 :]
    with pytest.raises(FlagLedgerError):
        unseal(hub.sealing, HUB, changed, keys)
