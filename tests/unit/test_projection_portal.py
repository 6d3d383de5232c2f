"""Portal hiding decided from NON_DISCLOSURE intervals, whatever order the events arrive in.

Events replicated from other nodes may arrive after records that were created later than them (their
timestamps are earlier than rows already projected). These stories drive the projections' ``handle`` and the
verified state's ``apply`` with events in such orders, on a real SQLite database, and read through the same
reader the portal uses (threat: the perpetrator reading the portal as the subject, a proxy or a card holder).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine

from projections.base import create_engine, metadata
from projections.flag_state import FlagStateProjection
from projections.portal import PortalProjection, canonical_time, portal_records
from projections.portal_read import PortalReader
from projections.record_check import RecordFacts
from projections.verified import VerifiedState

A, B, C = "131016", "131024", "131032"
OLD, NEW, OTHER = "p" + "1" * 32, "p" + "2" * 32, "p" + "3" * 32


def t(second: int) -> str:
    return f"2026-01-01T00:00:{second:02d}+00:00"


class Log:
    """Feeds events one by one, each at the next position, through the portal and flag-state projections."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.position = 0
        self.projections = [FlagStateProjection(), PortalProjection()]
        # the decisions' state, fed the same events (no log to follow: its last position stays 0)
        self.state = VerifiedState(SimpleNamespace(max_position=lambda: 0))  # type: ignore[arg-type]
        # the portal's own read path (nothing to catch up: events are applied here one by one); a record's
        # signed facts are its projected row here (tests/integration/test_view_tamper.py reads the log)
        self.reader = PortalReader(engine, [], lambda: 0, lambda: None, self.state, self.facts)

    def facts(self, request_id: str, position: int) -> RecordFacts | None:
        with self.engine.connect() as conn:
            r = conn.execute(portal_records.select().where(portal_records.c.request_id == request_id)).first()
        if r is None:
            return None
        return RecordFacts(
            r.request_id, r.subject, r.created_at, r.querier, r.provider, r.procedure, r.legal_item, r.info_kind
        )

    def add(self, topic: str, stream: str, at: str, **fields: Any) -> None:
        self.position += 1
        origin = fields.get("agency", B)  # honest events: signed by the agency they name
        env = SimpleNamespace(header=SimpleNamespace(topic=topic, time=at, stream=stream, origin=origin))
        event = SimpleNamespace(**fields)
        with self.engine.begin() as conn:
            for p in self.projections:
                if topic in p.topics:
                    p.handle(conn, event, env, self.position)  # type: ignore[arg-type]
        if topic in self.state.topics:
            self.state.apply(env, event)  # type: ignore[arg-type]

    def record(self, rid: str, subject: str, at: str, querier: str = B, provider: str = A) -> None:
        self.add(
            "ledger.domain.provision:ProvisionRequest.Received",
            rid,
            at,
            agency=provider,
            querier=querier,
            subject=subject,
            legal_item=74,
            procedure="児童手当",
            info_kind="地方税関係情報",
            applicant="unknown",
        )
        self.add("ledger.domain.provision:ProvisionRequest.AutoProvided", rid, at)

    def flag(self, kind: str, agency: str, subject: str, at: str, flags: tuple[str, ...] = ("NON_DISCLOSURE",)) -> None:
        self.add(
            f"ledger.domain.flags:Protection.{kind}",
            f"prot-{agency}-{subject}",
            at,
            agency=agency,
            subject=subject,
            flags=list(flags),
            request_id=f"req-{agency}-{at}",
            by="op",
            reason="dv",
            review_date="2027-01-01",
            explanation="",
        )

    def visible(self, subject: str) -> list[str]:
        access, rows = self.reader.view(subject, subject)
        assert access == "self"
        return [row[0] for row in rows]

    def access(self, viewer: str, subject: str) -> str:
        """The portal's access decision, checked against the one self-information uses."""
        expected = self.state.portal_access(viewer, subject)[0]
        assert self.reader.view(viewer, subject)[0] == expected
        return expected


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    engine = create_engine(f"sqlite:///{tmp_path / 'views.sqlite'}")
    metadata.create_all(engine)
    yield Log(engine)
    engine.dispose()


