"""Incident and IncidentReport on their own: one incident per message and agency, acknowledged once, with words."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ledger.domain.incidents import Incident, IncidentReport
from ledger.errors import InputError, StateConflict
from tests.support.domain import A, B, emitted, pseudonym

N = "ledger.domain.incidents:"
MESSAGE = hashlib.sha256(b"parked message").hexdigest()
FINGERPRINT = hashlib.sha256(b"hmac of it").hexdigest()


def raised(agency: str = A, fingerprint: str = FINGERPRINT) -> Incident:
    fields: dict[str, Any] = dict(
        kind="forged_signature",
        code="bad_signature",
        message=MESSAGE,
        origin=B,
        key_id=f"{B}:0123456789abcdef",
        stream="6f1c1a4e-0c1d-4b8e-9f00-000000000001",
        stream_version=3,
        topic="ledger.domain.flags:Protection.FlagsReleased",
        event_id="e1",
        stamped="2026-11-25T10:00:00+00:00",
        owner=B,
        subjects=[pseudonym("victim")],
        claimed_subjects=[],
        parked_id=7,
        source="flagledger.events/0/42",
        reason="signature does not verify",
        origin_held=False,
    )
    return Incident(agency=agency, fingerprint=fingerprint, **fields)


def test_a_redelivered_message_finds_its_incident_and_each_agency_has_its_own() -> None:
    """Threat: the broker operator / network redelivering a forgery to flood staff with alerts."""
    assert raised().id == raised().id == Incident.create_id(A, FINGERPRINT)
    assert raised(B).id != raised().id
    assert raised(fingerprint="0" * 64).id != raised().id
    assert Incident.SHARED is False and IncidentReport.SHARED is False  # alerts never leave the node


def test_an_incident_is_acknowledged_once_and_with_a_note() -> None:
    """Threat: an insider closing an alert about an attack without saying what was done."""
    i = raised()
    assert i.open
    with pytest.raises(InputError, match="note"):
        i.acknowledge("sec", "   ", "2026-11-25T11:00:00+00:00")
    i.acknowledge("sec", "key revoked, agency B called", "2026-11-25T11:00:00+00:00")
    assert not i.open and i.acknowledged_by == "sec"
    with pytest.raises(StateConflict, match="already acknowledged"):
        i.acknowledge("sec2", "again", "2026-11-25T12:00:00+00:00")
    assert emitted(i) == [N + "Incident.Raised", N + "Incident.Acknowledged"]


def test_a_breach_report_draft_is_recorded_with_whom_it_names() -> None:
    """Threat: an insider drafting reports (which name people) unrecorded."""
    r = IncidentReport(
        agency=A,
        staff="aud",
        purpose="breach report to the PPC",
        incidents=[str(raised().id)],
        subjects=[pseudonym("victim")],
        destination="reports/incident.json",
    )
    assert r.subjects == [pseudonym("victim")]
    assert emitted(r) == [N + "IncidentReport.Drafted"]
