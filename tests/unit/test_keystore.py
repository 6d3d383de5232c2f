"""Every secret of a node comes through one key store (ledger.runtime.keystore): the file backend keeps today's files
byte for byte, and a second backend serves a whole node without a caller knowing.

Threats: an insider with one agency's data directory (the secrets stay 0600 in a 0700 directory, and a
hardware backend can keep signing keys where no copy of the directory reaches them), and the administrator
upgrading a node (a data directory made before the key store must open and verify as it is).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.api.auth import sign_in, token_secret, verify_token
from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.cli.main import main
from ledger.errors import ConfigurationError
from ledger.runtime.bootstrap import AgencySpec, Node, init_node, open_node, rotate_key
from ledger.runtime.config import NodeConfig
from ledger.runtime.keystore import FileKeyStore, Keys, KeySettings, open_keystore
from tests.conftest import activate_admin, enrol, password_of
from tests.support.memory_keystore import MemoryKeyStore, as_key_store
from tests.support.people import individual_number

A, B = "131016", "131024"
REPO = Path(__file__).resolve().parents[2]
BEFORE_THE_KEY_STORE = "7b68d94d945888e50aa9fdf8cf9d37f73d8eb6d6"  # the commit before ledger/runtime/keystore.py


@pytest.fixture(autouse=True)
def _configured_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the file backend and the configured choice, also in a run whose environment keeps
    every other test's keys in a PKCS#11 token."""
    monkeypatch.delenv("FLAGLEDGER_KEYS_BACKEND", raising=False)


def _staff(node: Node, code: str) -> None:
    admin = Actor(code, "admin")
    activate_admin(node, code)
    enrol(node, admin, "req", ["requester"])
    enrol(node, admin, "apr", ["approver"])
    enrol(node, admin, "op", ["operator"])


def test_a_second_backend_serves_a_whole_node(tmp_path: Path) -> None:
    """Defends the promise that a hardware backend needs no caller changed: init, signing, verification,
    rotation, pseudonyms, stream ids and API tokens all work from an in-memory store, and no secret is a file."""
    store = MemoryKeyStore()
    data = tmp_path / "node"
    node = init_node(
        data, [AgencySpec(A, "A市", "municipality"), AgencySpec(B, "B市", "municipality")], keystore=as_key_store(store)
    )
    try:
        _staff(node, A)
        person = individual_number()
        rid = node.app.request_flags(Actor(A, "req"), person, ["NON_DISCLOSURE"])
        node.app.approve_request(Actor(A, "apr"), rid)
        node.app.execute_request(Actor(A, "op"), rid)
        first = node.app.signers[A].key_id
        assert rotate_key(node, Actor(A, "admin")) != first
        node.app.enroll_staff(Actor(A, "admin"), "aud", "aud", ["auditor"])  # signed with the new key
        token, principal = sign_in(node, A, "req", password_of(A, "req"), ttl=timedelta(minutes=5))
        assert verify_token(node, token).token_id == principal.token_id
        assert node.app.protection(A, node.app.subject(person)) is not None
        assert verify_log(node.app).ok
    finally:
        node.close()
    assert not (data / "secrets").exists(), "no secret reached the data directory"
    assert {"pseudonym.key", "cipher.key", f"{A}-id.key", f"{B}-id.key", "api-token.key"} <= set(store.names())
    assert all(key.signatures > 0 for key in store.keys.values()), "every key signed inside the store"
    reopened = open_node(data, keystore=store)
    try:
        assert verify_log(reopened.app).ok
        assert verify_token(reopened, token).actor == Actor(A, "req")
        assert reopened.app.protection(A, reopened.app.subject(person)) is not None
    finally:
        reopened.close()
    with pytest.raises(ConfigurationError, match="cannot read"):
        open_node(data)  # the configured (file) store holds none of it


def test_the_file_store_keeps_todays_files(tmp_path: Path) -> None:
    """Defends against an insider reading keys through loose modes, and an upgrade that rewrites key files."""
    node = init_node(tmp_path / "node", [AgencySpec(A, "A市", "municipality")], encryption=True)
    try:
        token_secret(node)  # made on first use, like the first sign-in makes it
        pem = node.config.agency(A).current_key["file"]
    finally:
        node.close()
    secrets = tmp_path / "node" / "secrets"
    assert os.stat(secrets).st_mode & 0o777 == 0o700
    files = {p.name: p for p in secrets.iterdir()}
    assert set(files) == {"pseudonym.key", "cipher.key", f"{A}-id.key", "api-token.key", pem}
    assert pem.startswith(f"{A}-") and pem.endswith(".pem")
    for path in files.values():
        assert os.stat(path).st_mode & 0o777 == 0o600, path.name
    for name in ("pseudonym.key", f"{A}-id.key", "api-token.key"):
        text = files[name].read_text()
        assert len(text) == 65 and text.endswith("\n") and bytes.fromhex(text.strip()), name
    assert len(files["cipher.key"].read_text()) == 45
    assert files[pem].read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert files[pem].read_bytes().endswith(b"-----END PRIVATE KEY-----\n")


