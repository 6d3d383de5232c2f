"""The auditor's period report on a held request the hub made the provider decide again (issue 19: a
``ProvisionRequest.Reopened``, ``consumers.linkage_decisions.reopen``), on SQLite and PostgreSQL.

Threat: an insider at the provider (or the perpetrator's query answered against the holders' advice) hiding
behind the record — the auditor must see the decision that stands, not the one the hub refused beside it. The
report's ``held.csv`` takes a request's outcome from the held-request view, which ``Reopened`` puts back to held
with its decision cleared (``projections.queues``): one row per hold, the second decision only.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from ledger.app import Actor
from ledger.audit.report import audit_report
from ledger.runtime.bootstrap import Node
from tests.conftest import B
from tests.integration.test_held_approval_binding import held_request
from tests.support.answers import release_decided
from tests.support.people import individual_number


def _decide(node: Node, rid: UUID, decision: str) -> None:
    app = node.app
    app.propose_decision(Actor(B, "rev"), rid, decision, "unknown")
    version = app.provision_request(rid).proposal_version
    assert version is not None
    app.approve_decision(Actor(B, "apr"), rid, version)


def test_a_reopened_request_reports_only_the_decision_that_stands(node: Node, tmp_path: Path) -> None:
    """B's request held, decided ``provide``, released; the hub refuses it (reopened, as the node records it on
    ``decide_again``); decided again ``refuse``. The report's held rows: one for the request, its outcome at the
    period's end and now ``refused``, no ``provided_manually`` anywhere in the section; before the second decision
    the same request reads ``held (pending)`` with no decider."""
    rid = held_request(node, individual_number())
    _decide(node, rid, "provide")
    release_decided(node.app)
    request = node.app.provision_request(rid)
    assert request.reopen()
    node.app.save_as(B, request)

    def held_rows(name: str) -> list[dict[str, str]]:
        end = datetime.now(UTC) + timedelta(minutes=1)
        audit_report(node, Actor(B, "aud"), end - timedelta(hours=1), end, tmp_path / name)
        with (tmp_path / name / "held.csv").open(encoding="utf-8", newline="") as fh:
            return [r for r in csv.DictReader(fh) if r["request_id"] == str(rid)]

    [waiting] = held_rows("reopened")
    assert (waiting["outcome_at_period_end"], waiting["outcome_now"], waiting["decided_by"]) == (
        "held (pending)",
        "held",
        "",
    )
    assert waiting["proposal"] == ""  # the refused decision's proposal is gone with it
    _decide(node, rid, "refuse")
    [row] = held_rows("decided_again")
    assert (row["outcome_at_period_end"], row["outcome_now"], row["decided_by"]) == ("refused", "refused", "apr")
    assert row["proposal"] == "refuse"
    with (tmp_path / "decided_again" / "held.csv").open(encoding="utf-8") as fh:
        assert "provided_manually" not in fh.read()
