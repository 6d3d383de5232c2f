"""``flagledger login``, ``whoami``, ``logout``: every staff command acts as the person signed in (issue 18).

Threat throughout: **a shell user** (or an administrator at the node's shell) typing ``--as`` someone else —
before, every command but the flag acts took ``--as`` at its word — and one holding the node's data directory
and every node secret, but not the person's session file. Each command here runs as a new ``flagledger``
process would: nothing unlocked in this test process (``fresh``), the person's password only where they type it.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from ledger.api.auth import Principal, _seal
from ledger.app import Actor
from ledger.app.credentials import _UNLOCKED, StaffSigner
from ledger.cli.main import main
from ledger.cli.session import session_path
from ledger.errors import AuthError
from ledger.runtime.bootstrap import Node, open_node
from ledger.runtime.tables import cli_sessions
from tests.conftest import B
from tests.support.people import individual_number
from tests.support.staff import password_of, run_in_process

A = "131016"
ADMIN, ADMIN2 = f"{A}/admin", f"{A}/admin2"


def fresh() -> None:
    """What a new process holds: no staff key unlocked."""
    _UNLOCKED.clear()


def cli(capsys: pytest.CaptureFixture[str], d: str, *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    """``flagledger --data-dir D ARGV`` as a new process, with only the environment the test set."""
    fresh()
    if stdin is not None:
        import io
        import sys

        saved, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        code = main(["--data-dir", d, *argv])
    except SystemExit as stop:
        code = int(stop.code or 0)
    finally:
        if stdin is not None:
            sys.stdin = saved
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def d(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, backend: str | None
) -> Iterator[str]:
    """A node (SQLite, or PostgreSQL for the ``cli_sessions`` table there) whose two administrators have
    activated their codes (tests/support/staff.py); no password in the environment afterwards."""
    data = str(tmp_path / "a")
    on = ["--database-url", backend] if backend else []
    argv = ["--data-dir", data, "init", "--agency", A, "--name", "A市", "--kind", "municipality"]
    code, _, err = run_in_process([*argv, "--second-admin", "admin2", *on], capsys)
    assert code == 0, err
    monkeypatch.delenv("FLAGLEDGER_PASSWORD", raising=False)
    yield data
    fresh()


def login(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, d: str, who: str, *extra: str
) -> dict[str, object]:
    agency, _, staff = who.partition("/")
    monkeypatch.setenv("FLAGLEDGER_PASSWORD", password_of(agency, staff))
    code, out, err = cli(capsys, d, "login", "--as", who, *extra)
    monkeypatch.delenv("FLAGLEDGER_PASSWORD")
    assert code == 0, err
    answer: dict[str, object] = json.loads(out)
    return answer


def rows(d: str) -> list[dict[str, object]]:
    opened = open_node(Path(d))
    try:
        with opened.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(cli_sessions))]
    finally:
        opened.close()


def sign_ins(d: str) -> list[tuple[str, str]]:
    opened = open_node(Path(d))
    try:
        return [
            (str(ev.staff), str(ev.via))  # type: ignore[attr-defined]
            for _, _, env in opened.app.envelopes()
            if env.header.topic.endswith("TokenGrant.Issued") and (ev := opened.app.signed_mapper.decode(env))
        ]
    finally:
        opened.close()


def test_login_writes_a_private_session_and_later_commands_act_and_sign_as_that_person(
    d: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shell user cannot read the session (0600 in a 0700 directory); the person signs without typing
    their password again, and the sign-in is recorded (``via cli_password``)."""
    answer = login(capsys, monkeypatch, d, ADMIN)
    path = Path(str(answer["session_file"]))
    assert path == session_path(Path(d)) and str(path).startswith(os.environ["FLAGLEDGER_CONFIG_DIR"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = path.read_text()
    assert password_of(A, "admin") not in saved and json.loads(saved)["key_secret"]
    assert (answer["agency"], answer["staff"], answer["roles"], answer["signs_with_session"]) == (
        A,
        "admin",
        ["administrator"],
        True,
    )
    assert ("admin", "cli_password") in sign_ins(d)

    code, out, _ = cli(capsys, d, "whoami")
    who = json.loads(out)
    assert code == 0 and (who["agency"], who["staff"], who["how"]) == (A, "admin", "session")
    assert who["expires_at"] == answer["expires_at"]

    # enrolling signs the person's code with the administrator's own key: opened from the session, no password
    code, out, err = cli(capsys, d, "staff", "enroll", "apr", "--role", "approver")
    assert code == 0, err
    assert json.loads(out)["enrolled"] == f"{A}/apr"
    code, out, _ = cli(capsys, d, "staff", "grants", "--as", ADMIN)  # --as naming the session's person: fine
    assert code == 0 and json.loads(out)["role"] == "approver"


def test_as_alone_is_refused_for_commands_that_sign_nothing(
    d: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four eyes means two authenticated people: a shell user typing the second administrator's name approves
    nothing, changes no permission or policy and asks for no identity link (exit 4, nothing recorded)."""
    login(capsys, monkeypatch, d, ADMIN)
    code, out, _ = cli(capsys, d, "staff", "enroll", "apr", "--role", "approver")
    (grant,) = json.loads(out)["pending_grants"]
    cli(capsys, d, "logout")
    before = len(sign_ins(d)), _position(d)
    for argv in (
        ["staff", "approve-grant", "--as", ADMIN2, grant["grant"]],
        ["permission", "grant", "--as", ADMIN, "counter", "audit"],
        ["policy", "approvals", "--as", ADMIN, "2"],
        [
            *("identity", "link", "--as", f"{A}/req", "--old", individual_number()),
            *("--new", individual_number(), "--reason", "notice seen"),
        ],
        ["staff", "deactivate", "--as", ADMIN, "admin2"],
    ):
        code, out, err = cli(capsys, d, *argv)
        assert (code, out) == (4, ""), (argv, err)
        assert "[not_signed_in]" in err and "flagledger login --as" in err, err
    assert (len(sign_ins(d)), _position(d)) == before, "nothing was recorded"

    # the scripts' path: --as with the person's own password signs them in for that one command (recorded)
    monkeypatch.setenv("FLAGLEDGER_PASSWORD", password_of(A, "admin2"))
    code, out, err = cli(capsys, d, "staff", "approve-grant", "--as", ADMIN2, grant["grant"])
    assert code == 0 and json.loads(out)["status"] == "approved", err
    assert sign_ins(d)[-1] == ("admin2", "cli_once_password")
    monkeypatch.setenv("FLAGLEDGER_PASSWORD", "not the second administrator's password")
    code, _, err = cli(capsys, d, "staff", "grants", "--as", ADMIN2)
    assert code == 4 and "[wrong_password]" in err


def _position(d: str) -> int:
    opened = open_node(Path(d))
    try:
        return opened.app.max_position()
    finally:
        opened.close()


def test_as_naming_someone_else_than_the_session_is_refused(
    d: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shell user who finds a signed-in terminal cannot act under a third name through it."""
    login(capsys, monkeypatch, d, ADMIN)
    code, out, err = cli(capsys, d, "staff", "grants", "--as", ADMIN2)
    assert (code, out) == (4, "") and "[session_mismatch]" in err and f"signed in as {ADMIN}" in err


def test_logout_ends_the_session_on_the_node_and_a_kept_copy_of_the_file_is_refused(
    d: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After logout the node keeps no sealed key, and a copy of the session file taken before opens nothing."""
    answer = login(capsys, monkeypatch, d, ADMIN)
    path = Path(str(answer["session_file"]))
    copy = path.read_text()
    (row,) = rows(d)
    assert row["sealed"] and row["ended_at"] is None
    code, out, _ = cli(capsys, d, "logout")
    assert code == 0 and json.loads(out) == {"signed_out": ADMIN, "node_session_ended": True}
    assert not path.exists()
    (row,) = rows(d)
    assert row["sealed"] is None and row["ended_at"], "the node-side copy of the key is gone"
    code, _, err = cli(capsys, d, "staff", "grants")
    assert code == 4 and "[not_signed_in]" in err
    path.write_text(copy)
    path.chmod(0o600)
    code, _, err = cli(capsys, d, "staff", "grants")
    assert code == 4 and "[session_ended]" in err and "signed out" in err


def test_an_expired_session_is_refused(
    d: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session file left behind (a shared terminal, a backup) stops working at its expiry."""
    login(capsys, monkeypatch, d, ADMIN, "--ttl", "30s")
    assert cli(capsys, d, "staff", "grants")[0] == 0
    monkeypatch.setenv("FLAGLEDGER_CLOCK_SKEW_SECONDS", "60")  # a minute later
    code, out, err = cli(capsys, d, "staff", "grants")
    assert (code, out) == (4, "") and "[session_ended]" in err and "expired" in err
    code, _, err = cli(capsys, d, "login", "--as", ADMIN, "--ttl", "13h")
    assert code == 2, "a session lasts at most 12 hours, like a token"


def test_the_node_side_key_opens_nothing_without_the_persons_session_file(
    d: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A shell user holding the data directory and every node secret (they can even mint a token for the
    session's id) but not the person's session file: the sealed staff key does not open, nothing is signed."""
    login(capsys, monkeypatch, d, ADMIN)
    (row,) = rows(d)
    sealed = json.loads(str(row["sealed"]))
    every_file = [p.read_bytes() for p in Path(d).rglob("*") if p.is_file()]
    for candidate in [*every_file, *(f[:32] for f in every_file), bytes(32)]:
        with pytest.raises(AuthError):
            StaffSigner.unseal_session(A, "admin", sealed, candidate, str(row["id"]))
    # a session file of their own making: a token minted with the node's secret, a secret of their choosing
    opened = open_node(Path(d))
    try:
        now = opened.app.clock()
        forged = _seal(
            opened, Principal(Actor(A, "admin"), ("administrator",), now + timedelta(hours=1), str(row["id"])), now
        )
    finally:
        opened.close()
    path = session_path(Path(d))
    entry = json.loads(path.read_text())
    monkeypatch.setenv("FLAGLEDGER_CONFIG_DIR", str(tmp_path / "shell-user"))
    theirs = session_path(Path(d))
    theirs.parent.mkdir(parents=True)
    theirs.write_text(json.dumps({**entry, "token": forged, "key_secret": os.urandom(32).hex()}))
    before = _position(d)
    code, out, err = cli(capsys, d, "staff", "enroll", "mallory", "--role", "counter")
    assert (code, out) == (4, "") and "does not open" in err, err
    assert _position(d) == before, "nothing enrolled, nothing signed"


def test_a_token_in_flagledger_token_or_given_to_login_signs_in(
    d: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token from the person's own sign-in (here ``staff token``; the console's works alike) stands for a
    session; acts that need their signature still ask for their password (a token carries no key)."""
    monkeypatch.setenv("FLAGLEDGER_PASSWORD", password_of(A, "admin"))
    code, out, _ = cli(capsys, d, "staff", "token", "--as", ADMIN)
    token = json.loads(out)["token"]
    monkeypatch.delenv("FLAGLEDGER_PASSWORD")
    monkeypatch.setenv("FLAGLEDGER_TOKEN", token)
    code, out, _ = cli(capsys, d, "whoami")
    assert code == 0 and (json.loads(out)["staff"], json.loads(out)["how"]) == ("admin", "token")
    assert cli(capsys, d, "staff", "grants")[0] == 0
    code, _, err = cli(capsys, d, "staff", "grants", "--as", ADMIN2)
    assert code == 4 and "[session_mismatch]" in err
    code, _, err = cli(capsys, d, "staff", "enroll", "apr", "--role", "counter")
    assert code == 4 and "[staff_signature_required]" in err, "no password here: nothing signed"
    monkeypatch.setenv("FLAGLEDGER_TOKEN", token[:-4] + "AAAA")
    code, _, err = cli(capsys, d, "staff", "grants")
    assert code == 4 and "[session_ended]" in err

    monkeypatch.delenv("FLAGLEDGER_TOKEN")
    code, out, err = cli(capsys, d, "login", "--with-token", stdin=token + "\n")
    assert code == 0 and json.loads(out)["signs_with_session"] is False, err
    code, out, _ = cli(capsys, d, "whoami")
    assert (json.loads(out)["staff"], json.loads(out)["how"]) == ("admin", "session")
    code, _, err = cli(capsys, d, "login", "--with-token", stdin="fl1.forged.token\n")
    assert code == 4


def test_signing_in_again_ends_the_session_the_file_held(
    d: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replaced session file leaves no live sealed key behind on the node for whoever copied the old file."""
    login(capsys, monkeypatch, d, ADMIN)
    login(capsys, monkeypatch, d, ADMIN2)
    ended, live = sorted(rows(d), key=lambda r: r["ended_at"] is None)
    assert (ended["staff"], ended["sealed"]) == ("admin", None) and ended["ended_at"]
    assert (live["staff"], live["ended_at"]) == ("admin2", None) and live["sealed"]
    code, out, _ = cli(capsys, d, "whoami")
    assert code == 0
    assert json.loads(out)["staff"] == "admin2"


def test_a_person_with_one_time_codes_signs_in_with_one(
    sqlite_node: Node, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second factor the person's policy requires is asked at `login` too (the API's own rule): a shell
    user who learnt a password, but holds no code, gets no session."""
    node, who = sqlite_node, Actor(B, "counter")
    node.app.set_totp_allowed(Actor(B, "admin"), True)
    totp = pyotp.TOTP(pyotp.random_base32())
    node.app.register_one_time_codes(who, totp.secret, totp.now())
    d = str(node.config.data_dir)
    monkeypatch.setenv("FLAGLEDGER_PASSWORD", password_of(B, "counter"))
    code, out, err = cli(capsys, d, "login", "--as", f"{B}/counter")
    assert (code, out) == (4, "") and "one-time code" in err and not session_path(Path(d)).exists()
    code, out, err = cli(capsys, d, "login", "--as", f"{B}/counter", "--code", totp.at(time.time() + 30))
    assert code == 0 and json.loads(out)["staff"] == "counter", err
    assert ("counter", "cli_password_totp") in sign_ins(d)


def test_the_http_api_refuses_the_token_of_a_session_signed_out_of(
    d: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threat: a shell user (or anyone) holding a copy of a session file's token after its person signed out:
    the API refuses it as the CLI does, not only at its expiry."""
    from uuid import uuid4

    from fastapi.testclient import TestClient

    from ledger.api.app import create_app

    answer = login(capsys, monkeypatch, d, ADMIN)
    token = json.loads(Path(str(answer["session_file"])).read_text())["token"]
    where = f"/api/v1/flag-requests/{uuid4()}"
    opened = open_node(Path(d))
    try:
        with TestClient(create_app(opened)) as http:
            before = http.get(where, headers={"Authorization": f"Bearer {token}"})
            assert before.status_code == 404, before.text  # signed in: only the request is unknown
            assert cli(capsys, d, "logout")[0] == 0
            after = http.get(where, headers={"Authorization": f"Bearer {token}"})
            assert after.status_code == 401 and after.json()["code"] == "session_ended", after.text
    finally:
        opened.close()
