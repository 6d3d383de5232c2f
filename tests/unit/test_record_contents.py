"""A provision record's contents sealed to the portal (ledger/linkage/record_contents.py): decoded strictly,
opened by the portal alone.

Threats: a broken or hostile provider (malformed or oversized contents, extra fields), the hub (opening the
contents with its own key, relabelling them), the broker operator (the contents' size).
"""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import Code, FlagLedgerError, InputError, IntegrityError
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.record_contents import (
    CONTENTS_SIZE,
    RecordContents,
    SealedRecordMessage,
    open_contents,
    seal_contents,
)
from ledger.linkage.sealing import seal, unseal
from ledger.log.signing import Signer

A, C = "131016", "131032"
CODE = "a" + "0" * 32


def party(name: str) -> PartyKeys:
    return PartyKeys(Signer.generate(name), X25519PrivateKey.generate(), os.urandom(32))


PROVIDER, PORTAL_KEYS, HUB_KEYS = party(A), party(PORTAL), party(HUB)


def keys(sender: str, key_id: str) -> Ed25519PublicKey:
    signer = {A: PROVIDER.signer, HUB: HUB_KEYS.signer}[sender]
    assert key_id == signer.key_id
    return Ed25519PublicKey.from_public_bytes(signer.public_raw)


CONTENTS = RecordContents(C, "児童手当", 74, "地方税関係情報", "provided", "2026-01-01T09:00:00+09:00")


def test_the_portal_opens_what_the_provider_sealed_and_the_hub_does_not() -> None:
    """Hub insider with the hub's key: opens nothing; broker operator: a short and a long text, one size."""
    record_id = uuid.uuid4().hex
    sealed = seal_contents(PROVIDER.signer, PORTAL_KEYS.sealing.public_key(), record_id, CONTENTS)
    m = decode(SealedRecordMessage, SealedRecordMessage(record_id, CODE, sealed).encode())
    assert open_contents(PORTAL_KEYS, m.sealed(), keys, record_id, A) == CONTENTS
    for me in (HUB, PORTAL):
        with pytest.raises(IntegrityError):
            unseal(HUB_KEYS.sealing, me, m.sealed(), keys)
    assert "児童手当".encode() not in m.sealed()
    short = RecordContents(C, "児", 1, "地", "held", "2026-01-01T00:00:00Z")
    other = seal_contents(PROVIDER.signer, PORTAL_KEYS.sealing.public_key(), record_id, short)
    assert len(base64.b64decode(other)) == len(m.sealed())  # one bucket: the size tells nothing of the text
    assert len(m.sealed()) > CONTENTS_SIZE


def test_contents_relabelled_by_the_hub_are_refused() -> None:
    """The hub re-sealing the provider's signed contents as its own kind, or its own contents as the
    provider's: refused by the portal."""
    record_id = uuid.uuid4().hex
    forged = seal(HUB_KEYS.signer, PORTAL_KEYS.sealing.public_key(), PORTAL, record_id, "record_contents", b"{}", 1024)
    with pytest.raises(IntegrityError) as refused:
        open_contents(PORTAL_KEYS, forged, keys, record_id, A)
    assert refused.value.code == Code.SEALED_MESSAGE
    wrong_kind = seal(PROVIDER.signer, PORTAL_KEYS.sealing.public_key(), PORTAL, record_id, "answer", b"{}", 1024)
    with pytest.raises(IntegrityError):
        open_contents(PORTAL_KEYS, wrong_kind, keys, record_id, A)


@pytest.mark.parametrize(
    "payload",
    [
        {"record_id": uuid.uuid4().hex, "code": CODE, "contents": "not base64!"},
        {"record_id": uuid.uuid4().hex, "code": CODE, "contents": "A" * 9000},
        {"record_id": uuid.uuid4().hex, "code": CODE, "contents": ""},
        {"record_id": "r-1", "code": CODE, "contents": "AAAA"},
        {"record_id": uuid.uuid4().hex, "code": CODE, "contents": "AAAA", "procedure": "児童手当"},
    ],
)
def test_a_malformed_sealed_record_is_an_input_error(payload: dict[str, object]) -> None:
    """A broken or hostile provider: bad base64, oversized or empty contents, a bad id, a clear field added."""
    with pytest.raises(InputError):
        decode(SealedRecordMessage, json.dumps(payload).encode())


def test_contents_are_checked_before_sealing() -> None:
    """A broken provider: an empty procedure, an item out of table 2, a querier that is no party."""
    for bad in (
        RecordContents(C, "", 74, "x", "provided", "t"),
        RecordContents(C, "x", 0, "x", "provided", "t"),
        RecordContents("not a party", "x", 74, "x", "provided", "t"),
    ):
        with pytest.raises(FlagLedgerError):
            seal_contents(PROVIDER.signer, PORTAL_KEYS.sealing.public_key(), uuid.uuid4().hex, bad)
