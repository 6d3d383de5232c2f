"""The rules an incident is raised by: which parking codes are attacks, and what text from a message may be
recorded. Threat: a peer agency or the broker operator writing into fields staff read and reports carry."""

from __future__ import annotations

import pytest

from ledger.app.incidents import fingerprint, incident_id, scrub
from ledger.domain.incidents import INCIDENT_CODES, Incident, IncidentKind, incident_kind
from ledger.errors import InputError, StateConflict


def test_attacks_raise_and_faults_do_not() -> None:
    assert {incident_kind(c) for c in ("bad_signature", "unknown_key", "wrong_agency", "revoked_key")} == {
        IncidentKind.FORGED_SIGNATURE
    }
    assert {incident_kind(c) for c in ("fork", "checkpoint_fork", "forged_own")} == {IncidentKind.FORK}
    assert incident_kind("foreign_writer") is IncidentKind.FOREIGN_WRITER
    assert incident_kind("revoked_key_late") is IncidentKind.REVOKED_KEY_LATE
    # issue 20: the hub's signed lies; a stale map alone is no proof (a replay looks the same)
    assert {incident_kind(c) for c in ("hub_fork", "hub_rollback")} == {IncidentKind.FORK}
    assert {incident_kind(c) for c in ("flag_ignored", "flag_dropped")} == {IncidentKind.HUB_MISBEHAVIOUR}
    assert incident_kind("stale_map") is None
    for fault in (
        "malformed",
        "schema",
        "gap",
        "unknown_agency",
        "key_not_yet_valid",
        "key_expired",
        "agency_held",
        "newer_schema",
    ):
        assert incident_kind(fault) is None, fault
    assert set(INCIDENT_CODES.values()) == set(IncidentKind)


@pytest.mark.parametrize(
    "planted",
    [
        "123456789018",
        "1234 5678 9018",
        "1234-5678-9018",
        "１２３４５６７８９０１８",
        "1.2.3.4.5.6.7.8.9.0.1.8",
        "12345678901812345",
    ],
)
def test_digit_runs_that_could_be_a_number_are_removed(planted: str) -> None:
    cleaned = scrub(f"key 131024:ab{planted}cd\n\x1b[2J", 200)
    assert planted not in cleaned and "[digits removed]" in cleaned and cleaned.isprintable()
    assert scrub("2026-11-25T10:00:00+09:00 agency 131024 v12", 200) == "2026-11-25T10:00:00+09:00 agency 131024 v12"
    assert len(scrub("x" * 500, 40)) == 40


def test_one_id_per_message_and_agency_under_the_node_secret() -> None:
    s1, s2, m = b"\x01" * 32, b"\x02" * 32, "ab" * 32
    assert incident_id(s1, "131024", m) == incident_id(s1, "131024", m)
    assert len({incident_id(s1, "131024", m), incident_id(s1, "131032", m), incident_id(s2, "131024", m)}) == 3
    assert m not in fingerprint(s1, m)


def test_an_incident_is_acknowledged_once_with_a_note() -> None:
    fields = dict(
        agency="131024",
        kind="fork",
        code="fork",
        message="m",
        fingerprint="f",
        origin="131016",
        key_id="k",
        stream="s",
        stream_version=2,
        topic="t",
        event_id="e",
        stamped="t0",
        owner="131024",
        subjects=[],
        claimed_subjects=[],
        parked_id=1,
        source="src",
        reason="r",
        origin_held=False,
    )
    incident = Incident(**fields)
    assert incident.open and incident.version == 1 and incident.stream_version == 2
    with pytest.raises(InputError):
        incident.acknowledge("rev", " ", "t1")
    incident.acknowledge("rev", "本人に連絡した", "t1")
    assert not incident.open and incident.acknowledged_by == "rev"
    with pytest.raises(StateConflict):
        incident.acknowledge("admin", "again", "t2")
