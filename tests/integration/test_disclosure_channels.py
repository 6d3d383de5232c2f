"""Other channels (issue 21): the perpetrator's own disclosure request (開示請求) and the counter printout apply the
portal's one filter and are recorded, on SQLite and PostgreSQL (the ``node`` fixture).

The seed's case 1: X fled to C; C queries A about the perpetrator Q (X's spouse). The record names C as querier,
and C is where X lives now. While Q is flagged ``NON_DISCLOSURE`` (here by C), neither Q's disclosure request at
A nor a counter printout may name C, before or after release.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.app import Actor
from ledger.app.disclosures import disclosure_records
from ledger.audit.report import audit_report
from ledger.domain.disclosures import DisclosureRecord
from ledger.errors import PermissionDenied
from ledger.runtime.bootstrap import Node
from projections import views
from projections.views_disclosure import counter_printout, disclosure_document, render
from tests.conftest import A, B, C
from tests.support.approvals import approve_fully

ND = "NON_DISCLOSURE"


def protect(node: Node, agency: str, subject: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), subject, [ND])
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def release(node: Node, agency: str, subject: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), subject, [ND], kind="release", explanation="explained")
    approve_fully(node.app, agency, rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def query(node: Node, querier: str, provider: str, subject: str) -> str:
    return node.app.request_provision(
        Actor(querier, "counter"), provider, subject, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).request_id


def recorded(node: Node, agency: str) -> list[DisclosureRecord]:
    return disclosure_records(node.app, Actor(agency, "aud"))


def test_the_perpetrators_disclosure_request_and_a_printout_do_not_name_the_victims_municipality(
    node: Node, person: Any
) -> None:
    """Threat: the perpetrator, asking A (which C queried about him) for his own records while flagged."""
    q = person()
    before = query(node, B, A, q)  # made before the flag: hidden too (sticky, as on the portal)
    protect(node, C, q)
    query(node, C, A, q)  # the seed's case 1: C is where the victim lives now
    at_a = disclosure_document(node, Actor(A, "counter"), q, reference="開示-1")
    printed = counter_printout(node, Actor(B, "counter"), q)
    for doc in (at_a, printed):
        assert doc.records == () and doc.access == "self"
        for fmt in ("json", "csv", "text"):
            text = render(doc, fmt)
            assert C not in text and before not in text, fmt
    ours = recorded(node, A)
    assert [(r.staff, r.channel, r.shown, r.withheld, r.reference) for r in ours] == [
        ("counter", "disclosure", 0, 2, "開示-1")
    ], "who handled it, for whom, how many withheld"
    (theirs,) = recorded(node, B)
    assert (theirs.channel, theirs.shown, theirs.withheld) == ("printout", 0, 2)
    assert ours[0].subject == theirs.subject == node.app.subject(q)
    payload = json.dumps(vars(ours[0]), default=str)
    assert C not in payload and before not in payload, "the record counts what was withheld, never names it"

    release(node, C, q)
    after = query(node, C, A, q)
    again = disclosure_document(node, Actor(A, "counter"), q)
    assert [r.request_id for r in again.records] == [after], "released: only what was made after it is shown"
    assert recorded(node, A)[-1].withheld == 2


def test_the_auditors_report_lists_each_hand_out_with_its_counts_only(node: Node, person: Any, tmp_path: Path) -> None:
    """Threat: an insider handing records out unseen (every hand-out is in the auditor's report), and the
    perpetrator (the report's row counts what was withheld, never names it)."""
    q = person()
    protect(node, C, q)
    hidden = query(node, C, A, q)
    counter_printout(node, Actor(A, "counter"), q, reference="窓口-3")
    end = datetime.now(UTC) + timedelta(minutes=1)
    audit_report(node, Actor(A, "aud"), end - timedelta(hours=1), end, tmp_path / "report")
    with (tmp_path / "report" / "reads.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if "printout" in r["what"]]
    assert [(r["staff"], r["what"]) for r in rows] == [("counter", "printout: 0 shown, 1 withheld")]
    assert "窓口-3" in rows[0]["purpose"] and C not in str(rows) and hidden not in str(rows)


def test_one_filter_the_printout_is_the_portals_page_and_an_unflagged_person_sees_everything(
    node: Node, person: Any
) -> None:
    """Threat: the perpetrator (a channel with a rule of its own would reopen the leak the portal closes)."""
    p, y, stranger = person(), person(), person()
    mine = query(node, C, A, p)
    other = query(node, B, C, p)  # A took no part: not A's to disclose, but on the portal and the printout
    doc = disclosure_document(node, Actor(A, "counter"), p)
    assert [(r.request_id, r.querier, r.provider, r.outcome) for r in doc.records] == [(mine, C, A, "provided")]
    printed = counter_printout(node, Actor(A, "counter"), p)
    portal = views.portal_records(node, p, p)
    assert [r.request_id for r in printed.records] == [r.request_id for r in portal.records] == [mine, other]
    assert [r.withheld for r in recorded(node, A)] == [0, 0]

    node.app.register_proxy(Actor(A, "req"), p, y)
    assert counter_printout(node, Actor(A, "counter"), p, asked_by=y).access == "proxy"
    before = len(recorded(node, A))
    with pytest.raises(PermissionDenied) as refused:
        disclosure_document(node, Actor(A, "counter"), p, asked_by=stranger)
    assert refused.value.code == "not_entitled"
    with pytest.raises(PermissionDenied):  # an auditor hands out nothing
        counter_printout(node, Actor(A, "aud"), p)
    assert len(recorded(node, A)) == before, "a refused hand-out records nothing and shows nothing"


def test_a_barred_guardian_is_refused_the_childs_disclosure_and_printout(node: Node, person: Any) -> None:
    """Threat: the perpetrator as the child's guardian (親権者) asking at a counter for the child's records: the
    portal's access rule, guardian bars included, decides these channels too; refused, nothing recorded."""
    k, y = person(), person()
    node.app.register_proxy(Actor(A, "req"), k, y)
    protect(node, B, k)
    assert counter_printout(node, Actor(A, "counter"), k, asked_by=y).access == "proxy", "no bar yet"
    bar = node.app.propose_guardian_bar(Actor(B, "req"), k, y, "parent")
    node.app.approve_guardian_bar(Actor(B, "apr"), bar)
    before = len(recorded(node, A))
    for hand_out in (disclosure_document, counter_printout):
        with pytest.raises(PermissionDenied) as refused:
            hand_out(node, Actor(A, "counter"), k, asked_by=y)
        assert refused.value.code == "not_entitled"
    assert len(recorded(node, A)) == before
    assert counter_printout(node, Actor(A, "counter"), k).access == "self", "the child's own request still works"
