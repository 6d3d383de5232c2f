"""The portal's delivery-key notice and its schedule (issue 22, ``ledger.linkage.delivery_keys``,
``ledger.portal.rotation``).

Threats: a compromised hub or the broker operator changing the key a notice announces (the signature covers the
serial, the key and its time); an insider at the portal after an erasure (a key's private half outlives its
grace: it must not).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import Code, ConfigurationError, FlagLedgerError, InputError, SignatureError
from ledger.linkage.delivery_keys import DeliveryKeyNotice, WireKeyRequest
from ledger.linkage.names import PORTAL
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.wire_keys import delivery_entry, delivery_of, delivery_serial
from ledger.log.datakeys import AesKek
from ledger.log.signing import Signer
from ledger.portal.rotation import DeliveryKeySettings, DeliveryRotation
from ledger.portal.store import open_portal_store
from ledger.portal.wire_keys import PortalWireKeys

START = datetime(2026, 12, 7, 12, tzinfo=UTC)


def keys_of(signer: Signer) -> SenderKeys:
    """The portal's registered key, as an agency's directory gives it."""

    def lookup(party: str, key_id: str) -> Ed25519PublicKey:
        if party != PORTAL or key_id != signer.key_id:
            raise SignatureError("unknown key", code=Code.BAD_SIGNATURE)
        return Ed25519PublicKey.from_public_bytes(signer.public_raw)

    return lookup


def test_a_notice_verifies_under_the_portals_key_only_and_covers_its_key_serial_and_time() -> None:
    """Compromised hub relaying the notice: any field changed, or a key of its own, fails the check."""
    portal = Signer.generate(PORTAL)
    public = X25519PrivateKey.generate().public_key()
    entry = delivery_entry("ab" * 16, public, 4)
    notice = DeliveryKeyNotice.of(portal, 4, entry, START.isoformat())
    assert notice.verify(keys_of(portal))[0] == "ab" * 16 and delivery_serial(entry) == 4
    other = delivery_entry("cd" * 16, X25519PrivateKey.generate().public_key(), 4)
    for bad in (replace(notice, serial=5), replace(notice, delivery=other), replace(notice, made_at="2027-01-01")):
        with pytest.raises(SignatureError):
            bad.verify(keys_of(portal))
    with pytest.raises(SignatureError):
        DeliveryKeyNotice.of(Signer.generate(PORTAL), 4, entry, START.isoformat()).verify(keys_of(portal))
    # an entry exported before serials still reads; a malformed serial is refused
    assert delivery_serial(delivery_entry("ab" * 16, public)) == 0 and delivery_of(entry)[0] == "ab" * 16
    for broken in (entry + ":1", entry[:-1] + "04", entry[:-1] + "x"):
        with pytest.raises(InputError):
            delivery_of(broken)
    with pytest.raises(FlagLedgerError):
        WireKeyRequest(PORTAL, "ab" * 16, "").check()  # the portal asks a provider, never itself


def test_the_schedule_rotates_on_the_period_announces_once_and_retires_after_the_grace(tmp_path: Path) -> None:
    """Insider at the portal after an erasure: a key's private half is gone once its successor is older than the
    grace — not before (a key message sealed to it may still be on its way)."""
    wires = PortalWireKeys(tmp_path / "wirekeys.sqlite", AesKek(os.urandom(32)))
    now = [START]
    portal = Signer.generate(PORTAL)
    rotation = DeliveryRotation(
        wires, portal, lambda: now[0], DeliveryKeySettings(period_seconds=100, grace_seconds=50)
    )
    try:
        first = rotation.due()
        assert first is not None and first.serial == 1  # made on the first step, owed to the agencies
        assert rotation.due() is not None  # not yet recorded announced: owed again
        wires.announced(first.delivery.split(":")[0])
        assert rotation.due() is None
        now[0] += timedelta(seconds=99)
        assert rotation.due() is None and len(wires.deliveries()) == 1
        now[0] += timedelta(seconds=2)
        second = rotation.due()
        assert second is not None and second.serial == 2 and len(wires.deliveries()) == 2
        wires.announced(second.delivery.split(":")[0])
        now[0] += timedelta(seconds=49)
        assert rotation.due() is None and len(wires.deliveries()) == 2  # within the grace: kept
        now[0] += timedelta(seconds=2)
        assert rotation.due() is None and len(wires.deliveries()) == 1  # retired
        assert wires.delivery(first.delivery.split(":")[0]) is None and rotation.retired == 1
    finally:
        wires.close()


def test_a_key_file_made_before_the_schedule_is_upgraded_in_place(tmp_path: Path) -> None:
    """Administrator upgrading a portal: the key file of the first release gains its columns; its key is kept and
    counted as made at the epoch (so the first step rotates and announces)."""
    path = tmp_path / "wirekeys.sqlite"
    db = sqlite3.connect(str(path))
    db.execute(
        "CREATE TABLE delivery_keys (id BLOB PRIMARY KEY, public TEXT NOT NULL, wrapped BLOB NOT NULL, "
        "made INTEGER NOT NULL)"
    )
    db.commit()
    db.close()
    wires = PortalWireKeys(path, AesKek(os.urandom(32)))
    try:
        key_id, _ = wires.rotate()
        newest = wires.newest()
        assert newest is not None and newest[0] == key_id and newest[3] == "" and newest[4] is False
        rotation = DeliveryRotation(wires, Signer.generate(PORTAL), lambda: START, DeliveryKeySettings())
        notice = rotation.due()
        assert notice is not None and notice.serial == 2
    finally:
        wires.close()


@pytest.mark.parametrize(
    ("section", "env", "words"),
    [
        ({"resend_after_seconds": 0}, None, "resend_after_seconds (FLAGLEDGER_DELIVERY_KEYS_RESEND_AFTER_SECONDS)"),
        ({"resend_after_seconds": "hourly"}, None, "resend_after_seconds"),
        ({}, "-5", "resend_after_seconds (FLAGLEDGER_DELIVERY_KEYS_RESEND_AFTER_SECONDS)"),
        ({"resend_after": 60}, None, "resend_after"),
    ],
)
def test_a_bad_resend_after_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, section: dict[str, object], env: str | None, words: str
) -> None:
    """Administrator's typo or a stale environment variable: a re-ask timer of zero (asking the hub at every
    step) or of no number is refused at start with the setting's name — never a portal that re-asks silently
    never or always."""
    monkeypatch.delenv("FLAGLEDGER_DELIVERY_KEYS_RESEND_AFTER_SECONDS", raising=False)
    assert DeliveryKeySettings.from_linkage({}).resend_after_seconds == 3600.0
    assert DeliveryKeySettings.from_linkage({"delivery_keys": {"resend_after_seconds": 90}}).resend_after_seconds == 90
    if env is not None:
        monkeypatch.setenv("FLAGLEDGER_DELIVERY_KEYS_RESEND_AFTER_SECONDS", env)
    with pytest.raises(ConfigurationError) as err:
        DeliveryKeySettings.from_linkage({"delivery_keys": section})
    assert words in str(err.value)


def test_a_portal_database_made_before_last_asked_gains_it_on_open_and_its_pages_are_asked_again(
    tmp_path: Path,
) -> None:
    """Administrator upgrading a portal: a page set aside before the re-ask timer keeps waiting and is asked for
    again on the timer, counted from when it was set aside; once asked, not again before ``resend_after``."""
    path = tmp_path / "portal.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE portal_waiting (event_id VARCHAR(32) PRIMARY KEY, ref VARCHAR(32) NOT NULL, "
        "provider VARCHAR(32) NOT NULL, message BLOB NOT NULL, asked_at VARCHAR(40) NOT NULL)"
    )
    old.execute("INSERT INTO portal_waiting VALUES ('e1', ?, 'A', x'00', ?)", ("ab" * 16, START.isoformat()))
    old.commit()
    old.close()
    store = open_portal_store(f"sqlite:///{path}")
    try:
        assert store.waiting() == [("e1", "ab" * 16, "A", b"\x00")]
        assert store.overdue((START - timedelta(seconds=1)).isoformat()) == []
        assert store.overdue(START.isoformat()) == [("ab" * 16, "A")]
        later = (START + timedelta(seconds=10)).isoformat()
        store.reask("ab" * 16, "A", later, b"request")
        assert store.owed()[-1][1] == b"request"
        assert store.overdue((START + timedelta(seconds=9)).isoformat()) == []  # asked at +10 s: not yet
        assert store.overdue(later) == [("ab" * 16, "A")]
    finally:
        store.close()
    open_portal_store(f"sqlite:///{path}").close()  # opened again: the column is not added twice
