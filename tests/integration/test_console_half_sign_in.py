"""A staff key is held in the server only once the person has passed every factor they registered: the
password step of a sign-in opens the key but keeps it sealed (ledger/api/half_signed_in.py) until the security
key or the one-time code answers, and a sign-in abandoned after the password leaves nothing to sign with.
"""

from __future__ import annotations

import time

import pytest

from ledger.api import half_signed_in
from ledger.api.console_signin import PENDING_TTL
from ledger.app import Actor
from ledger.errors import PermissionDenied
from ledger.runtime.bootstrap import Node
from tests.conftest import B
from tests.integration.test_api_console import signed_in
from tests.integration.test_console_one_time_codes import _first_factor as password_step_for_codes
from tests.integration.test_console_one_time_codes import _register as register_codes
from tests.integration.test_console_security_keys import _first_factor as password_step_for_key
from tests.integration.test_console_security_keys import _key_step
from tests.integration.test_console_security_keys import _register as register_key
from tests.support.api import client
from tests.support.people import individual_number
from tests.support.soft_authenticator import SoftAuthenticator
from tests.support.staff import password_of

FLAGS = ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]


def _cannot_sign(node: Node, who: str) -> None:
    assert not node.app.holds_key(B, who), "no unlocked key for the person in this process"
    with pytest.raises(PermissionDenied) as refused:
        node.app.request_flags(Actor(B, who), individual_number(), FLAGS)
    assert refused.value.code == "staff_signature_required"


def test_a_password_without_its_one_time_code_unlocks_nothing(sqlite_node: Node) -> None:
    """Threat: a perpetrator (or colleague) who learnt a requester's password but not their phone — and a shell
    user reading the server's memory meanwhile: the password step alone leaves no key that signs an act, a
    wrong code adds none, an abandoned half sign-in is forgotten; the right code holds the key."""
    node = sqlite_node
    node.app.set_totp_allowed(Actor(B, "admin"), True)
    totp = register_codes(node, "req")
    node.app.lock(B, "req")  # (the test cast's keys are unlocked in this process: start as a fresh server)
    http = password_step_for_codes(node, "req")
    _cannot_sign(node, "req")
    assert half_signed_in.count(B, "req") == 1, "only the sealed half waits, its opening key in the browser"
    assert http.post("/console/login/code", data={"code": "000000"}).status_code == 401
    _cannot_sign(node, "req")
    assert half_signed_in.count(B, "req", now=time.monotonic() + PENDING_TTL + 31) == 0, "abandoned: forgotten"
    http = password_step_for_codes(node, "req")
    done = http.post("/console/login/code", data={"code": totp.at(time.time() + 30)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    assert node.app.holds_key(B, "req") and half_signed_in.count(B, "req") == 0
    assert node.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)


def test_a_password_without_its_security_key_unlocks_nothing(sqlite_node: Node) -> None:
    """Threat: a perpetrator with a stolen first factor but not the clerk's security key: nothing is signed
    with the clerk's staff key until the key answers, and another person's browser cannot claim it."""
    node, key = sqlite_node, SoftAuthenticator()
    http, csrf = signed_in(node, B, "req")
    assert register_key(http, csrf, key).status_code == 200
    node.app.lock(B, "req")
    half = password_step_for_key(node, "req")
    _cannot_sign(node, "req")
    assert _key_step(half, SoftAuthenticator()).status_code == 401, "a key that is not the clerk's"
    _cannot_sign(node, "req")
    assert _key_step(half, key).status_code == 200
    assert node.app.holds_key(B, "req")
    node.app.request_flags(Actor(B, "req"), individual_number(), FLAGS)


def test_the_api_sign_in_holds_the_key_only_with_the_right_code(sqlite_node: Node) -> None:
    """Threat: the same guesser at ``POST /api/v1/sign-in``: a right password with a wrong code (or someone
    who must use a security key) gets no token and leaves no key held."""
    node = sqlite_node
    node.app.set_totp_allowed(Actor(B, "admin"), True)
    register_codes(node, "req")
    node.app.lock(B, "req")
    body = {"agency": B, "staff": "req", "password": password_of(B, "req"), "code": "000000"}
    assert client(node).post("/api/v1/sign-in", json=body).status_code == 401
    _cannot_sign(node, "req")
    http, csrf = signed_in(node, B, "apr")
    assert register_key(http, csrf, SoftAuthenticator()).status_code == 200
    node.app.lock(B, "apr")
    body = {"agency": B, "staff": "apr", "password": password_of(B, "apr")}
    refused = client(node).post("/api/v1/sign-in", json=body)
    assert refused.status_code == 401 and "security key" in refused.json()["message"]
    assert not node.app.holds_key(B, "apr")
