"""The audit report's ``staff.csv``: every staff, role and role-grant change — who, what, when, approved by whom —
and every change of a hosted agency's permission table and approval policy.

Staff events carry no staff id after enrolment (their stream id is keyed, ledger/log/stream_ids.py), and role
grant decisions name no staff member either; so every ``Staff.Enrolled`` and ``RoleGrant.Proposed`` of the log
is remembered as it is read (before the period too: a role granted in the period may belong to someone enrolled
years ago), and each later event of the same stream is reported under the member it concerns. A
``Staff.RoleGranted`` saved with a grant's approval (same batch, just after it) names both administrators.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from ledger.audit.report_format import Section, StaffNames

__all__ = ["STAFF_TOPICS", "StaffChanges"]

# topics without their module (what ledger.audit.report compares)
STAFF_TOPICS = frozenset(
    {
        "Staff.Enrolled",
        "Staff.RoleGranted",
        "Staff.RoleRevoked",
        "Staff.Deactivated",
        "RoleGrant.Proposed",
        "RoleGrant.Approved",
        "RoleGrant.BreakGlassApproved",
        "RoleGrant.Rejected",
        "RoleGrant.Withdrawn",
        "Agency.PermissionGranted",
        "Agency.PermissionRevoked",
        "Agency.ApprovalPolicyChanged",
    }
)

COLUMNS = [
    "time",
    "agency",
    "staff",
    "staff_name",
    "change",
    "role",
    "by",
    "by_name",
    "proposed_by",
    "approved_by",
    "grant_id",
    "note",
    "position",
]


class StaffChanges:
    """Reads staff and role-grant events in log order; :meth:`add` writes the period's into the section."""

    def __init__(self, out_dir: Path, names: StaffNames, hosted: Collection[str]) -> None:
        self.hosted = hosted
        self.section = Section(out_dir, "staff", "Staff, role and role-grant changes", COLUMNS)
        self.names = names
        self.members: dict[str, str] = {}  # Staff stream → staff id
        self.grants: dict[str, tuple[str, str, str]] = {}  # RoleGrant stream → (staff id, role, proposer)
        self.approved: dict[tuple[str, str, str], tuple[str, str]] = {}  # (agency, staff, role) → (proposer, by)

    def add(self, topic: str, ev: Any, origin: str, stream: str, at: str, position: int, in_period: bool) -> None:
        agency = getattr(ev, "agency", None) or origin
        if topic.startswith("Agency."):  # what a role may do, and the approval chain: the agency's own only
            if in_period and origin in self.hosted:
                self._agency_change(topic, ev, origin, at, position)
        elif topic == "Staff.Enrolled":
            self.members[stream] = ev.staff_id
            if in_period:
                self._row(at, agency, ev.staff_id, "enrolled", " ".join(ev.roles), ev.by, "", "", "", "", position)
        elif topic.startswith("Staff."):
            self._member_change(topic, ev, agency, stream, at, position, in_period)
        elif topic == "RoleGrant.Proposed":
            self.grants[stream] = (ev.staff_id, ev.role, ev.proposed_by)
            if in_period:
                change = "grant proposed at enrolment" if getattr(ev, "at_enrolment", False) else "grant proposed"
                self._row(
                    at,
                    agency,
                    ev.staff_id,
                    change,
                    ev.role,
                    ev.proposed_by,
                    ev.proposed_by,
                    "",
                    stream,
                    ev.note,
                    position,
                )
        else:
            self._grant_decision(topic, ev, agency, stream, at, position, in_period)

    def _agency_change(self, topic: str, ev: Any, agency: str, at: str, position: int) -> None:
        if topic == "Agency.ApprovalPolicyChanged":
            change, role, note = "approval policy changed", "", f"approvals required: {ev.approvals_required}"
        else:
            verb = "granted" if topic == "Agency.PermissionGranted" else "revoked"
            change, role, note = f"permission {verb}", ev.role, ev.action
        self._row(at, agency, "", change, role, ev.by, "", "", "", note, position)

    def _member_change(
        self, topic: str, ev: Any, agency: str, stream: str, at: str, position: int, in_period: bool
    ) -> None:
        if not in_period:
            return
        who = self.members.get(stream, f"(stream {stream})")
        role = getattr(ev, "role", "")
        change = {"Staff.RoleGranted": "role granted", "Staff.RoleRevoked": "role revoked"}.get(topic, "deactivated")
        proposed, approved = ("", "")
        if topic == "Staff.RoleGranted":
            proposed, approved = self.approved.pop((agency, who, role), ("", ""))
        self._row(at, agency, who, change, role, ev.by, proposed, approved, "", "", position)

    def _grant_decision(
        self, topic: str, ev: Any, agency: str, stream: str, at: str, position: int, in_period: bool
    ) -> None:
        who, role, proposer = self.grants.get(stream, (f"(grant {stream})", "", ""))
        by = ev.by if topic != "RoleGrant.BreakGlassApproved" else f"{ev.by_agency}/{ev.by}"
        if topic in ("RoleGrant.Approved", "RoleGrant.BreakGlassApproved"):
            self.approved[(agency, who, role)] = (proposer, by)
        if not in_period:
            return
        change = {
            "RoleGrant.Approved": "grant approved",
            "RoleGrant.BreakGlassApproved": "grant approved (BREAK-GLASS)",
            "RoleGrant.Rejected": "grant rejected",
            "RoleGrant.Withdrawn": "grant withdrawn",
        }[topic]
        approved = by if "approved" in change else ""
        note = str(getattr(ev, "note", None) or getattr(ev, "reason", ""))
        self._row(at, agency, who, change, role, by, proposer, approved, stream, note, position)

    def _row(
        self,
        at: str,
        agency: str,
        who: str,
        change: str,
        role: str,
        by: str,
        proposed: str,
        approved: str,
        grant: str,
        note: str,
        position: int,
    ) -> None:
        self.section.add(
            [
                at,
                agency,
                who,
                self.names(agency, who),
                change,
                role,
                by,
                self.names(agency, by),
                proposed,
                approved,
                grant,
                note,
                position,
            ]
        )
