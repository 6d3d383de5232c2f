"""Secrets used inside the PKCS#11 token (ledger.runtime.pkcs11_secrets) against SoftHSM2: HMAC keys (the
pseudonym secret, stream id keys, code secrets, the hub's person-id secret) and the data key-encryption key are
sensitive, non-extractable token objects; the HMAC and the data-key wrapping are computed inside the token and
equal the file backend's for the same secret.

Threat: an insider with the node's whole data directory and its secrets directory, but not the token's PIN, and
the shell user running the node's process (who can ask the token to compute, never to hand a key out).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
from pathlib import Path

import pytest

from ledger.errors import ConfigurationError, IntegrityError
from ledger.hub.person_ids import HUB_PERSON_KEY, KeyStorePersonIds, ensure_person_key
from ledger.linkage.codes import hub_person
from ledger.log.datakeys import AesKek, DataKeys
from ledger.log.stream_ids import StreamIds
from ledger.runtime.bootstrap import AgencySpec, init_node, open_node
from ledger.runtime.config import NodeConfig
from ledger.runtime.keystore import DATA_KEK, PSEUDONYM, FileKeyStore, Keys, open_keystore
from ledger.runtime.pkcs11_keystore import Pkcs11KeyStore
from ledger.runtime.pkcs11_secrets import PREFIX_FILE, TokenKek
from tests.support.people import individual_number
from tests.support.softhsm import SoftToken

A = "131016"


def _token_store(data_dir: Path) -> Pkcs11KeyStore:
    store = open_keystore(NodeConfig(data_dir=data_dir))
    assert isinstance(store, Pkcs11KeyStore)
    return store


def _assert_inside(store: Pkcs11KeyStore, name: str, *, made_inside: bool) -> None:
    """The key ``name`` is a token object the process cannot read, and no copy of it is in the directory."""
    import pkcs11

    attr = pkcs11.Attribute
    key = store.token_secret(name)
    assert key is not None, f"{name} is no token object"
    assert key[attr.SENSITIVE] is True and key[attr.EXTRACTABLE] is False
    assert key[attr.NEVER_EXTRACTABLE] is made_inside  # an imported one was in memory once
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        _ = key[attr.VALUE]
    with pytest.raises(pkcs11.exceptions.PKCS11Error):
        key[attr.EXTRACTABLE] = True
    assert not (store.directory / f"{name}.sealed").exists()
    with pytest.raises(ConfigurationError, match="never read out"):
        store.get(name)


def test_a_made_hmac_key_never_leaves_the_token(tmp_path: Path, pkcs11_env: SoftToken) -> None:
    """Shell user, insider: a new node's pseudonym secret, stream id key and the hub's person-id secret are made
    inside the token, sensitive and never extractable; reading their value fails; HMACs come from the token."""
    node = init_node(tmp_path / "node", [AgencySpec(A, "A市", "municipality")])
    try:
        x = individual_number()
        subject = node.app.subject(x)
        assert subject.startswith("p") and subject == node.app.subject(x)
    finally:
        node.close()
    store = _token_store(tmp_path / "node")
    for name in (PSEUDONYM, Keys.id_key_name(A)):
        _assert_inside(store, name, made_inside=True)
    ensure_person_key(store)
    _assert_inside(store, HUB_PERSON_KEY, made_inside=True)
    ids = KeyStorePersonIds(store)
    assert ids(x) == ids(x) and ids(x) != ids(individual_number())
    reopened = open_node(tmp_path / "node")
    try:
        assert reopened.app.subject(x) == subject, "the token's key is found again by its label"
    finally:
        reopened.close()


def test_an_imported_secret_gives_the_file_backend_s_results(
    tmp_path: Path, pkcs11_env: SoftToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Insider with a node made before (or a secret handed over): a sealed secret is imported on first use as a
    non-extractable key and its sealed copy deleted; pseudonyms, stream ids, hub person ids and the HMAC itself
    equal the file backend's for the same secret, so existing data still resolves."""
    shared = tmp_path / "pseudonym.key"
    shared.write_text(os.urandom(32).hex() + "\n")
    token = init_node(tmp_path / "token", [AgencySpec(A, "A市", "municipality")], pseudonym_key_file=shared)
    monkeypatch.setenv("FLAGLEDGER_KEYS_BACKEND", "file")
    plain = init_node(tmp_path / "plain", [AgencySpec(A, "A市", "municipality")], pseudonym_key_file=shared)
    try:
        numbers = [individual_number() for _ in range(5)]
        assert [token.app.subject(n) for n in numbers] == [plain.app.subject(n) for n in numbers]
    finally:
        token.close()
        plain.close()
    monkeypatch.setenv("FLAGLEDGER_KEYS_BACKEND", "pkcs11")
    store = _token_store(tmp_path / "token")
    _assert_inside(store, PSEUDONYM, made_inside=False)
    files = FileKeyStore(tmp_path / "files")
    data = b"flagledger stream id v1\x00protection\x00" + A.encode()
    for name in ("code.key", HUB_PERSON_KEY):  # made as a sealed file (a node from before), then used
        value = os.urandom(32).hex()
        store.create(name, value)
        files.create(name, value)
        assert (store.directory / f"{name}.sealed").exists()
        assert store.hmac(name, data) == files.hmac(name, data) == hmac.digest(bytes.fromhex(value), data, "sha256")
        _assert_inside(store, name, made_inside=False)
    x = individual_number()
    assert (
        KeyStorePersonIds(store)(x)
        == KeyStorePersonIds(files)(x)
        == hub_person(bytes.fromhex(files.get(HUB_PERSON_KEY)), x)
    )
    own, theirs = StreamIds({A: store.keyed_hash("code.key")}), StreamIds({A: bytes.fromhex(files.get("code.key"))})
    assert own.protection(A, "p" + "0" * 32) == theirs.protection(A, "p" + "0" * 32)
    assert hashlib.sha256(data).digest() != store.hmac("code.key", data)


