"""An insider with write access to the views database cannot change a hold decision or a portal view.

Threat: **an insider with the data directory** (or the PostgreSQL account of the views) deletes, edits or
inserts rows of the flag views (``national_flags``, ``agency_flags``, ``portal_flag_intervals``,
``flag_history``, ``subject_alias``), the proxy view and the provision records, hoping that a query about the
victim X is answered automatically, that X's portal (read by the perpetrator with X's card) shows the provider
where X now lives, or that the perpetrator's own portal shows X's records. Every decision is taken from the
verified log (``projections.verified``), so each answer after the tampering equals the answer before it — in
the node that was running (which follows the log) and in a node opened afterwards on the same data directory.
Before this round each of these edits changed the answer (issue 16, attack 4). On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from ledger.app import Actor
from ledger.runtime.bootstrap import Node, open_node
from projections import views
from tests.conftest import A, B, C

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"


def protect(node: Node, agency: str, subject: str, flags: list[str]) -> None:
    app = node.app
    rid = app.request_flags(Actor(agency, "req"), subject, flags)
    app.approve_request(Actor(agency, "apr"), rid)
    app.execute_request(Actor(agency, "op"), rid)


def query(node: Node, querier: str, provider: str, subject: str) -> Any:
    return node.app.request_provision(
        Actor(querier, "counter"), provider, subject, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )


@dataclass
class Story:
    x: str  # the victim's pseudonym: protected by B (NON_DISCLOSURE + NO_AUTO_RESPONSE) after fleeing A
    y: str  # the perpetrator's pseudonym
    before: str  # a record about X made at B (her new municipality) before protection: hidden ever since


def story(node: Node, person: Callable[[], str]) -> Story:
    x_number, y_number = person(), person()
    x, y = node.app.subject(x_number), node.app.subject(y_number)
    before = query(node, A, B, x).request_id  # A (where Y lives) asks B about X: B is where X lives now
    protect(node, B, x, [ND, NAR])
    query(node, C, B, x)  # held
    query(node, A, C, y)  # a record of Y's own
    return Story(x, y, before)


def answers(node: Node, s: Story) -> dict[str, Any]:
    """Every decision the threat cares about, as the perpetrator or an agency would meet it."""
    fresh = query(node, C, B, s.x)
    request = node.app.provision_request(UUID(fresh.request_id))
    return {
        "request_held": request.status,
        "querier_sees": (fresh.status, fresh.message),
        "request_path": node.app.flag_state.flags_for(s.x) if node.app.flag_state else None,
        "x_portal_by_card": views.portal_records(node, s.x, s.x),
        "x_portal_as_y": views.portal_records(node, s.y, s.x).access,
        "y_portal": [r.request_id for r in views.portal_records(node, s.y, s.y).records],
        "x_self_info": views.self_information(node, s.x, s.x),
        "x_self_info_as_y": views.self_information(node, s.y, s.x).access,
        "counter_at_a": [
            (a.request_id, a.provider) for a in views.counter_view(node, Actor(A, "counter"), s.x).answers
        ],
        "counter_protection": views.nationwide_view(node, Actor(A, "counter"), s.x).flags,
    }


def _same_except_fresh_ids(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["request_held"] == "held" and before["request_held"] == "held"
    assert after["querier_sees"] == before["querier_sees"]
    assert after["request_path"] == before["request_path"] == {ND: [B], NAR: [B]}
    assert after["x_portal_by_card"] == before["x_portal_by_card"]
    assert after["x_portal_as_y"] == before["x_portal_as_y"] == "none"
    assert after["y_portal"] == before["y_portal"]
    assert after["x_self_info"] == before["x_self_info"]
    assert after["x_self_info"].withheld
    assert after["x_self_info_as_y"] == "none"
    # the counter lists A's own queries about X (new ones each round); none names the provider B
    assert all(provider is None for _, provider in after["counter_at_a"])
    assert after["counter_protection"] == before["counter_protection"] == (ND, NAR)


TAMPERING = {
    "delete_flag_rows": [
        "DELETE FROM national_flags WHERE person = :x",
        "DELETE FROM agency_flags WHERE subject = :x",
        "DELETE FROM portal_flag_intervals WHERE subject = :x",
        "DELETE FROM flag_history WHERE subject = :x",
    ],
    "edit_flag_rows": [
        "UPDATE national_flags SET agency = '999999', flag = flag || '_gone' WHERE person = :x",
        "UPDATE agency_flags SET active = false, released_at = '2000-01-01T00:00:00Z' WHERE subject = :x",
        "UPDATE portal_flag_intervals SET ended = '2000-01-01T00:00:00.000000Z', started = '1999-01-01T00:00:00"
        ".000000Z' WHERE subject = :x",
    ],
    "join_the_perpetrator_to_the_victim": [
        # Y's number "changed" to X's person (X's records become Y's own), and Y a proxy of X
        "INSERT INTO subject_alias (pseudonym, person) VALUES (:y, :x)",
        "INSERT INTO portal_proxies (subject, proxy, active, registered_at, registration_id) "
        "VALUES (:x, :y, true, '2000-01-01T00:00:00.000000Z', 'forged-registration')",
    ],
    "edit_provision_records": [
        # X's hidden record moved to after any protection, and one of X's records given to Y
        "UPDATE portal_records SET created_at = '9999-01-01T00:00:00.000000Z' WHERE request_id = :before",
        "UPDATE portal_records SET subject = :y WHERE subject = :x AND request_id <> :before",
    ],
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_with_the_views_changes_no_hold_and_no_portal_decision(
    node: Node, person: Callable[[], str], kind: str
) -> None:
    """Insider with the data directory: the rows are changed under the running node and before a restart."""
    s = story(node, person)
    before = answers(node, s)
    with node.engine.begin() as conn:
        for sql in TAMPERING[kind]:
            conn.execute(text(sql), {"x": s.x, "y": s.y, "before": s.before})
    _same_except_fresh_ids(before, answers(node, s))
    restarted = open_node(node.config.data_dir)
    try:
        _same_except_fresh_ids(before, answers(restarted, s))
    finally:
        restarted.close()


def test_deleting_every_row_of_the_flag_views_still_holds_every_request(node: Node, person: Callable[[], str]) -> None:
    """Insider with the data directory empties the flag views outright (not one person's rows)."""
    s = story(node, person)
    with node.engine.begin() as conn:
        for table in ("national_flags", "agency_flags", "portal_flag_intervals", "subject_alias", "portal_proxies"):
            conn.execute(text(f"DELETE FROM {table}"))
    restarted = open_node(node.config.data_dir)
    try:
        for n in (node, restarted):
            assert n.app.provision_request(UUID(query(n, C, B, s.x).request_id)).status == "held"
            assert views.portal_records(n, s.x, s.x).records == ()
    finally:
        restarted.close()


def test_a_release_signed_by_another_agency_on_the_holder_s_stream_lifts_nothing(
    node: Node, person: Callable[[], str]
) -> None:
    """A peer agency (attack 1 of issue 16, the part decided here): A loads B's protection of X, releases it and
    saves it under A's own key, so the event chains onto B's stream and carries ``agency: B`` in its payload.
    Sealing, ingest and the audit refuse it (ledger.domain.authority); here an insider writes it straight into the
    store, past all three. The holder is the signer, so the event releases only what A holds on X (nothing): X stays
    protected by B for the request path, the portal and the views."""
    from eventsourcing.persistence import StoredEvent

    from tests.support.forge import forge

    s = story(node, person)
    stream = node.app.ids.protection(B, s.x)
    head = node.app.signed_store.head(stream)
    assert head is not None
    topic = "ledger.domain.flags:Protection.FlagsReleased"
    fields = {
        "agency": B,
        "subject": node.app.subject(s.x),
        "flags": [NAR, ND],
        "request_id": UUID(int=7),
        "by": "op",
        "explanation": "forged",
    }
    raw = forge(node.app, A, topic, stream, head[0] + 1, fields)
    node.app.recorder.insert_events([StoredEvent(stream, head[0] + 1, topic, node.app.signed_mapper.protect(raw))])
    assert node.app.flag_state is not None and node.app.flag_state.flags_for(s.x) == {ND: [B], NAR: [B]}
    assert node.app.provision_request(UUID(query(node, C, B, s.x).request_id)).status == "held"
    assert views.portal_records(node, s.x, s.x).records == ()
    assert [(f.agency, f.flag, f.active) for f in views.agency_flag_state(node, Actor(B, "apr"), s.x)] == [
        (B, ND, True),
        (B, NAR, True),
    ]


def _ledger_rows(node: Node, topic_suffix: str) -> list[int]:
    import sqlite3

    with sqlite3.connect(node.config.data_dir / "ledger.sqlite") as db:
        return [
            r
            for (r,) in db.execute(
                "SELECT rowid FROM stored_events WHERE topic LIKE ? ORDER BY rowid", ("%" + topic_suffix,)
            )
        ]


@pytest.mark.parametrize("damage", ["edited", "deleted_mid_stream"])
def test_a_damaged_log_stops_decisions_instead_of_answering(
    sqlite_node: Node, person: Callable[[], str], damage: str
) -> None:
    """Insider with the data directory edits the event store itself: X's FlagsSet altered, or removed from the
    middle of her protection's stream. A node opened afterwards cannot verify its way past that event, so it
    refuses every decision (IntegrityError naming the position) rather than answer a query about X automatically.
    (Removing a stream's *last* event leaves no broken link: the signed tree heads and `audit verify` catch that.)"""
    import sqlite3

    from ledger.errors import IntegrityError

    node = sqlite_node
    s = story(node, person)
    if damage == "deleted_mid_stream":  # a renewal: the stream goes on after FlagsSet
        rid = node.app.request_flags(
            Actor(B, "req"), s.x, [ND], kind="renew", review_date=date.today() + timedelta(days=700)
        )
        node.app.approve_request(Actor(B, "apr"), rid)
        node.app.execute_request(Actor(B, "op"), rid)
    (flags_set,) = _ledger_rows(node, "Protection.FlagsSet")
    # the first event that does not verify: the edited one, or the one after the gap
    named = flags_set if damage == "edited" else _ledger_rows(node, "Protection.FlagsRenewed")[0]
    with sqlite3.connect(node.config.data_dir / "ledger.sqlite") as db:
        if damage == "edited":
            (state,) = db.execute("SELECT state FROM stored_events WHERE rowid = ?", (flags_set,)).fetchone()
            db.execute(
                "UPDATE stored_events SET state = ? WHERE rowid = ?", (state[:-1] + bytes([state[-1] ^ 1]), flags_set)
            )
        else:
            db.execute("DELETE FROM stored_events WHERE rowid = ?", (flags_set,))
    restarted = open_node(node.config.data_dir)
    try:
        with pytest.raises(IntegrityError, match=f"position {named} "):
            query(restarted, C, B, s.x)
        with pytest.raises(IntegrityError):
            views.portal_records(restarted, s.x, s.x)
    finally:
        restarted.close()
