"""Keys in a PKCS#11 token (ledger.runtime.pkcs11_keystore) against SoftHSM2: signing keys made and used inside it,
text secrets sealed by its key-encryption key, the data directory holding ciphertext alone.

Threats: the insider or shell user who copies a node's data directory (or its backup), and the administrator who
would put the token's PIN in config.json.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.cli.main import main
from ledger.errors import ConfigurationError
from ledger.log.signing import Signer
from ledger.runtime.bootstrap import AgencySpec, init_node, open_node
from ledger.runtime.config import NodeConfig
from ledger.runtime.keystore import Keys, open_keystore
from ledger.runtime.pkcs11_keystore import Pkcs11KeyStore, TokenSigningKey
from tests.conftest import activate_admin, enrol
from tests.support.people import individual_number
from tests.support.softhsm import SoftToken

A = "131016"


def _all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_a_copy_of_the_data_directory_holds_no_key_material(
    tmp_path: Path, pkcs11_env: SoftToken, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defends against the insider or shell user with a copy of the data directory: after init, signing, a
    rotation and a revocation through the command line, no secret's value (hex, base64 or raw) and no private
    key is in any file of it; the node reopens from the token and its log verifies."""
    data = tmp_path / "node"
    node = init_node(data, [AgencySpec(A, "A市", "municipality")], encryption=True)
    try:
        activate_admin(node, A)
        enrol(node, Actor(A, "admin"), "req", ["requester"])
        node.app.request_flags(Actor(A, "req"), individual_number(), ["NON_DISCLOSURE"])
        first = node.app.signers[A].key_id
        keys = Keys(open_keystore(node.config))
        assert isinstance(keys.store, Pkcs11KeyStore)
        # the pseudonym secret and the stream id key are keys inside the token, never read out
        # (tests/integration/test_pkcs11_inside.py); the sealed ones are opened here to look for them
        values = {"cipher": base64.b64decode(keys.cipher_key()), "token": keys.api_token_secret()}
    finally:
        node.close()
    capsys.readouterr()
    assert main(["--data-dir", str(data), "key", "rotate", "--as", f"{A}/admin"]) == 0, capsys.readouterr().err
    second = json.loads(capsys.readouterr().out)["key_id"]
    assert second != first
    assert main(["--data-dir", str(data), "key", "revoke", first, "--reason", "rotated", "--as", f"{A}/admin"]) == 0
    reopened = open_node(data)
    try:
        assert isinstance(reopened.app.signers[A]._private, TokenSigningKey), "the node signs inside the token"
        assert reopened.app.signers[A].key_id == second
        assert verify_log(reopened.app).ok
        with pytest.raises(ConfigurationError, match="cannot be exported"):
            reopened.app.signers[A].save(tmp_path / "stolen.pem")
    finally:
        reopened.close()
    names = sorted(p.name for p in (data / "secrets").iterdir() if p.name != ".pkcs11-prefix")
    assert names and all(name.endswith(".sealed") for name in names), names
    everything = _all_bytes(data)
    for what, value in values.items():
        for form in (value, value.hex().encode(), base64.b64encode(value)):
            assert form not in everything, f"the {what} secret is in the data directory"
    assert b"PRIVATE KEY" not in everything


