"""An erasure reaches other nodes (issue 22): the signed ``ErasureNotice`` is shared, and a peer drops what its
views hold of the erasing agency's events about the person, while its log still verifies.

Threat: an insider at a peer node reading its views after the erasing agency's retention ended; a peer agency
(another node) that would otherwise keep showing the erased agency's history of the person.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.audit.views_check import check_views
from ledger.runtime.bootstrap import Node
from ledger.runtime.erasure_scrub import scrub_after_erasure
from projections.timeline import timeline_events
from tests.conftest import A, B
from tests.support.approvals import approve_fully
from tests.support.ship import ship
from tests.support.staff import activate_second_administrator
from tests.support.trust import agency_pair


def _rows(node: Node, subject: str) -> list[tuple[str, str]]:
    t = timeline_events.c
    with node.engine.connect() as conn:
        return [(r.agency, r.event) for r in conn.execute(select(t.agency, t.event).where(t.subject == subject))]


def test_a_peer_drops_its_views_of_the_erasing_agencys_events_about_the_person(
    make_node: Callable[..., Node], tmp_path: Path, person: Callable[[], str]
) -> None:
    """Peer agency and insider at the peer: after the shared erasure notice, B's views hold none of A's events
    about the person (B's own stay), and both logs still verify."""
    a, b = agency_pair(make_node, tmp_path)
    activate_second_administrator(a, A)
    number = person()
    x = a.app.subject(number)
    a.app.open_case(Actor(A, "req"), number, notes="A's intake note")
    rid = a.app.request_flags(Actor(A, "req"), number, ["NON_DISCLOSURE"])
    approve_fully(a.app, A, rid, "apr", "")
    a.app.execute_request(Actor(A, "op"), rid)
    b.app.open_case(Actor(B, "req"), number, notes="B's own intake note")
    shipped = ship(a, b)
    assert {agency for agency, _ in _rows(b, x)} == {A, B}

    request = a.app.request_erasure(Actor(A, "admin"), x, "retention ended")
    a.app.approve_erasure(Actor(A, "admin2"), request)
    scrub_after_erasure(a)
    ship(a, b, shipped)

    assert [e for e in _rows(b, x) if e[0] == A] == []
    assert {e for _, e in _rows(b, x)} == {"ProtectionCase.Opened"}  # B's own case, under B's own key
    assert _rows(a, x) == []
    for node in (a, b):
        report = verify_log(node.app, workers=1)
        assert report.ok, report.first_bad
        assert check_views(node).first_difference is None