def test_a_secret_is_made_once_and_names_stay_inside_the_directory(tmp_path: Path) -> None:
    """Defends the token secret from two first requests racing (each keeping its own), and the secrets directory
    from a name that walks out of it."""
    store = FileKeyStore(tmp_path / "secrets")
    store.create("api-token.key", "aa" * 32)
    store.create("api-token.key", "bb" * 32)
    assert store.get("api-token.key") == "aa" * 32
    assert store.names() == ["api-token.key"]
    for bad in ("../escape.key", "sub/dir.key", ".."):
        with pytest.raises(ConfigurationError):
            store.get(bad)
        with pytest.raises(ConfigurationError):
            store.create(bad, "cc" * 32)
    with pytest.raises(ConfigurationError):
        store.create(str(tmp_path / "outside.key"), "cc" * 32)  # an absolute name is read, never written
    assert not (tmp_path / "outside.key").exists() and not (tmp_path / "escape.key").exists()
    mounted = tmp_path / "mounted-cipher"
    mounted.write_text("c2VjcmV0\n")
    store = FileKeyStore(tmp_path / "secrets", {"cipher.key": mounted})
    store.create("cipher.key", "other")
    assert store.get("cipher.key") == "c2VjcmV0" and not (tmp_path / "secrets" / "cipher.key").exists()


def test_the_backend_is_chosen_by_config_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defends the administrator's choice from being silently ignored: an unknown backend stops the node."""
    config = NodeConfig(data_dir=tmp_path)
    assert isinstance(open_keystore(config), FileKeyStore)
    config.keys = {"backend": "hsm"}
    with pytest.raises(ConfigurationError, match="backend"):
        open_keystore(config)
    monkeypatch.setenv("FLAGLEDGER_KEYS_BACKEND", "file")
    assert isinstance(open_keystore(config), FileKeyStore), "the environment overrides config.json"
    monkeypatch.setenv("FLAGLEDGER_CIPHER_KEY_FILE", str(tmp_path / "mounted"))
    assert KeySettings.load({}).cipher_key_file == str(tmp_path / "mounted")
    assert Keys(open_keystore(config)).store.where("cipher.key") == str(tmp_path / "mounted")


OLD_NODE = """
import json, sys
from datetime import timedelta
from pathlib import Path
from ledger.app import Actor
from ledger.api.auth import issue_token
from ledger.cli.main import main
from ledger.bootstrap import AgencySpec, init_node
data, person = Path(sys.argv[1]), sys.argv[2]
node = init_node(data, [AgencySpec("131016", "A市", "municipality")], encryption=True)
admin = Actor("131016", "admin")
node.app.enroll_staff(admin, "req", "req", ["requester"])
node.app.enroll_staff(admin, "apr", "apr", ["approver"])
node.app.enroll_staff(admin, "op", "op", ["operator"])
rid = node.app.request_flags(Actor("131016", "req"), person, ["NON_DISCLOSURE"])
node.app.approve_request(Actor("131016", "apr"), rid)
node.app.execute_request(Actor("131016", "op"), rid)
token, _ = issue_token(node, admin, "req", ttl=timedelta(hours=1))
import ledger.bootstrap
print(json.dumps({"token": token, "subject": node.app.subject(person), "code": ledger.bootstrap.__file__}))
node.close()
"""


def test_a_data_directory_made_before_the_key_store_opens_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defends an upgrade (the administrator's): a data directory the code before the key store made opens with
    it unchanged — its signatures verify, its tokens, pseudonyms and stream ids are the same — and no key file
    is rewritten."""
    git = shutil.which("git")
    if (
        git is None
        or subprocess.run(
            [git, "-C", str(REPO), "cat-file", "-e", BEFORE_THE_KEY_STORE + "^{commit}"], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("the commit before the key store is not in this clone (shallow?)")
    old = tmp_path / "old-code"
    old.mkdir()
    archive = subprocess.run(
        [git, "-C", str(REPO), "archive", BEFORE_THE_KEY_STORE, "ledger", "projections", "consumers"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    data, person = tmp_path / "data", individual_number()
    env = {**os.environ, "PYTHONPATH": str(old)}
    made = subprocess.run(
        [sys.executable, "-c", OLD_NODE, str(data), person],
        cwd=old,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    before = json.loads(made.stdout.strip().splitlines()[-1])
    assert Path(before["code"]).is_relative_to(old), "the old code made it"
    files = {p.name: (p.read_bytes(), p.stat().st_mode) for p in (data / "secrets").iterdir()}
    node = open_node(data)
    try:
        assert Path(sys.modules["ledger.runtime.keystore"].__file__ or "").is_relative_to(REPO), "the new code opens it"
        assert verify_log(node.app).ok
        assert verify_token(node, before["token"]).actor == Actor(A, "req")
        assert node.app.subject(person) == before["subject"]
        assert node.app.protection(A, before["subject"]) is not None, "the stream id key finds the old stream"
        node.app.enroll_staff(Actor(A, "admin"), "aud", "aud", ["auditor"])  # signs with the old key file
        assert verify_log(node.app).ok
    finally:
        node.close()
    capsys.readouterr()
    assert main(["--data-dir", str(data), "audit", "verify", "--quiet"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["ok"] is True
    after = {p.name: (p.read_bytes(), p.stat().st_mode) for p in (data / "secrets").iterdir()}
    assert {n: after.get(n) for n in files} == files, "every secret the old code made is kept as it was"
    # the one added: the key-encryption key of per-subject data keys, made when the views first seal a cell
    assert set(after) - set(files) <= {"data-kek.key"}
    assert all(after[n][1] & 0o077 == 0 for n in set(after) - set(files))
