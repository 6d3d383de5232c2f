"""A flag act whose staff signature does not verify is refused over HTTP as the caller's fault (403, with the
code), not reported as an outage of the store (503); a store that really cannot be trusted still answers 503.

Threat: an administrator or a shell user with the node's secrets writing an approval with the node key (no
person's signature) and having it executed through the API: refused, and the refusal says why.
"""

from __future__ import annotations

from ledger.api.errors import error_body, status_for
from ledger.app import Actor
from ledger.errors import ChainError, IntegrityError, StorageError
from ledger.runtime.bootstrap import Node
from tests.conftest import B
from tests.support.api import auth, client
from tests.support.people import individual_number

FLAGS = ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]


def test_executing_an_approval_no_certified_person_signed_is_403_staff_signature(sqlite_node: Node) -> None:
    """Threat: a shell user (no password) records "approved by apr" with the node key alone, then asks an
    operator's session to execute: 403 ``staff_signature``, nothing executed."""
    app = sqlite_node.app
    rid = app.request_flags(Actor(B, "req"), individual_number(), FLAGS)
    request = app.flag_request(rid)
    request._approved(by="apr", note="", staff_signature=None)  # the event method itself: no signature
    app.save_as(B, request)
    refused = client(sqlite_node).post(
        f"/api/v1/flag-requests/{rid}/execute", json={}, headers=auth(sqlite_node, B, "op")
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "staff_signature"
    assert "certified staff member" in refused.json()["message"]
    assert app.flag_request(rid).status != "executed"


def test_real_integrity_faults_of_the_store_stay_503() -> None:
    """Threat: none — an operator must still see a broken chain or a failed database as the server's fault
    (503, nothing of the exception's text in the body), not as a refused request."""
    for exc in (ChainError("stream x does not chain"), IntegrityError("the log cannot be trusted"), StorageError("db")):
        assert status_for(exc) == 503
        assert "does not chain" not in error_body(exc)["message"]
    signed = IntegrityError("flag request r: the approver apr is not certified", code="staff_signature")
    assert status_for(signed) == 403 and error_body(signed)["code"] == "staff_signature"
    assert "apr" not in error_body(signed)["message"]  # a refusal's wording is fixed: no staff id or agency
