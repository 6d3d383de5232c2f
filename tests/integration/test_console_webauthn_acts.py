"""Each flag act in the console signed by the person's own security key (docs/staff-signing.md, "Security
keys"): registering a key certifies it in the roster under the person's staff key; request, approval and
execution each carry a WebAuthn assertion over the act's statement, which the app, a peer's ingest and ``audit
verify`` check against that certification. A software authenticator plays the keys
(tests/support/soft_authenticator.py); real Chromium: tests/e2e/test_console_security_key_browser.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from ledger.app import Actor
from ledger.app.credentials import WebAuthnProof
from ledger.audit.verify import verify_log
from ledger.domain.roster import StaffRoster
from ledger.domain.staff_acts import APPROVED, EXECUTED, note_digest, security_key_statement
from ledger.errors import IntegrityError, PermissionDenied
from ledger.log.staff_roster import check_evidence
from ledger.runtime.bootstrap import Node
from tests.conftest import B
from tests.integration.test_api_console import signed_in
from tests.integration.test_console_security_keys import ORIGIN, _first_factor, _key_step, _register
from tests.integration.test_staff_signing import (  # noqa: F401 (pair: the fixture)
    FLAGS,
    deliver,
    forge_execution,
    pair,
    shell_user_key,
)
from tests.support.people import individual_number
from tests.support.soft_authenticator import SoftAuthenticator
from tests.support.staff import password_of

RP = "testserver"
RP_HASH = hashlib.sha256(RP.encode()).hexdigest()


def with_key(node: Node, staff: str, key: SoftAuthenticator) -> tuple[TestClient, str]:
    """``staff`` registers ``key`` in the console (signed in with their password), then signs in with
    password + key: the session their acts are made in."""
    http, csrf = signed_in(node, B, staff)
    assert _register(http, csrf, key).status_code == 200
    http = _first_factor(node, staff)
    assert _key_step(http, key).status_code == 200
    home = http.get("/console/")
    field = re.search(r'<meta name="csrf" content="([0-9a-f]{64})">', home.text)
    assert field is not None
    return http, field.group(1)


def signed_form(http: TestClient, key: SoftAuthenticator, action: str, form: dict[str, Any]) -> Any:
    """What webauthn.js does for a form marked data-sign-act: options from ``action``/options, the key's
    assertion over that challenge, then the form with the assertion (and any field the options name)."""
    options = http.post(action + "/options", data=form)
    assert options.status_code == 200, options.text
    body = options.json()
    assertion = key.get(body["publicKey"], ORIGIN)
    response = {k: assertion["response"][k] for k in ("clientDataJSON", "authenticatorData", "signature")}
    sent = {**form, **body["fields"], "assertion": json.dumps({**assertion, "response": response})}
    return http.post(action, data=sent, follow_redirects=False)


def test_request_approve_execute_each_signed_by_the_persons_own_security_key(sqlite_node: Node) -> None:
    """Threat: an administrator and a shell user. Once a person's key is certified, the console never signs
    for them with the staff key unlocked in the server: each act carries their key's assertion over that act,
    checked as a peer checks it; an act sent without one is refused."""
    node, x = sqlite_node, individual_number()
    keys = {who: SoftAuthenticator() for who in ("req", "apr", "op")}
    sessions = {who: with_key(node, who, keys[who]) for who in keys}
    assert {who: len(node.app.certified_security_keys(B, who)) for who in keys} == {"req": 1, "apr": 1, "op": 1}

    http, csrf = sessions["req"]
    page = http.get("/console/requests/new").text
    assert "data-sign-act" in page and 'name="assertion"' in page
    form = {"csrf": csrf, "subject": x, "flags": FLAGS, "kind": "set", "reason": "dv"}
    unsigned = http.post("/console/requests/new", data=form, follow_redirects=False)
    assert unsigned.status_code == 403, "no assertion: the server-held key does not sign for a key holder"
    done = signed_form(http, keys["req"], "/console/requests/new", form)
    assert done.status_code == 303, done.text
    (rid,) = [r for r in _requests(node)]
    http, csrf = sessions["apr"]
    assert signed_form(http, keys["apr"], f"/console/approvals/{rid}/approve", {"csrf": csrf}).status_code == 303
    http, csrf = sessions["op"]
    wrong_key = signed_form(http, keys["apr"], f"/console/approvals/{rid}/execute", {"csrf": csrf})
    assert wrong_key.status_code == 403, "the approver's key, in the operator's session"
    assert signed_form(http, keys["op"], f"/console/approvals/{rid}/execute", {"csrf": csrf}).status_code == 303

    request = node.app.flag_request(rid)
    assert (request.status, request.requested_by, request.approvals, request.decided_by) == (
        "executed",
        "req",
        ["apr"],
        "op",
    )
    (flags_set,) = [
        vars(node.app.signed_mapper.decode(env))
        for _, _, env in node.app.envelopes()
        if env.header.topic.endswith("Protection.FlagsSet")
    ]
    acts = flags_set["evidence"]["acts"]
    assert all("authenticator_data" in a and "client_data" in a for a in acts), "every act is an assertion"
    assert check_evidence(node.app.roster(B), "FlagsSet", flags_set) is None
    assert verify_log(node.app, workers=1).staff_findings == []


def _requests(node: Node) -> list[UUID]:
    return [
        UUID(str(node.app.signed_mapper.decode(env).originator_id))
        for _, _, env in node.app.envelopes()
        if env.header.topic.endswith("FlagRequest.Requested")
    ]


def _proof(node: Node, staff: str, key: SoftAuthenticator, statement: bytes) -> WebAuthnProof:
    (cert,) = node.app.certified_security_keys(B, staff)
    return WebAuthnProof(cert.key_id, **key.sign_statement(statement))


def test_a_forged_or_replayed_assertion_is_refused_parked_and_named(pair: tuple[Node, Node]) -> None:  # noqa: F811
    """Threat: a shell user with every secret of B's node (no password, no security key) writes "approved by
    apr" with (a) an assertion from an authenticator of their own under apr's certified key id and (b) apr's
    genuine assertion copied from another request. The app refuses, peer C parks the flag change
    (``staff_signature``), ``audit verify`` names each event."""
    b, c = pair
    app = b.app
    apr_key = SoftAuthenticator("EdDSA")
    app.register_security_key(Actor(B, "apr"), apr_key.credential, apr_key.cose_key, 0, RP_HASH)
    first = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    statement = app.act_statement_for(Actor(B, "apr"), first, APPROVED)
    app.approve_request(Actor(B, "apr"), first, proof=_proof(b, "apr", apr_key, statement))
    app.execute_request(Actor(B, "op"), first)
    assert deliver(b, c) == {}, "the genuine assertion is accepted by the peer"
    start = app.max_position()

    second = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    mine = SoftAuthenticator()
    forged = _proof(b, "apr", mine, app.act_statement_for(Actor(B, "apr"), second, APPROVED))
    with pytest.raises(PermissionDenied) as refused:
        app.approve_request(Actor(B, "apr"), second, proof=forged)
    assert refused.value.code == "staff_signature"
    genuine = next(a for a in app.flag_request(first).acts if a["act"] == APPROVED)
    replayed = {k: v for k, v in genuine.items() if k not in ("act", "staff", "note")}
    request = app.flag_request(second)
    request._approved(by="apr", note="", staff_signature=replayed)  # the event itself: no check
    app.save_as(B, request)
    with pytest.raises(IntegrityError) as at_execution:
        app.execute_request(Actor(B, "op"), second)
    assert at_execution.value.code == "staff_signature" and "another statement" in str(at_execution.value)
    op = app.signer_for(Actor(B, "op"))
    executed = {"act": EXECUTED, "staff": "op", "note": note_digest("")}
    executed |= op.sign(app.act_statement_for(Actor(B, "op"), second, EXECUTED))
    forge_execution(b, second, [executed])
    parked = deliver(b, c, start)
    assert parked["Protection.FlagsSet"].code == "staff_signature"
    assert "another statement" in parked["Protection.FlagsSet"].reason
    report = verify_log(app, workers=1)
    assert not report.ok and report.first_bad is not None and report.first_bad.code == "staff_signature"
    named = {f.topic.rsplit(":", 1)[1]: f.reason for f in report.staff_findings}
    assert "another statement" in named["FlagRequest.Approved"] and "another statement" in named["Protection.FlagsSet"]


def test_a_security_key_the_node_certified_by_itself_certifies_nothing(pair: tuple[Node, Node]) -> None:  # noqa: F811
    """Threat: a shell user writes SecurityKeyCertified for apr with the node key — an authenticator of their
    own, "signed" by a staff key of their own — and a peer agency sends the same as its own event. Every reader
    ignores it: the app signs nothing with it, C parks it, ``audit verify`` names it."""
    b, c = pair
    app = b.app
    deliver(b, c)
    start = app.max_position()
    mine = SoftAuthenticator()
    roster = app.find(StaffRoster, StaffRoster.create_id(B))
    assert roster is not None
    key_id = f"{B}:{secrets.token_hex(8)}"
    apr_staff_key = app.roster(B).current_key("apr")  # type: ignore[union-attr]
    assert apr_staff_key is not None
    statement = security_key_statement(B, "apr", key_id, mine.credential, mine.cose_key, RP_HASH)
    cert = {
        "staff": "apr",
        "key_id": key_id,
        "credential": mine.credential,
        "cose_key": mine.cose_key,
        "rp_id_hash": RP_HASH,
        "certified_by": apr_staff_key.key_id,  # apr's real staff key named, but the shell user's signature
        "signature": shell_user_key(B).sign(statement)["signature"],
    }
    roster.certify_security_key(security_key=cert)  # the event itself: the roster check is what is skipped
    app.save_as(B, roster)
    assert app.certified_security_keys(B, "apr") == [], "the node's own fold ignores it"
    rid = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    proof = WebAuthnProof(key_id, **mine.sign_statement(app.act_statement_for(Actor(B, "apr"), rid, APPROVED)))
    with pytest.raises(PermissionDenied):
        app.approve_request(Actor(B, "apr"), rid, proof=proof)
    parked = deliver(b, c, start)
    assert parked["StaffRoster.SecurityKeyCertified"].code == "staff_signature"
    assert "signature on the security key does not verify" in parked["StaffRoster.SecurityKeyCertified"].reason
    report = verify_log(app, workers=1)
    assert any("does not verify" in f.reason for f in report.staff_findings)


def test_a_removed_key_or_a_replaced_staff_key_ends_the_certification_and_signing_in_renews_it(
    sqlite_node: Node,
) -> None:
    """Threat: an administrator and a shell user. A lost key removed, or a staff key replaced by a new
    enrolment (a forgotten, perhaps guessed, password), ends what it certified from that point of the log on;
    the person's next sign-in with password + their key certifies the key again under the new staff key."""
    node, app = sqlite_node, sqlite_node.app
    key = SoftAuthenticator()
    with_key(node, "apr", key)
    (before,) = app.certified_security_keys(B, "apr")
    code = app.issue_enrolment_code(Actor(B, "admin"), "apr")
    app.activate_credential(B, "apr", code, password_of(B, "apr"))
    assert app.certified_security_keys(B, "apr") == [], "the replaced staff key's certifications end with it"
    rid = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    statement = app.act_statement_for(Actor(B, "apr"), rid, APPROVED)
    with pytest.raises(PermissionDenied):
        app.approve_request(Actor(B, "apr"), rid, proof=WebAuthnProof(before.key_id, **key.sign_statement(statement)))
    http = _first_factor(node, "apr")
    assert _key_step(http, key).status_code == 200
    (after,) = app.certified_security_keys(B, "apr")
    assert after.key_id != before.key_id and after.certified_by == app.roster(B).current_key("apr").key_id  # type: ignore[union-attr]
    app.approve_request(Actor(B, "apr"), rid, proof=_proof(node, "apr", key, statement))
    app.remove_security_key(Actor(B, "apr"), "apr", key.credential)
    assert app.certified_security_keys(B, "apr") == [], "removing the key revokes its certification"
    second = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    statement = app.act_statement_for(Actor(B, "apr"), second, APPROVED)
    with pytest.raises(PermissionDenied):
        app.approve_request(Actor(B, "apr"), second, proof=WebAuthnProof(after.key_id, **key.sign_statement(statement)))
