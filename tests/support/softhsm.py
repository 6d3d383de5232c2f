"""A SoftHSM2 token of the test run's own (deploy/hsm-deps.sh installs Debian's softhsm2), for the PKCS#11 key
store (ledger.runtime.pkcs11_keystore).

One token for the whole run, in a temporary directory named by SOFTHSM2_CONF: the PKCS#11 library reads that
file once, when it is first loaded, and sees no token made after that in the process. Nodes sharing the token
keep their own sealed secrets (in their data directories) and their own signing keys (labelled by fingerprint).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
LABEL, PIN, SO_PIN = "flagledger-test", "4721-test", "so-9043-test"


SUITE_SWITCH = "FLAGLEDGER_TEST_KEYS"  # "pkcs11": the whole run with every node's keys in a fresh SoftHSM2 token


def suite_token() -> None:
    """With ``FLAGLEDGER_TEST_KEYS=pkcs11`` (docs/keys.md): make one fresh token for this run, before anything
    loads the PKCS#11 library, and name it in the environment, so every node a test makes — in this process or
    in a subprocess it starts — keeps its keys there (each node's objects under its own label prefix). A test
    that picks a backend (``keys_backend``) still runs both. Called by tests/conftest.py's pytest_configure."""
    if os.environ.get(SUITE_SWITCH, "") != "pkcs11":
        return
    module, util = _module(), shutil.which("softhsm2-util")
    if module is None or util is None:
        raise pytest.UsageError(f"{SUITE_SWITCH}=pkcs11 but softhsm2 is not installed: run deploy/hsm-deps.sh")
    base = Path(tempfile.mkdtemp(prefix="flagledger-softhsm-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [util, "--init-token", "--free", "--label", LABEL, "--pin", PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
    )
    os.environ.update(SoftToken(module, LABEL, PIN, base / "tokens").environment())


@dataclass(frozen=True)
class SoftToken:
    module: str
    label: str
    pin: str
    tokens: Path  # the token directory: what a shell user on the HSM's host (not the node's) would see

    def environment(self) -> dict[str, str]:
        """The node's environment naming this token (the PIN by variable, never in config.json)."""
        return {
            "FLAGLEDGER_KEYS_BACKEND": "pkcs11",
            "FLAGLEDGER_PKCS11_MODULE": self.module,
            "FLAGLEDGER_PKCS11_TOKEN": self.label,
            "FLAGLEDGER_PKCS11_PIN": self.pin,
        }


def _module() -> str | None:
    return next((m for m in MODULES if Path(m).exists()), None)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftToken]:
    module, util = _module(), shutil.which("softhsm2-util")
    given = {name: os.environ.get(f"FLAGLEDGER_PKCS11_{name}", "") for name in ("MODULE", "TOKEN", "PIN")}
    if all(given.values()) and os.environ.get("SOFTHSM2_CONF"):
        # the whole run has its keys in a token the caller made: the library reads one SOFTHSM2_CONF per process
        conf = Path(os.environ["SOFTHSM2_CONF"])
        yield SoftToken(given["MODULE"], given["TOKEN"], given["PIN"], conf.parent / "tokens")
        return
    if module is None or util is None:
        pytest.skip("softhsm2 is not installed (deploy/hsm-deps.sh installs it as root): PKCS#11 tests not run")
    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [util, "--init-token", "--free", "--label", LABEL, "--pin", PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
    )
    yield SoftToken(module, LABEL, PIN, tokens)
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before


@pytest.fixture
def pkcs11_env(softhsm: SoftToken, monkeypatch: pytest.MonkeyPatch) -> SoftToken:
    """Every node this test opens keeps its keys in the run's SoftHSM2 token."""
    for name, value in softhsm.environment().items():
        monkeypatch.setenv(name, value)
    return softhsm


@pytest.fixture(params=["file", "pkcs11"])
def keys_backend(request: pytest.FixtureRequest) -> str:
    """The test runs once with keys in files and once with keys in the SoftHSM2 token."""
    backend: str = request.param
    if backend == "pkcs11":
        request.getfixturevalue("pkcs11_env")
    else:  # even where the run's environment names a token (the suite run with keys in SoftHSM2)
        request.getfixturevalue("monkeypatch").setenv("FLAGLEDGER_KEYS_BACKEND", "file")
    return backend


@pytest.fixture
def file_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test reads the file backend's own files: its nodes keep their keys in files even in a run with keys in
    SoftHSM2 (``FLAGLEDGER_TEST_KEYS=pkcs11``). Put it before the node fixtures (``usefixtures``)."""
    monkeypatch.setenv("FLAGLEDGER_KEYS_BACKEND", "file")
