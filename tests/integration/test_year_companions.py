"""Companions, guardians and perpetrators on a case (issue 21, docs/year.md), told through the application on
SQLite: X flees from A to B with her child K; Y, the perpetrator, is K's parent (親権者).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.domain.cases import ProtectionCase
from ledger.domain.flags import FlagRequest
from ledger.errors import Code, InputError, PermissionDenied, StateConflict
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import AgencySpec, Node
from projections import views
from tests.conftest import A, B, C, NodeFactory
from tests.support.people import individual_number
from tests.support.trust import trust

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
LATER = date.today() + timedelta(days=500)


def protect(node: Node, who: str, flags: list[str], agency: str = B, case: UUID | None = None) -> UUID:
    rid = node.app.request_flags(Actor(agency, "req"), who, flags, case_id=case)
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)
    return rid


def query(node: Node, querier: str, provider: str, who: str) -> str:
    """``querier``'s counter asks ``provider`` about ``who``: the status its counter can tell the applicant."""
    answer = node.app.request_provision(
        Actor(querier, "counter"), provider, who, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    return answer.status


def queriers(node: Node, who: str) -> list[str]:
    return [r.querier for r in views.portal_records(node, who, who).records]


@pytest.fixture
def family(sqlite_node: Node, person: Callable[[], str]) -> tuple[str, str, str, UUID]:
    """X protected at B on a case naming Y; K not yet on it."""
    x, k, y = person(), person(), person()
    case = sqlite_node.app.open_case(Actor(B, "req"), x, perpetrators=[y])
    protect(sqlite_node, x, [ND, NAR], case=case)
    return x, k, y, case


def test_an_attached_companion_is_held_like_the_victim(sqlite_node: Node, family: tuple[str, str, str, UUID]) -> None:
    """Threat: the perpetrator. Y applies at A for something about the child K; before K is attached, A's
    counter gets B's automatic answer (naming B as provider). Once another person approved the attachment and
    the operator executed it, a query about K is held like X's, and K's portal hides the records."""
    app = sqlite_node.app
    x, k, _, case = family
    assert query(sqlite_node, A, B, k) == "answered"  # the leak: B answers about the unflagged child
    rid = app.propose_companion(Actor(B, "req"), case, k)
    assert app.flag_request(rid).flags == [ND, NAR]  # the victim's flags held here
    assert query(sqlite_node, A, B, k) == "answered", "nothing protects K before the approval"
    with pytest.raises(PermissionDenied):
        app.approve_request(Actor(B, "req"), rid)  # the proposer (a requester) cannot approve the attachment
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    assert app.case(case).attached_companions == [app.subject(k)]
    assert query(sqlite_node, A, B, k) == "in_progress" == query(sqlite_node, A, B, x)
    assert queriers(sqlite_node, k) == [], "K's records made before and after are hidden"
    with pytest.raises(StateConflict):
        app.propose_companion(Actor(B, "req"), case, k)  # once per case


def requests_on(node: Node, who: str, status: str) -> list[FlagRequest]:
    subject = node.app.subject(who)
    return [r for r in node.app._aggregates(FlagRequest, "Requested") if r.subject == subject and r.status == status]


def test_a_later_flag_on_the_victim_opens_the_same_request_on_each_companion(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """Threat: the perpetrator. A flag set later for the victim (naming the case) covers the companion through
    the same chain: the companion's own request, signed by the same requester, approved and executed."""
    app = sqlite_node.app
    x, k = person(), person()
    case = app.open_case(Actor(B, "req"), x)
    with pytest.raises(InputError):
        app.propose_companion(Actor(B, "req"), case, k)  # the victim holds nothing yet: name the flags
    assert app.case(case).companions == {} and requests_on(sqlite_node, k, "pending") == []  # nothing saved
    child = app.propose_companion(Actor(B, "req"), case, k, flags=[ND])
    app.approve_request(Actor(B, "apr"), child)
    app.execute_request(Actor(B, "op"), child)
    protect(sqlite_node, x, [ND], case=case)
    assert app.year_queue(Actor(B, "req"))["companions"] == []
    rid = app.request_flags(Actor(B, "req"), x, [NAR], case_id=case)
    (pending,) = requests_on(sqlite_node, k, "pending")
    assert pending.flags == [NAR] and pending.requested_by == "req" and pending.case_id == case
    assert query(sqlite_node, A, B, k) == "answered", "nothing new applies before the approval"
    for r in (rid, pending.id):
        app.approve_request(Actor(B, "apr"), r)
        app.execute_request(Actor(B, "op"), r)
    assert query(sqlite_node, A, B, k) == "in_progress"
    renew = app.request_flags(Actor(B, "req"), x, [ND, NAR], kind="renew", case_id=case, review_date=LATER)
    (renewal,) = requests_on(sqlite_node, k, "pending")
    assert renewal.kind == "renew" and renewal.flags == [ND, NAR] and renewal.review_date == LATER.isoformat()
    assert app.flag_request(renew).status == "pending"


def test_the_year_queue_prompts_for_a_companion_missing_a_flag_the_victim_holds(
    sqlite_node: Node, family: tuple[str, str, str, UUID]
) -> None:
    """Threat: the perpetrator. A companion attached with fewer flags than the victim is listed until a
    request for the rest is open."""
    app = sqlite_node.app
    _, k, _, case = family
    rid = app.propose_companion(Actor(B, "req"), case, k, flags=[ND])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    (prompt,) = app.year_queue(Actor(B, "req"))["companions"]
    assert prompt == {"case_id": str(case), "subject": app.subject(k), "flags_to_request": [NAR]}
    app.request_flags(Actor(B, "req"), k, [NAR], case_id=case)
    assert app.year_queue(Actor(B, "req"))["companions"] == []


def test_a_barred_guardian_is_refused_proxy_access_while_the_flag_applies(
    sqlite_node: Node, family: tuple[str, str, str, UUID]
) -> None:
    """Threat: the perpetrator, as the child's legal guardian. Y is K's registered proxy; once a bar on Y is
    approved (four eyes) and K is protected, Y's proxy view is refused and Y cannot register again; another
    proxy is unaffected. Lifting the bar also takes two people."""
    app = sqlite_node.app
    _, k, y, case = family
    app.register_proxy(Actor(A, "req"), k, y)
    assert views.portal_records(sqlite_node, y, k).access == "proxy"
    rid = app.propose_companion(Actor(B, "req"), case, k, flags=[NAR])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    assert views.portal_records(sqlite_node, y, k).access == "proxy", "no bar yet: NAR alone hides no record"
    bar = app.propose_guardian_bar(Actor(B, "req"), k, y, "parent")
    assert views.portal_records(sqlite_node, y, k).access == "proxy", "proposed is not in force"
    with pytest.raises(PermissionDenied):
        app.approve_guardian_bar(Actor(B, "req"), bar)  # its proposer, a requester
    with pytest.raises(PermissionDenied):
        app.approve_guardian_bar(Actor(B, "admin"), bar)  # an administrator approves nothing
    app.approve_guardian_bar(Actor(B, "apr"), bar)
    assert views.portal_records(sqlite_node, y, k) == views.PortalView("none", ())
    assert views.self_information(sqlite_node, y, k).access == "none"
    assert views.portal_records(sqlite_node, k, k).access == "self"  # the child's own card still works
    app.cancel_proxy(Actor(B, "req"), k, y, "intake advice")
    with pytest.raises(PermissionDenied) as refused:
        app.register_proxy(Actor(C, "req"), k, y)
    assert refused.value.code == Code.GUARDIAN_BARRED
    app.propose_bar_lift(Actor(B, "req"), bar, "family court decision")
    with pytest.raises(PermissionDenied):
        app.lift_guardian_bar(Actor(B, "req"), bar)
    app.lift_guardian_bar(Actor(B, "apr"), bar)
    assert not app.barred(k, y)
    app.register_proxy(Actor(C, "req"), k, y)  # (A's cancelled registration is not reopened: a new one)
    assert views.portal_records(sqlite_node, y, k).access == "proxy"


def test_a_bar_applies_only_while_a_flag_protects_the_person(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: the perpetrator. A bar recorded before any flag takes effect with the first flag."""
    app = sqlite_node.app
    k, y = person(), person()
    app.register_proxy(Actor(A, "req"), k, y)
    bar = app.propose_guardian_bar(Actor(B, "req"), k, y, "legal_guardian")
    app.approve_guardian_bar(Actor(B, "apr"), bar)
    assert views.portal_records(sqlite_node, y, k).access == "proxy"  # not protected: the bar waits
    protect(sqlite_node, k, [NAR])
    assert views.portal_records(sqlite_node, y, k).access == "none"
    with pytest.raises(InputError):
        app.propose_guardian_bar(Actor(B, "req"), k, k, "parent")


def test_naming_a_perpetrator_prompts_non_disclosure_and_the_approved_flag_hides_the_querier(
    sqlite_node: Node, family: tuple[str, str, str, UUID], person: Callable[[], str]
) -> None:
    """Threat: the perpetrator (seed case 1). With flags on X only, C's query to A about Y shows `querier C`
    on Y's portal. Naming Y on the case prompts a NON_DISCLOSURE request in B's year queue; once it is
    requested the prompt leaves; once approved and executed, a query by C about Y no longer shows on Y's portal."""
    app = sqlite_node.app
    _, _, y, case = family
    assert query(sqlite_node, C, A, y) == "answered"
    assert queriers(sqlite_node, y) == [C]  # the leak of case 1
    (prompt,) = app.year_queue(Actor(B, "req"))["perpetrators"]
    assert prompt == {"case_id": str(case), "subject": app.subject(y), "flags_to_request": [ND]}
    assert app.year_queue(Actor(C, "req"))["perpetrators"] == []  # only the case's agency is prompted
    q2 = person()
    app.add_perpetrator(Actor(B, "req"), case, q2)
    assert len(app.year_queue(Actor(B, "req"))["perpetrators"]) == 2  # several perpetrators allowed
    requests = app.request_perpetrator_flags(Actor(B, "req"), case)
    assert len(requests) == 2 and app.year_queue(Actor(B, "req"))["perpetrators"] == []
    for rid in requests:
        assert app.flag_request(rid).flags == [ND] and app.flag_request(rid).case_id == case
        app.approve_request(Actor(B, "apr"), rid)
        app.execute_request(Actor(B, "op"), rid)
    query(sqlite_node, C, A, y)
    assert queriers(sqlite_node, y) == [], "Y's portal no longer shows C"
    assert app.year_queue(Actor(B, "req"))["perpetrators"] == []
    assert isinstance(app.case(case), ProtectionCase)


def test_a_bar_made_at_b_refuses_the_guardian_on_a_portal_served_by_another_node(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    """Threat: the perpetrator (as guardian, through a portal served elsewhere) and a peer agency (trusted only
    for its own streams). B's node protects K and bars Y; A's node ingests both, and the proxy view it serves
    refuses Y, as does a new proxy registration at A."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b)
    rng = random.Random(21)
    k, y = individual_number(rng), individual_number(rng)
    a.app.register_proxy(Actor(A, "req"), k, y)
    assert views.portal_records(a, y, k).access == "proxy"
    protect(b, k, [NAR])
    bar = b.app.propose_guardian_bar(Actor(B, "req"), k, y, "parent")
    b.app.approve_guardian_bar(Actor(B, "apr"), bar)
    assert deliver(b, a) == []
    assert views.portal_records(a, y, k) == views.PortalView("none", ())
    assert a.app.barred(k, y)


def deliver(src: Node, dst: Node) -> list[tuple[str, str]]:
    """Ingest what ``src`` publishes into ``dst``; (topic, code) of everything not applied."""
    pending = PendingStore(dst.app, dst.engine)
    out = []
    for _, _, raw in publishable(src.app, 0):
        outcome = ingest(dst.app, raw, pending)
        if outcome.kind not in ("applied", "duplicate"):
            out.append((Envelope.from_bytes(raw).header.topic, outcome.code))
    return out
