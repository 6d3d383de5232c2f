"""A last holder's warning routed through the hub (issue 21 in hub mode): A asks to release a flag on X that, as
far as its node can see, no one else holds. Its node warns locally (and asks one more approval), as in shared
mode; the hub, which sees every holder, warns X's other holders — each under its own code, naming neither A nor
any other holder — when no one else holds the flag, and no one when someone does. The warning stands in each
holder's year queue like a local one. Three nodes in hub mode and an in-process hub, SQLite and PostgreSQL.

Threats, per test: the perpetrator (a holder unwarned while the last protection of a kind ends leaves X
unprotected: an automatic answer where NO_AUTO_RESPONSE lapsed); a peer agency (only a holder of the flags can
make the hub warn anyone, and trying teaches it nothing); the broker operator (a sealed answer-sized message).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from consumers.linkage_moves import RAISED, outgoing
from consumers.linkage_queue import work_queue
from ledger.app import Actor
from ledger.errors import Code
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.moves import LastHolderMessage
from ledger.linkage.transport import Topics
from ledger.runtime.linkage import code_of
from ledger.runtime.tables import linkage_holder_warnings, linkage_parked
from tests.conftest import NodeFactory
from tests.integration.test_agency_hub_handover import ND, _events, _parked
from tests.integration.test_agency_hub_mode import _all_rows, _count, _world, names
from tests.support.hub_nodes import HubNodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number

NAR = "NO_AUTO_RESPONSE"


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    yield from _world(make_node, backend, tmp_path)


def _warned_rows(w: HubNodes, agency: str) -> int:
    with w.nodes[agency].engine.connect() as conn:
        rows = conn.execute(select(linkage_holder_warnings.c.id)).all()
    return len(rows)


def _protected(w: HubNodes, x: str) -> None:
    """A protects X with both flags, B with NON_DISCLOSURE only (say, its own case); C has filed X."""
    set_flag(w.nodes[A], A, x, ND)
    set_flag(w.nodes[A], A, x, NAR)
    set_flag(w.nodes[B], B, x, ND)
    w.bridges[C].file_person(x)
    w.settle()


def _ask_release(w: HubNodes, agency: str, x: str, flag: str) -> None:
    w.nodes[agency].app.request_flags(Actor(agency, "req"), x, [flag], kind="release", explanation="order ended")
    w.settle()


def test_the_other_holder_is_warned_when_a_release_ends_a_protection_no_one_else_holds(world: HubNodes) -> None:
    """The perpetrator, waiting for NO_AUTO_RESPONSE to lapse: A asks to release it, the only holder of it.
    B, which holds X's NON_DISCLOSURE, finds the warning in its year queue under its own subject, naming no A;
    A's queue shows its own; C, no holder, hears nothing. The broker sees one sealed answer-sized message."""
    x = individual_number()
    a, b, c = (world.nodes[k].app for k in (A, B, C))
    _protected(world, x)
    topics = Topics()
    before = {p: len(world.broker.topics.get(topics.inbox(p), [])) for p in (A, B, C)}

    _ask_release(world, A, x, NAR)
    (own,) = a.year_queue(Actor(A, "req"))["last_holder_warnings"]
    assert own["flags"] == [NAR] and own["releasing_agency_is_you"]
    (warned,) = b.year_queue(Actor(B, "req"))["last_holder_warnings"]
    assert warned["subject"] == b.subject(x) and warned["flags"] == [NAR]
    assert warned["releasing_agency_is_you"] is False
    assert not names(json.dumps(warned), A) and not names(_all_rows(world, B), A)
    year = work_queue(world.nodes[B], Actor(B, "req")).year  # the work queue's year part lists it too
    assert year is not None and year["last_holder_warnings"] == [warned]
    assert not any(names(e, A) for e in _events(world, B))
    assert c.year_queue(Actor(C, "req"))["last_holder_warnings"] == [] and _warned_rows(world, C) == 0

    new = {p: world.broker.topics.get(topics.inbox(p), [])[before[p] :] for p in (A, B, C)}
    assert len(new[B]) == 1 and new[A] == [] and new[C] == []
    assert len(new[B][0]) > ANSWER_SIZE
    for secret in (x.encode(), NAR.encode(), b"last_holder", code_of(b.subject(x)).encode()):
        assert secret not in new[B][0]

    # the warning sent again (the bridge resends after a crash) is kept once
    code = code_of(a.subject(x))
    world.bridges[A].end.send(LastHolderMessage(_resent_id(world, A), code, NAR))
    world.settle()
    assert _warned_rows(world, B) == 1 and _parked(world) == [] and _count(world, B, linkage_parked) == 0


def _resent_id(w: HubNodes, agency: str) -> str:
    """The warning id A's bridge derived from its event (what a resend after a crash carries)."""
    app = w.nodes[agency].app
    for _, row, env in app.envelopes():
        if row.topic == RAISED:
            event = app.signed_mapper.decode(env)
            ((_, message),) = outgoing(agency, RAISED, event, event.originator_id)
            return str(message.warning_id)  # type: ignore[attr-defined]
    raise AssertionError("no warning in the log")


def test_no_one_is_warned_when_another_holder_still_holds_the_flag(world: HubNodes) -> None:
    """A's node sees only its own flags, so its release of NON_DISCLOSURE looks like the last; the hub sees B
    holding it: nothing ends, nobody is told that A is letting go (B learns nothing of another holder)."""
    x = individual_number()
    _protected(world, x)
    _ask_release(world, A, x, ND)
    assert world.nodes[B].app.year_queue(Actor(B, "req"))["last_holder_warnings"] == []
    assert _warned_rows(world, B) == 0 and _warned_rows(world, C) == 0 and _parked(world) == []


def test_only_a_holder_of_the_flags_makes_the_hub_warn(world: HubNodes) -> None:
    """A peer agency with its own valid keys: C, holding nothing, sends a last-holder warning about X's
    NO_AUTO_RESPONSE (to alarm X's holders, or to learn by trying whether anyone protects X); B sends one about
    the NO_AUTO_RESPONSE it does not hold. Both parked alike; nobody is warned. A warning naming a flag its
    sender does not hold besides one it does counts only the one it holds."""
    x = individual_number()
    _protected(world, x)
    for agency in (C, B):
        code = code_of(world.nodes[agency].app.subject(x))
        world.bridges[agency].end.send(LastHolderMessage(uuid.uuid4().hex, code, NAR))
    world.settle()
    assert _parked(world) == [Code.WRONG_AGENCY, Code.WRONG_AGENCY]
    assert all(_warned_rows(world, k) == 0 for k in (A, B, C))
    assert world.nodes[A].app.year_queue(Actor(A, "req"))["last_holder_warnings"] == []
    # B's warning naming its own NON_DISCLOSURE and the NO_AUTO_RESPONSE it does not hold (a release request
    # may name both): only what B holds counts, A holds that too, so nothing ends and no one is told
    b_code = code_of(world.nodes[B].app.subject(x))
    world.bridges[B].end.send(LastHolderMessage(uuid.uuid4().hex, b_code, f"{ND},{NAR}"))
    world.settle()
    assert _parked(world) == [Code.WRONG_AGENCY, Code.WRONG_AGENCY] and _warned_rows(world, A) == 0