def test_sealed_secrets_open_only_under_their_own_name_and_unaltered(tmp_path: Path, pkcs11_env: SoftToken) -> None:
    """Defends against a shell user swapping sealed files (an attacker's known secret put in place of the API
    token secret) or altering one: either is refused, nothing is read as a secret."""
    store = open_keystore(NodeConfig(data_dir=tmp_path))
    store.create("hub-code.key", "ab" * 32)  # the hub's code-mapping secret is one more named secret
    store.create("hub-code.key", "cd" * 32)
    store.create("api-token.key", "ef" * 32)
    assert store.get("hub-code.key") == "ab" * 32, "made once: the first of two racing callers wins"
    secrets = tmp_path / "secrets"
    assert b"ab" * 32 not in (secrets / "hub-code.key.sealed").read_bytes()
    (secrets / "api-token.key.sealed").write_bytes((secrets / "hub-code.key.sealed").read_bytes())
    with pytest.raises(ConfigurationError, match="does not open"):
        store.get("api-token.key")
    sealed = (secrets / "hub-code.key.sealed").read_text().strip()
    head, body = sealed.split(":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    (secrets / "hub-code.key.sealed").write_text(head + ":" + base64.b64encode(bytes(raw)).decode() + "\n")
    with pytest.raises(ConfigurationError, match="does not open"):
        store.get("hub-code.key")
    assert {"api-token.key", "hub-code.key"} <= set(store.names())
    with pytest.raises(ConfigurationError):
        store.create("../escape.key", "00")


def test_the_pin_is_never_read_from_config_and_a_wrong_one_is_refused(
    tmp_path: Path, pkcs11_env: SoftToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defends against the administrator keeping the PIN beside the data (config.json) and against a process
    that does not know the PIN using the token's session opened by another part of it."""
    config = NodeConfig(data_dir=tmp_path)
    config.keys = {"pkcs11_pin": pkcs11_env.pin}
    with pytest.raises(ConfigurationError):
        open_keystore(config)
    config.keys = {}
    monkeypatch.setenv("FLAGLEDGER_PKCS11_PIN", "wrong")
    with pytest.raises(ConfigurationError, match="PIN"):
        open_keystore(config)
    monkeypatch.delenv("FLAGLEDGER_PKCS11_PIN")
    with pytest.raises(ConfigurationError, match="no PIN"):
        open_keystore(config)
    pin_file = tmp_path / "pin"
    pin_file.write_text(pkcs11_env.pin + "\n")
    config.keys = {"pkcs11_pin_file": str(pin_file)}
    assert isinstance(open_keystore(config), Pkcs11KeyStore)


def test_an_adopted_key_is_imported_into_the_token_and_cannot_be_read_back(
    tmp_path: Path, pkcs11_env: SoftToken
) -> None:
    """Defends against a mounted PEM staying the node's only copy: the token keeps it (sensitive, not
    extractable) and signs with it; the key's private value cannot be read from the token."""
    import pkcs11

    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "mounted.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    store = open_keystore(NodeConfig(data_dir=tmp_path / "node"))
    assert isinstance(store, Pkcs11KeyStore)
    name = store.adopt_signing_key(pem)
    assert store.adopt_signing_key(pem) == name, "adopting twice keeps one copy"
    handle = store.signing_key(name)
    assert isinstance(handle, TokenSigningKey)
    signer = Signer(A, handle)
    key.public_key().verify(signer.sign(b"message"), b"message")
    assert signer.key_id == Signer(A, key).key_id
    with pytest.raises(pkcs11.exceptions.PKCS11Error):
        _ = handle._private[pkcs11.Attribute.VALUE]


def test_signing_from_many_threads_and_a_replaced_secret(tmp_path: Path, pkcs11_env: SoftToken) -> None:
    """Defends the administrator's import (a replaced pseudonym secret is read anew, never an old copy kept in
    memory) and the API's concurrent requests: the token's one session signs for many threads at once, every
    signature verifying."""
    store = open_keystore(NodeConfig(data_dir=tmp_path))
    name, key = store.new_signing_key(A)
    messages = [f"event {i}".encode() for i in range(64)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        signatures = list(pool.map(key.sign, messages))
    for message, signature in zip(messages, signatures, strict=True):
        key.public_key().verify(signature, message)
    assert store.signing_key(name).public_key() == key.public_key()
    store.replace("pseudonym.key", "11" * 32)
    assert store.get("pseudonym.key") == "11" * 32
    store.replace("pseudonym.key", "22" * 32)
    assert store.get("pseudonym.key") == "22" * 32


def test_the_hubs_code_mapping_secret_and_keys_are_in_the_token(tmp_path: Path, pkcs11_env: SoftToken) -> None:
    """Defends the hub's code map against a shell user on the hub's host: its person-id secret is a key inside the
    token (its HMAC computed there), its sealing key sealed by the token, its signing key signs inside it; a copy
    of the hub's directory holds none of them."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from ledger.runtime.roles import init_role, open_role

    hub = init_role(tmp_path / "hub", "hub")
    secret, sealing = hub.keys.secret, hub.keys.sealing
    assert not isinstance(secret, bytes), "the hub's process holds no person-id secret"
    assert isinstance(sealing, X25519PrivateKey)
    sealing_raw = sealing.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert isinstance(hub.keys.signer._private, TokenSigningKey)
    names = sorted(p.name for p in (tmp_path / "hub" / "secrets").iterdir())
    assert names == [".pkcs11-prefix", "linkage-sealing.key.sealed", "linkage-vrf.key.sealed"], names
    assert hub.vrf is not None  # the flag map's VRF key: sealed by the token too, only its public half published
    vrf_der = hub.vrf.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    vrf_p = hub.vrf.private_numbers().p.to_bytes(128, "big")
    everything = _all_bytes(tmp_path / "hub")
    for value in (sealing_raw, vrf_der, vrf_p):
        assert value not in everything and value.hex().encode() not in everything
    assert base64.b64encode(vrf_der) not in everything
    again = open_role(tmp_path / "hub")
    probe = b"flagledger/linkage/hub-person/1\x00hub\x00" + individual_number().encode()
    assert not isinstance(again.keys.secret, bytes) and again.keys.secret(probe) == secret(probe)
    assert again.own == hub.own and again.own.vrf_public_hex
    assert again.vrf is not None and again.vrf.private_numbers() == hub.vrf.private_numbers()
