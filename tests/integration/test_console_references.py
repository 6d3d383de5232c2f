"""Persons on console pages by the agency's own reference number (宛名番号), agencies by name (issue 21): never the
pseudonym, never the individual number, and one agency's numbers never on another's pages."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from ledger.runtime.bootstrap import Node
from ledger.runtime.tables import reference_numbers
from tests.conftest import A, B, C
from tests.integration.test_api_commands import Api
from tests.integration.test_api_console import signed_in


def test_a_reference_given_at_intake_names_the_person_on_every_page(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: insider / shoulder-surfer at the agency — a pseudonym or an individual number on a screen or a
    printout spreads the number; staff who cannot tie a row to their own records act on the wrong person."""
    node, x = sqlite_node, person()
    pseudonym = node.app.subject(x)
    http, csrf = signed_in(node, B, "req")
    form = {"subject": x, "flags": ["NON_DISCLOSURE"], "kind": "set", "reason": "dv", "reference": "B-000123"}
    r = http.post("/console/requests/new", data={**form, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    apr, _ = signed_in(node, B, "apr")
    page = apr.get("/console/approvals").text
    assert "B-000123" in page and pseudonym not in page and x not in page
    assert "宛名番号未登録" not in page
    with node.engine.connect() as conn:
        rows = conn.execute(select(reference_numbers.c.agency, reference_numbers.c.subject)).all()
    assert rows == [(B, pseudonym)], "kept under the pseudonym, for B only: no individual number stored"
    # C protects nothing about x and never learns B's number; A's held request at C shows A's name, not its code
    Api(node).protect(C, x, ["NO_AUTO_RESPONSE"])
    q = Api(node).post(
        f"{A}/counter",
        "/provision-requests",
        {"provider": C, "subject": x, "legal_item": 74, "procedure": "児童手当", "info_kind": "地方税関係情報"},
        201,
    )["request_id"]
    rev, _ = signed_in(node, C, "rev")
    held = rev.get("/console/held").text
    assert "B-000123" not in held and pseudonym not in held and x not in held
    assert q in held and "宛名番号未登録" in held and "A市" in held and f"<td>{A}</td>" not in held


def test_a_mistyped_or_misplaced_reference_is_refused_before_anything_is_requested(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: insider (careless) — an individual number typed as the 宛名番号 would be kept and shown on every
    page; it is refused and the flag request is not made (nothing half done)."""
    node, x = sqlite_node, person()
    http, csrf = signed_in(node, B, "req")
    form = {"subject": x, "flags": ["NON_DISCLOSURE"], "kind": "set", "reason": "dv", "csrf": csrf}
    r = http.post("/console/requests/new", data={**form, "reference": x})
    assert r.status_code == 422 and "個人番号" in r.text
    assert Api(node).get(f"{B}/apr", "/queue")["approvals"] == []
    r = http.post("/console/references", data={"subject": x, "reference": "<b>", "csrf": csrf})
    assert r.status_code == 422 and "<b>" not in r.text
    with node.engine.connect() as conn:
        assert conn.execute(select(reference_numbers)).all() == []


def test_the_reference_page_needs_the_requester_role_and_the_form_field(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: another site (forged form) or a colleague without the requester role relabelling persons, so a
    protection act lands on the wrong person."""
    node, x = sqlite_node, person()
    http, csrf = signed_in(node, B, "req")
    assert http.get("/console/references").status_code == 200
    forged = http.post("/console/references", data={"subject": x, "reference": "9", "csrf": "0" * 64})
    assert forged.status_code == 403
    clerk, clerk_csrf = signed_in(node, B, "counter")
    assert clerk.get("/console/references").status_code == 403
    assert (
        clerk.post("/console/references", data={"subject": x, "reference": "9", "csrf": clerk_csrf}).status_code == 403
    )
    ok = http.post(
        "/console/references", data={"subject": x, "reference": "７７", "csrf": csrf}, follow_redirects=False
    )
    assert ok.status_code == 303
    other = http.post("/console/references", data={"subject": "999999999991", "reference": "77", "csrf": csrf})
    assert other.status_code == 422, "one number names one person"
    Api(node).protect(B, x, ["NON_DISCLOSURE"])
    counter = clerk.post("/console/counter", data={"subject": x, "csrf": clerk_csrf}).text
    assert "77" in counter and node.app.subject(x) not in counter