def test_the_data_kek_wraps_inside_the_token_and_old_wraps_still_open(tmp_path: Path, pkcs11_env: SoftToken) -> None:
    """Insider with the data directory (datakeys.sqlite and the secrets directory): the per-subject data keys are
    wrapped by a key-encryption key inside the token; a node whose KEK was a sealed file keeps its data keys
    (imported, same wraps); the data directory copied to a node without the token's key opens none of them."""
    store = _token_store(tmp_path / "node")
    keys = Keys(store)
    assert isinstance(keys.data_wrapper(), TokenKek)
    # a node from before: its KEK a sealed file, its data keys wrapped in Python under it
    old = os.urandom(32)
    store.create(DATA_KEK, old.hex())
    before = DataKeys(tmp_path / "node" / "datakeys.sqlite", AesKek(old))
    ref, key = before.for_subject("p" + "1" * 32)
    before.close()
    after = DataKeys(tmp_path / "node" / "datakeys.sqlite", keys.data_wrapper())
    assert after.for_subject("p" + "1" * 32) == (ref, key), "a key wrapped before unwraps in the token"
    _assert_inside(store, DATA_KEK, made_inside=False)
    ref2, key2 = after.for_subject("p" + "2" * 32)
    after.close()
    assert key2 not in (tmp_path / "node" / "datakeys.sqlite").read_bytes()
    # a copy of the directory, opened without the token's key: nothing unwraps
    shutil.copytree(tmp_path / "node", tmp_path / "copy")
    (tmp_path / "copy" / "secrets" / PREFIX_FILE).write_text("another-node\n")  # the token, another node's label
    stolen = DataKeys(tmp_path / "copy" / "datakeys.sqlite", AesKek(os.urandom(32)))
    with pytest.raises(IntegrityError):
        stolen.for_subject("p" + "2" * 32)
    stolen.close()
    elsewhere = DataKeys(tmp_path / "copy" / "datakeys.sqlite", Keys(_token_store(tmp_path / "copy")).data_wrapper())
    with pytest.raises(IntegrityError):  # another node's KEK (made now, in the token, under its own label)
        elsewhere.for_subject("p" + "2" * 32)
    elsewhere.close()
    made = Keys(_token_store(tmp_path / "fresh"))
    wrapper = made.data_wrapper()
    wrapped = wrapper.wrap(key2, ref2)
    assert wrapper.unwrap(wrapped, ref2) == key2
    with pytest.raises(IntegrityError):
        wrapper.unwrap(wrapped, os.urandom(16))  # moved to another ref
    _assert_inside(_token_store(tmp_path / "fresh"), DATA_KEK, made_inside=True)


def test_the_data_directory_alone_opens_nothing(
    tmp_path: Path, pkcs11_env: SoftToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Insider with the whole data directory but not the PIN: the node does not open with the file backend (the
    directory holds no key files) nor with a wrong PIN; with the token it opens and derives the same ids."""
    node = init_node(tmp_path / "node", [AgencySpec(A, "A市", "municipality")])
    x = individual_number()
    try:
        subject = node.app.subject(x)
    finally:
        node.close()
    shutil.copytree(tmp_path / "node", tmp_path / "copy")
    monkeypatch.setenv("FLAGLEDGER_KEYS_BACKEND", "file")
    with pytest.raises(ConfigurationError):
        open_node(tmp_path / "copy")
    monkeypatch.setenv("FLAGLEDGER_KEYS_BACKEND", "pkcs11")
    monkeypatch.setenv("FLAGLEDGER_PKCS11_PIN", "0000")
    with pytest.raises(ConfigurationError, match="PIN"):
        open_node(tmp_path / "copy")
    monkeypatch.setenv("FLAGLEDGER_PKCS11_PIN", pkcs11_env.pin)
    again = open_node(tmp_path / "copy")
    try:
        assert again.app.subject(x) == subject
    finally:
        again.close()
