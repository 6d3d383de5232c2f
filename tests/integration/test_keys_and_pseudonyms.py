"""Keys rotate and revoke as ledger events; raw individual numbers never reach any database file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.errors import StateConflict, UntrustedKeyError
from ledger.log.signing import KeyRecord, KeyRing, Signer
from ledger.runtime.bootstrap import AgencySpec, open_node, rotate_key
from tests.conftest import A, B
from tests.support.links import link


def test_rotation_signs_new_events_with_the_new_key_and_old_events_still_verify(
    make_node, person, keys_backend
) -> None:
    """Defends against an insider's old (or stolen) key outliving its revocation, with keys in files and with keys
    in a PKCS#11 token alike."""
    node = make_node((AgencySpec(B, "B市", "municipality"),))
    old = node.app.signers[B].key_id
    rid = node.app.request_flags(Actor(B, "req"), person(), ["NON_DISCLOSURE"])
    new = rotate_key(node, Actor(B, "admin"))
    assert new != old
    node.app.approve_request(Actor(B, "apr"), rid)
    keys_used = {env.header.key_id for _, _, env in node.app.envelopes()}
    assert keys_used == {old, new}
    with pytest.raises(StateConflict):
        node.app.revoke_key(Actor(B, "admin"), new, "cannot revoke the key in use")
    node.app.revoke_key(Actor(B, "admin"), old, "retired", effective_from=datetime.now(UTC) + timedelta(seconds=1))
    data_dir = node.config.data_dir
    node.close()
    reopened = open_node(data_dir)  # the key registry is rebuilt from the log alone
    try:
        report = verify_log(reopened.app)
        assert report.ok, report.first_bad
        assert reopened.app.flag_request(rid).status == "approved"
        revoked = {r.key_id: r for r in reopened.app.keyring.records()}[old]
        assert revoked.revoked_from is not None
        secrets = sorted(p.name for p in reopened.config.secrets_dir.iterdir() if not p.name.startswith("."))
        if keys_backend == "pkcs11":
            assert secrets and all(name.endswith(".sealed") for name in secrets), secrets
        else:
            assert any(name.endswith(".pem") for name in secrets), secrets
    finally:
        reopened.close()


def test_the_key_ring_rejects_unknown_not_yet_valid_expired_and_revoked_keys() -> None:
    signer = Signer.generate(A)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ring = KeyRing()
    ring.add(KeyRecord(A, signer.key_id, signer.public_raw.hex(), t0, valid_until=t0 + timedelta(days=30)))
    ring.check_key(A, signer.key_id, t0 + timedelta(days=1))
    cases = {
        "unknown_agency": (B, f"{B}:0000000000000000", t0),
        "unknown_key": (A, f"{A}:0000000000000000", t0),
        "key_not_yet_valid": (A, signer.key_id, t0 - timedelta(seconds=1)),
        "key_expired": (A, signer.key_id, t0 + timedelta(days=31)),
    }
    for code, (agency, key_id, at) in cases.items():
        with pytest.raises(UntrustedKeyError) as info:
            ring.check_key(agency, key_id, at)
        assert info.value.code == code
    ring.revoke(signer.key_id, t0 + timedelta(days=2), "compromised")
    with pytest.raises(UntrustedKeyError) as info:
        ring.check_key(A, signer.key_id, t0 + timedelta(days=3))
    assert info.value.code == "revoked_key" and "compromised" in str(info.value)
    ring.check_key(A, signer.key_id, t0 + timedelta(days=1))  # events before the revocation stay valid


def test_a_key_id_that_does_not_match_its_public_key_is_refused() -> None:
    signer = Signer.generate(A)
    with pytest.raises(UntrustedKeyError):
        KeyRing().add(KeyRecord(A, f"{A}:0123456789abcdef", signer.public_raw.hex(), datetime.now(UTC)))


@pytest.mark.parametrize("encryption", [False, True], ids=["plain", "encrypted"])
def test_no_raw_individual_number_reaches_any_database_file(make_node, person, encryption: bool) -> None:
    node = make_node(encryption=encryption)
    app = node.app
    victim, perpetrator, new_number, proxy = person(), person(), person(), person()
    app.open_case(Actor(B, "req"), victim, perpetrators=[perpetrator], proxies_to_cancel=[proxy], notes="相談")
    rid = app.request_flags(Actor(B, "req"), victim, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    app.request_provision(
        Actor(A, "counter"), B, victim, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    link(app, B, victim, new_number)
    app.register_proxy(Actor(A, "req"), perpetrator, proxy)
    node.projector.catch_up()
    assert app.flag_state is not None and app.flag_state.flags_for(app.subject(new_number))
    blobs = b"".join(p.read_bytes() for p in node.config.data_dir.glob("*.sqlite*"))
    for number in (victim, perpetrator, new_number, proxy):
        assert number.encode() not in blobs
        assert number.encode("utf-16-le") not in blobs
    if not encryption:
        assert app.subject(victim).encode() in blobs  # what is stored is the pseudonym
