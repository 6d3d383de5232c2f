"""The bulk rebuild (projections/bulk.py) equals the live views exactly, and a crash before its swap changes nothing.

One generated history with every kind of event the projections read (that staff commands can make), the live
views caught up incrementally in small pages, then ``Projector.rebuild`` — built apart without secondary
indexes and swapped in — must leave every row of every view table as it was; on SQLite and PostgreSQL. A
rebuild process killed while building (the real CLI, SIGKILL at a page) must leave the live views and their
positions untouched and no scratch behind after the next rebuild.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import inspect, text

from ledger.app import Actor
from ledger.domain.identity import ProxyRegistration
from ledger.faultpoint import ENV as FAULTPOINT_ENV
from ledger.runtime.bootstrap import Node
from projections.bulk import SCRATCH_PREFIX
from projections.registry import all_projections
from projections.view_reads import view_cipher
from projections.views import held_requests
from tests.conftest import SC, A, B, C
from tests.integration.test_projections_rebuild import World, snapshot
from tests.support.approvals import approve_fully
from tests.support.links import REASON, link, unlink

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
# topics no staff command of FlagLedger makes (raised by the node from parked messages, or kept for cases the
# API does not change after opening): their handlers are covered by their own projection tests
NOT_MADE_HERE = {
    "ledger.domain.cases:ProtectionCase.ChecklistUpdated",
    "ledger.domain.cases:ProtectionCase.Closed",
    "ledger.domain.incidents:Incident.Acknowledged",
    "ledger.domain.incidents:Incident.Raised",
    "ledger.domain.identity:PseudonymLink.Relinked",
    "ledger.domain.provision:ProbeNotice.Sent",
    "ledger.domain.provision:ProvisionRequest.Reopened",  # on the hub's decide_again (test_agency_hub_decide_again)
}


def every_kind(node: Node, person: Callable[[], str]) -> None:
    """Cases, flag requests set / renewed / released / rejected, provision requests answered, held, decided
    both ways, proxies registered and cancelled, number changes requested, rejected, linked and undone, body
    requests answered and not, a guardian bar, a read of protected details, the year's terms, emergency flags,
    moves and named risks, and an erasure — plus World's random mix."""
    app = node.app
    victim, perp, other, new = person(), person(), person(), person()
    case = app.open_case(Actor(B, "req"), victim, perpetrators=[perp])
    app.add_perpetrator(Actor(B, "req"), case, other)
    for kind in ("set", "renew", "release"):
        extra: dict[str, Any] = {"kind": "release", "explanation": "説明済み"} if kind == "release" else {}
        if kind == "renew":
            extra = {"kind": "renew", "review_date": date.today() + timedelta(days=800)}
        rid = app.request_flags(Actor(B, "req"), victim, [ND, NAR], **extra)
        approve_fully(app, B, rid)
        app.execute_request(Actor(B, "op"), rid)
    rid = app.request_flags(Actor(C, "req"), victim, [NAR])
    app.reject_request(Actor(C, "apr"), rid, "not needed")
    rid = app.request_flags(Actor(C, "req"), other, [NAR])
    approve_fully(app, C, rid)
    app.execute_request(Actor(C, "op"), rid)
    for _ in range(2):  # held at C (NO_AUTO_RESPONSE): one provided by hand, one refused
        app.request_provision(
            Actor(A, "counter"), C, other, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
    node.projector.catch_up()
    with node.engine.connect() as conn:
        held = [h.request_id for h in held_requests(conn, view_cipher(node), C)]
    for rid_text, decision in zip(held, ("provide", "refuse"), strict=False):
        app.propose_decision(Actor(C, "rev"), UUID(rid_text), decision, "unknown")
        app.approve_decision(Actor(C, "apr"), UUID(rid_text), app.provision_request(UUID(rid_text)).proposal_version)
    app.register_proxy(Actor(A, "req"), perp, other)
    app.cancel_proxy(Actor(A, "req"), perp, other)
    # as in hub mode: the hub said another agency cancelled A's registration (consumers.linkage_proxy_registrations)
    through_hub = app.find(ProxyRegistration, app.register_proxy(Actor(A, "req"), victim, other))
    assert through_hub is not None and through_hub.cancelled_through_hub()
    app.save_as(A, through_hub)
    app.proxies_at_hub = True  # as in hub mode: C, holding `other`, cancels a proxy registered at another agency
    try:
        assert app.cancel_proxy(Actor(C, "req"), other, perp) == "sent"
    finally:
        app.proxies_at_hub = False
    rejected = app.request_link(Actor(B, "req"), perp, person(), REASON)
    app.reject_link(Actor(B, "apr"), rejected, "wrong notice")
    link(app, B, perp, new)
    unlink(app, B, perp)
    app.send_body_request(Actor(SC, "req"), B, victim, [ND])
    answered = app.send_body_request(Actor(SC, "req"), B, other, [ND])  # answered: an outcome recorded
    app.answer_body_request(Actor(B, "req"), answered)
    bar = app.propose_guardian_bar(Actor(B, "req"), victim, perp)  # a guardian bar in force, then lifted
    app.approve_guardian_bar(Actor(B, "apr"), bar)
    app.propose_bar_lift(Actor(B, "req"), bar, "親権者の変更")
    app.lift_guardian_bar(Actor(B, "apr"), bar)
    app.record_access(Actor(B, "aud"), victim, "holders", "監査")
    # the year (issue 21): a term applied and lapsed, an emergency flag co-approved, a move, a named risk used by
    # the release it lets through
    lapsing, mover = person(), person()
    app.record_application(Actor(B, "req"), lapsing, date.today() - timedelta(days=10))
    app.propose_lapse(Actor(B, "req"), lapsing, "本人の希望")
    app.approve_lapse(Actor(B, "apr"), lapsing)
    app.co_approve_provisional(
        Actor(B, "apr"), app.set_provisional(Actor(B, "op"), mover, [ND, NAR], explanation="夜間の緊急相談")
    )
    app.record_move(Actor(B, "req"), mover, to_agency=C, moved_on=date.today())
    app.approve_release_risk(
        Actor(B, "apr"), app.propose_release_risk(Actor(B, "req"), mover, [ND, NAR], "所在が知られうる")
    )
    rid = app.request_flags(Actor(B, "req"), mover, [ND, NAR], kind="release", explanation="終了")
    approve_fully(app, B, rid)
    app.execute_request(Actor(B, "op"), rid)
    gone = person()
    app.request_provision(Actor(A, "counter"), B, gone, legal_item=74, procedure="児童手当", info_kind="地方税関係情報")
    app.record_application(Actor(A, "req"), gone, date.today())  # its row goes with the erasure
    erasure = app.request_erasure(Actor(A, "admin"), gone, "retention ended")
    app.approve_erasure(Actor(A, "admin2"), erasure)
    World(node, seed=11).history(30)


def topics_in_log(node: Node) -> set[str]:
    return {env.header.topic for _, _, env in node.app.envelopes()}


def test_a_bulk_rebuild_equals_the_live_views_on_every_event_kind(node: Node, person: Callable[[], str]) -> None:
    """Threat: an insider with the data directory — `audit views` and the erasure scrub trust a rebuild to be
    exactly what the live path would hold; a rebuild that differed would hide (or invent) a held request or a
    flag in a staff listing, or raise false alarms that train staff to ignore the check."""
    every_kind(node, person)
    wanted = set().union(*(p.topics for p in all_projections())) - NOT_MADE_HERE
    assert wanted <= topics_in_log(node), f"not generated: {sorted(wanted - topics_in_log(node))}"
    node.projector.page = 7  # the live path in small pages, as a node ingesting polls does
    node.projector.catch_up()
    live = snapshot(node)
    assert sum(map(len, live.values())) > 100
    node.projector.page = 1000
    seen: list[tuple[int, int]] = []
    applied = node.projector.rebuild(progress=lambda done, end: seen.append((done, end)))
    assert snapshot(node) == live
    assert applied > 0 and seen and seen[-1][0] == seen[-1][1] == node.app.max_position(), "progress kept"
    assert set(node.projector.positions().values()) == {node.app.max_position()}
    # the indexes are back, exactly as the live tables had them
    names = {ix["name"] for t in live for ix in inspect(node.engine).get_indexes(t)}
    declared = {str(ix.name) for p in all_projections() for t in p.tables for ix in t.indexes}
    assert declared <= names
    # one projection alone, and the log growing afterwards: the live path continues from the swap
    node.projector.rebuild(["timeline"])
    assert snapshot(node) == live
    World(node, seed=12).history(5)
    node.projector.catch_up()
    grown = snapshot(node)
    node.projector.rebuild()
    assert snapshot(node) == grown
    assert scratch_left(node) == []


def scratch_left(node: Node) -> list[str]:
    if node.engine.dialect.name == "postgresql":
        with node.engine.connect() as conn:
            return [
                str(s)
                for s in conn.execute(
                    text("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :p)"), {"p": SCRATCH_PREFIX}
                ).scalars()
            ]
    views = node.config.data_dir / "views.sqlite"
    return sorted(p.name for p in views.parent.glob("views.sqlite.rebuild-*"))


def test_a_rebuild_killed_while_building_leaves_the_live_views_intact(node: Node, person: Callable[[], str]) -> None:
    """Threat: an administrator / shell user (or the OOM killer) stopping `projections rebuild` part-way: the
    staff listings and work queues must not be left half-built or empty (a held request missing from its
    reviewer's queue) — the live views stay exactly as they were until the new ones are complete."""
    every_kind(node, person)
    node.projector.catch_up()
    live, positions = snapshot(node), node.projector.positions()
    env = {
        **os.environ,
        "PYTHONPATH": os.getcwd(),
        FAULTPOINT_ENV: "projector.mid_page:40",  # SIGKILL at the 40th event applied, well before the swap
    }
    proc = subprocess.run(
        [sys.executable, "-m", "ledger.cli.main", "--data-dir", str(node.config.data_dir), "projections", "rebuild"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr  # it died mid-build (the faultpoint fired)
    assert snapshot(node) == live and node.projector.positions() == positions
    assert scratch_left(node), "the killed rebuild's scratch is what a later one must remove"
    node.projector.rebuild()
    assert snapshot(node) == live
    assert scratch_left(node) == []
