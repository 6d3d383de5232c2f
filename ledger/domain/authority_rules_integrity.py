"""The writer-authority rows for the log's integrity: signed checkpoints and agency holds on a fork, incidents
and parked messages. Assembled into the one table by :mod:`ledger.domain.authority_rules`."""

from __future__ import annotations

from ledger.domain.authority_row import DOMAIN_PREFIX, NODE, Rule, Writer, admin, checkpoints_stream

__all__ = ["integrity_rules"]

_D = DOMAIN_PREFIX


def integrity_rules() -> list[Rule]:
    own = Writer.OWNER
    return [
        # -- checkpoints ---------------------------------------------------------------------------------
        Rule(
            _D + "checkpoints:CheckpointLog.Opened",
            True,
            own,
            NODE,
            agency_fields=("agency",),
            stream_of=checkpoints_stream,
        ),
        Rule(
            _D + "checkpoints:CheckpointLog.CheckpointSigned",
            True,
            own,
            NODE + " or `audit checkpoint`",
            key_fields=("key_id",),
        ),
        Rule(
            _D + "checkpoints:AgencyHold.Opened",
            False,
            own,
            NODE + " (on a checkpoint fork)",
            agency_fields=("agency",),
            other_agency_fields=("held",),
        ),
        Rule(_D + "checkpoints:AgencyHold.Placed", False, own, NODE + " (on a checkpoint fork)"),
        Rule(_D + "checkpoints:AgencyHold.Lifted", False, own, admin("audit release")),
        # -- incidents and parked messages (local) -------------------------------------------------------
        Rule(
            _D + "incidents:Incident.Raised",
            False,
            own,
            NODE + " (a parked message was evidence of an attack)",
            agency_fields=("agency",),
            other_agency_fields=("origin", "owner", "key_id"),
            note="`origin`, `owner`, `key_id` are what the parked message named: evidence, not authority",
        ),
        Rule(
            _D + "incidents:Incident.Acknowledged",
            False,
            own,
            "administrator, auditor or held-request decider (`incident ack`)",
        ),
        Rule(
            _D + "incidents:IncidentReport.Drafted",
            False,
            own,
            "administrator or auditor (`incident report`)",
            agency_fields=("agency",),
        ),
        Rule(
            _D + "parked:RevokedKeyAcceptance.Proposed",
            False,
            own,
            admin("consumers replay --accept-revoked-key"),
            agency_fields=("agency",),
            other_agency_fields=("origin", "key_id"),
        ),
        Rule(
            _D + "parked:RevokedKeyAcceptance.Approved",
            False,
            own,
            admin("consumers replay --accept-revoked-key") + ", not the proposer",
        ),
    ]
