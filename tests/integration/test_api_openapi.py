"""The checked-in OpenAPI document (deploy/openapi.json) is the one the server serves, and fuzzing every
operation it describes with schemathesis gives no server error and only documented answers.

Regenerate the document after changing the API: ``.venv/bin/flagledger openapi --output deploy/openapi.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ledger.api import create_app
from ledger.app import Actor
from ledger.runtime.bootstrap import Node
from tests.conftest import A, B, C
from tests.support.api import client, token
from tests.support.people import individual_number

DOC = Path(__file__).resolve().parents[2] / "deploy" / "openapi.json"
SEED = int(os.environ.get("FLAGLEDGER_OPENAPI_SEED", "1"))
EXAMPLES = 8  # per operation and identity: ~21 operations x 2 identities x 8 keeps it well under a minute


def test_the_checked_in_document_is_the_served_one(sqlite_node: Node) -> None:
    served = client(sqlite_node).get("/openapi.json").json()
    assert json.loads(DOC.read_text()) == served, (
        "deploy/openapi.json is stale: run `.venv/bin/flagledger openapi --output deploy/openapi.json`"
    )


def _seed(node: Node) -> tuple[list[str], list[str]]:
    """Something for the fuzzer to find: a protected person, a held request, pending approvals.
    Returns valid subjects and existing request ids, which the fuzzer substitutes now and then to get past
    validation into the ledger."""
    app = node.app
    x, y = individual_number(), individual_number()
    rid = app.request_flags(Actor(B, "req"), x, ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    pending = app.request_flags(Actor(B, "req"), y, ["NON_DISCLOSURE"])
    held = app.request_provision(
        Actor(C, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    return [x, y, app.subject(x)], [str(rid), str(pending), held.request_id]


@pytest.mark.parametrize("who", [f"{B}/req", f"{A}/aud"])
def test_fuzzing_the_document_finds_no_server_error(sqlite_node: Node, who: str) -> None:
    node = sqlite_node
    subjects, ids = _seed(node)
    node.app.grant_role(Actor(A, "admin"), "aud", "counter")
    agency, staff = who.split("/")
    headers = {"Authorization": f"Bearer {token(node, agency, staff)}"}
    schema = schemathesis.openapi.from_dict(json.loads(DOC.read_text()))
    schema.app = create_app(node)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    seen: dict[int, int] = {}

    for operation in operations:
        strategy: Any = operation.as_strategy()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        # a fixed seed, not derandomize: that one derives the seed from this function's source, so reformatting
        # the file changed which cases were drawn (and the 201 below was no longer reached)
        @seed(SEED)
        @given(case=strategy, signed=st.sampled_from([True, True, True, False]), data=st.data())
        def run(case: Any, signed: bool, data: st.DataObject) -> None:
            if isinstance(case.body, dict) and data.draw(st.booleans()):
                for key in ("subject", "victim", "viewer"):
                    if key in case.body:
                        case.body[key] = data.draw(st.sampled_from(subjects))
                for key in ("provider", "municipality"):
                    if key in case.body:
                        case.body[key] = data.draw(st.sampled_from([A, B, C, "999999"]))
            if case.path_parameters and "request_id" in case.path_parameters and data.draw(st.booleans()):
                case.path_parameters["request_id"] = data.draw(st.sampled_from(ids))
            response = case.call(headers=headers if signed else None)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            case.validate_response(response, checks=checks)

        run()
    assert not any(code >= 500 for code in seen), seen
    expected = {200, 401, 403, 404, 422} | ({201} if staff == "req" else set())
    assert expected <= set(seen), f"the fuzzer reached too little of the API: {seen}"
