"""The relayed key and erasure messages (``subject_key``, ``wire_erasure``; issue 22, docs/erasure.md) are each
sealed in one bucket, whatever they hold.

Threat: the broker operator (and network), who reads every message's size on the hub's topic and the portal's
inbox. A key message under the portal's static key or a delivery key, a re-sent one, and an erasure naming one
key or sixty-four are all the same size on both legs of the relay: their size tells neither which kind it is
nor how many keys the person had.
"""

from __future__ import annotations

import os
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import Code, InputError
from ledger.linkage.messages import Message
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import bucket_of, seal
from ledger.linkage.tree_heads import RelayMessage, relayed
from ledger.linkage.wire_keys import (
    MAX_REFS,
    REFS_PER_MESSAGE,
    STATIC,
    WIRE_BUCKET,
    SubjectKey,
    WireErasure,
    erasures_of,
    seal_key,
)
from ledger.log.signing import Signer

SIGNER = Signer.generate("131016")
PORTAL_KEY = X25519PrivateKey.generate().public_key()
HUB_KEY = X25519PrivateKey.generate().public_key()


def _refs(n: int) -> list[str]:
    return [os.urandom(16).hex() for _ in range(n)]


def _legs(message: Message) -> tuple[int, int]:
    """(the sealed message's length on the portal's inbox, the relay's on the hub's topic)."""
    relay: RelayMessage = relayed(SIGNER, PORTAL_KEY, PORTAL, message, WIRE_BUCKET)
    inner = bytes.fromhex(relay.sealed)
    assert bucket_of(inner) == WIRE_BUCKET
    outer = seal(SIGNER, HUB_KEY, HUB, uuid.uuid4().hex, relay.kind, relay.encode())
    return len(inner), len(outer)


def test_key_and_erasure_messages_are_one_size_on_both_legs_whatever_they_hold() -> None:
    """Broker operator: every kind and content of the relayed key and erasure messages seals to the same sizes."""
    ref, key = os.urandom(16), os.urandom(32)
    keys = [
        SubjectKey(ref.hex(), STATIC, seal_key(PORTAL_KEY, ref, key)),
        SubjectKey(ref.hex(), os.urandom(16).hex(), seal_key(PORTAL_KEY, ref, key)),
    ]
    erasures = [
        m for n in (1, 2, REFS_PER_MESSAGE, REFS_PER_MESSAGE + 1, MAX_REFS) for m in erasures_of("e" * 32, _refs(n))
    ]
    assert len(erasures_of("e" * 32, _refs(MAX_REFS))) == MAX_REFS // REFS_PER_MESSAGE
    sizes = {_legs(m) for m in keys + erasures}
    assert len(sizes) == 1, sizes
    # the control: the whole erasure of MAX_REFS keys in one message, as it went before, lands in a bigger bucket
    whole = relayed(SIGNER, PORTAL_KEY, PORTAL, WireErasure("e" * 32, " ".join(_refs(MAX_REFS))))
    assert bucket_of(bytes.fromhex(whole.sealed)) > WIRE_BUCKET


def test_a_message_too_large_for_its_bucket_is_refused_not_sent_bigger() -> None:
    """Broker operator: a relayed message that would not fit the fixed bucket is refused (``oversize``) rather
    than sealed in a larger one whose size would tell."""
    with pytest.raises(InputError) as caught:
        relayed(SIGNER, PORTAL_KEY, PORTAL, WireErasure("e" * 32, " ".join(_refs(MAX_REFS))), WIRE_BUCKET)
    assert caught.value.code == Code.OVERSIZE