def test_canonical_time_orders_instants_from_any_offset() -> None:
    assert canonical_time("2026-01-01T09:00:00+09:00") == canonical_time("2026-01-01T00:00:00+00:00")
    assert canonical_time("2026-01-01T00:00:00+00:00") < canonical_time("2026-01-01T00:00:00.000001+00:00")


def test_a_late_flag_event_with_an_earlier_time_re_hides_a_shown_record(log: Log) -> None:
    log.record("r10", OLD, t(10))
    assert log.visible(OLD) == ["r10"]
    log.flag("FlagsSet", C, OLD, t(5))  # set at C before r10 was created, replicated only now
    assert log.visible(OLD) == []
    log.flag("FlagsReleased", C, OLD, t(20))
    assert log.visible(OLD) == [], "a record hidden while the flag applied stays hidden after release"
    log.record("r30", OLD, t(30))
    assert log.visible(OLD) == ["r30"], "a record created after release is shown"


def test_a_record_from_before_protection_stays_hidden_once_the_flag_has_hidden_it(log: Log) -> None:
    log.record("r03", OLD, t(3))
    log.flag("FlagsSet", B, OLD, t(4))
    log.flag("FlagsReleased", B, OLD, t(6))
    log.record("r08", OLD, t(8))
    assert log.visible(OLD) == ["r08"]


def test_hiding_is_nationwide_the_latest_holder_decides(log: Log) -> None:
    log.flag("FlagsSet", B, OLD, t(1))
    log.flag("FlagsSet", C, OLD, t(2))
    log.flag("FlagsReleased", B, OLD, t(3))
    log.record("r04", OLD, t(4))
    assert log.visible(OLD) == [], "C still holds the flag: released nationwide only when no agency holds it"
    log.flag("FlagsReleased", C, OLD, t(5))
    log.record("r06", OLD, t(6))
    assert log.visible(OLD) == ["r06"]


def test_no_auto_response_is_tracked_separately_from_non_disclosure(log: Log) -> None:
    log.flag("FlagsSet", B, OLD, t(1), ("NO_AUTO_RESPONSE",))
    log.record("r02", OLD, t(2))
    assert log.state.person(OLD).nar
    assert log.visible(OLD) == ["r02"], "NO_AUTO_RESPONSE alone does not hide provision records"


def test_a_number_change_joins_the_old_flag_and_the_new_records_in_either_order(log: Log) -> None:
    log.record("r05", NEW, t(5))
    log.flag("FlagsSet", B, OLD, t(1))
    assert log.visible(NEW) == ["r05"], "not linked yet: another person as far as the ledger knows"
    log.add("ledger.domain.identity:PseudonymLink.Linked", "link-1", t(7), agency=B, old=OLD, new=NEW, by="req")
    assert log.visible(NEW) == []
    assert log.access(NEW, OLD) == "self", "the new card is the person's, for either number"
    assert log.access(OLD, OLD) == "none", "the old card names nobody since the change (issue 18)"


def test_proxy_access_follows_registration_and_cancellation(log: Log) -> None:
    reg = "5f0c7d0e-8a41-4c33-9d7e-1b2f3a4c5d6e"  # a registration's (keyed) stream id
    assert log.access(OTHER, OLD) == "none"
    log.add(
        "ledger.domain.identity:ProxyRegistration.Registered",
        reg,
        t(1),
        agency=A,
        subject=OLD,
        proxy=OTHER,
        by="req",
    )
    assert log.access(OTHER, OLD) == "proxy"
    assert log.access(OLD, OLD) == "self"
    log.add("ledger.domain.identity:ProxyRegistration.Cancelled", reg, t(2), by="req", reason="")
    assert log.access(OTHER, OLD) == "none"
