"""Break-glass from the prefecture's own node (issue 18): B, a municipality with a single administrator, runs
its node; its prefecture P (Tokyo) runs another. P's administrator co-approves B's grant with their own staff
key on P's node; B's node checks the co-approval against P's roster as B's node received it over the normal
ingest path, and records it in ``RoleGrant.BreakGlassApproved``, where ``audit verify`` checks it again.

Threats: **an administrator alone** (B's only administrator making a second one with a co-approval they forged
with this node's keys or a key of their own), **a peer agency** (a municipality's or another prefecture's
administrator co-approving), a co-approval copied onto another grant, and a revoked or non-administrator key.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consumers.ingest import PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor
from ledger.app.credentials import StaffSigner
from ledger.audit.report import audit_report
from ledger.audit.verify import verify_log
from ledger.domain.role_grants import RoleGrant
from ledger.domain.staff_acts import co_approval_statement, note_digest
from ledger.domain.types import Role
from ledger.errors import Code, RuleViolation
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import C, NodeFactory
from tests.support.staff import activate_admin, enrol
from tests.support.trust import trust

B, P, OSAKA = "131024", "130001", "270008"
B_ADMIN, P_ADMIN = Actor(B, "admin"), Actor(P, "admin")
NOTE = "B's administrator asked by phone on 12/1; confirmed by letter 2026-123"


@pytest.fixture
def nodes(make_node: NodeFactory, tmp_path: Path) -> tuple[Node, Node]:
    """B's node (B alone, one administrator) and the prefectures' node (P, Osaka, and municipality C)."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    far = (
        AgencySpec(P, "東京都", "prefecture"),
        AgencySpec(OSAKA, "大阪府", "prefecture"),
        AgencySpec(C, "C市", "municipality"),
    )
    p = make_node(far, name="p", staff=False, pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", staff=False, pseudonym_key_file=key)
    for code in (P, OSAKA, C):
        activate_admin(p, code)
        trust(b, p, code)
    activate_admin(b, B, second=False)  # B's single administrator: grants there need break-glass
    enrol(p, P_ADMIN, "clerk", ["requester"])  # a certified key of P, not an administrator's
    enrol(b, B_ADMIN, "tanaka", [])
    return b, p


def deliver(src: Node, dst: Node) -> None:
    """What ``src`` publishes (agencies, key registries, rosters), ingested by ``dst`` as from Kafka."""
    pending = PendingStore(dst.app, dst.engine)
    outcomes = [ingest(dst.app, raw, pending).kind for _, _, raw in publishable(src.app, 0)]
    assert outcomes and set(outcomes) <= {"applied", "duplicate"}, outcomes


def propose(b: Node, who: str = "tanaka") -> tuple[UUID, dict[str, str]]:
    grant = b.app.propose_role(B_ADMIN, who, "administrator", "B needs a second administrator")
    return grant, b.app.export_grant(B_ADMIN, grant)


def signed_by(signer: StaffSigner, prefecture: str, exported: Mapping[str, str], note: str = NOTE) -> dict[str, Any]:
    """A co-approval made by hand with ``signer`` (what a patched build or a peer could send)."""
    at, noted = "2026-12-07T03:00:00+00:00", note_digest(note)
    statement = co_approval_statement(
        prefecture, signer.staff, signer.key_id, exported["agency"], exported["grant"], exported["digest"], noted, at
    )
    return {
        "prefecture": prefecture, "staff": signer.staff, "key_id": signer.key_id, "agency": exported["agency"],
        "grant": exported["grant"], "digest": exported["digest"], "note": note, "note_digest": noted, "at": at,
        "signature": signer.sign(statement)["signature"],
    }  # fmt: skip


def refused(b: Node, grant: UUID, co: Mapping[str, Any], why: str) -> None:
    with pytest.raises(RuleViolation) as info:
        b.app.approve_grant_from(B_ADMIN, grant, co)
    assert info.value.code == Code.BREAK_GLASS_REFUSED and why in str(info.value), str(info.value)
    assert b.app.load(RoleGrant, grant, "role grant").status == "pending", "a refusal changes nothing"


def test_the_prefecture_co_approves_from_its_own_node_and_the_audit_checks_it(
    nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    """Threat: an administrator alone. B's only administrator proposes tanaka as administrator; P's administrator
    signs a co-approval on P's node; B's node accepts it only once P's roster has arrived, records it (naming
    P/admin, never silently) and the audit verifies the embedded signature and lists the row as break-glass."""
    b, p = nodes
    grant, exported = propose(b)
    co = p.app.co_approve(P_ADMIN, exported, NOTE)
    assert co["prefecture"] == P and co["staff"] == "admin" and co["key_id"].startswith(f"{P}:")
    refused(b, grant, co, "is not an agency registered here")  # P's events have not reached B yet
    deliver(p, b)
    view = b.app.approve_grant_from(B_ADMIN, grant, co)
    assert view.as_dict()["decided_by"] == f"{P}/admin (break-glass)"
    assert "administrator" in b.app.staff(B, "tanaka").roles
    (approved,) = [e for e in b.app.events.get(grant) if type(e).__name__ == "BreakGlassApproved"]
    assert approved.by_agency == P and approved.note == NOTE
    assert approved.co_approval["signature"] == co["signature"] and "note" not in approved.co_approval
    report = verify_log(b.app, workers=1)
    assert report.ok and not report.staff_findings

    enrol(b, B_ADMIN, "aud", ["auditor"])
    now = datetime.now(UTC)
    audit_report(b, Actor(B, "aud"), now - timedelta(hours=1), now + timedelta(minutes=1), tmp_path / "report")
    rows = list(csv.DictReader((tmp_path / "report" / "staff.csv").open(encoding="utf-8")))
    (row,) = [r for r in rows if r["change"] == "grant approved (BREAK-GLASS)"]
    assert row["staff"] == "tanaka" and row["approved_by"] == f"{P}/admin" and row["note"] == NOTE


def test_a_co_approval_the_node_or_the_lone_administrator_made_is_refused_and_the_audit_names_a_patched_one(
    nodes: tuple[Node, Node],
) -> None:
    """Threat: an administrator alone (and a shell user with the node's keys). Signed with B's administrator's
    own certified key, with a fresh key named after P's administrator, or with B's node signing key: none is
    certified in P's roster, so each is refused. Written past the app (a patched build), the audit names it."""
    b, p = nodes
    deliver(p, b)
    grant, exported = propose(b)
    own = b.app.signer_for(B_ADMIN)
    refused(b, grant, signed_by(own, P, exported) | {"staff": "admin"}, "is not a staff key certified for")
    fresh = StaffSigner(P, "admin", Ed25519PrivateKey.generate())
    refused(b, grant, signed_by(fresh, P, exported), "is not a staff key certified for")
    node_key = signed_by(fresh, P, exported)
    node_signer = b.app.signers[B]
    node_key["key_id"] = node_signer.key_id
    refused(b, grant, node_key, "is not a staff key certified for")

    forged = b.app.load(RoleGrant, grant, "role grant")
    member = b.app.staff(B, "tanaka")
    co = signed_by(fresh, P, exported)
    forged.approve_break_glass("admin", P, NOTE, co_approval={k: v for k, v in co.items() if k != "note"})
    member.grant_role(Role.ADMINISTRATOR, by=f"{P}/admin")
    b.app.save_as(B, forged, member)
    report = verify_log(b.app, workers=1)
    assert not report.ok
    assert any("co-approval" in f.reason and "not a staff key certified" in f.reason for f in report.staff_findings)


def test_a_peer_agency_or_another_grant_is_refused(nodes: tuple[Node, Node]) -> None:
    """Threat: a peer agency. A municipality's administrator (C) and another prefecture's (Osaka) co-approve B's
    grant: refused, on their own node and on B's. A co-approval of one grant shown for another, with a changed
    note, or for a grant whose staff or role was changed after it was signed: refused."""
    b, p = nodes
    deliver(p, b)
    grant, exported = propose(b)
    for other in (Actor(C, "admin"), Actor(OSAKA, "admin")):
        with pytest.raises(RuleViolation) as info:
            p.app.co_approve(other, exported, NOTE)
        assert info.value.code == Code.BREAK_GLASS_REFUSED
    refused(b, grant, signed_by(p.app.signer_for(Actor(C, "admin")), C, exported), "only a prefecture")
    refused(b, grant, signed_by(p.app.signer_for(Actor(OSAKA, "admin")), OSAKA, exported), "is not the prefecture")

    co = p.app.co_approve(P_ADMIN, exported, NOTE)
    b.app.enrol(B_ADMIN, "suzuki", "suzuki", [])
    other, other_exported = propose(b, "suzuki")
    refused(b, other, co, "another grant")
    refused(b, other, co | {"grant": str(other)}, "grant digest does not match")
    refused(b, other, co | {"grant": str(other), "digest": other_exported["digest"]}, "signature does not verify")
    refused(b, grant, co | {"note": "something else"}, "not the one the prefecture's administrator signed")
    refused(b, grant, co | {"digest": "0" * 64}, "grant digest does not match")
    b.app.approve_grant_from(B_ADMIN, grant, co)  # the genuine one still works, once
    with pytest.raises(Exception, match="already approved"):
        b.app.approve_grant_from(B_ADMIN, grant, co)


def test_a_revoked_or_non_administrator_key_of_the_prefecture_is_refused(nodes: tuple[Node, Node]) -> None:
    """Threat: a peer agency's staff beyond their role, and a key that was lost. P's clerk holds a certified key
    but not an administrator's; P's administrator's key revoked on P's node (and the revocation received) no
    longer co-approves."""
    b, p = nodes
    grant, exported = propose(b)
    clerk = p.app.signer_for(Actor(P, "clerk"))
    co = p.app.co_approve(P_ADMIN, exported, NOTE)
    p.app.revoke_staff_keys(P_ADMIN, "admin", "laptop lost")
    deliver(p, b)
    refused(b, grant, signed_by(clerk, P, exported), "not an administrator's")
    refused(b, grant, co, "was revoked")


def test_a_break_glass_grant_certifies_the_role_at_a_peer_too(nodes: tuple[Node, Node]) -> None:
    """Threat: a peer agency taking B's word for a role. The role P co-approved reaches P's node (a peer of B
    here) as B's ``StaffRoster.RoleCertified`` carrying B's administrator's signature and P's co-approval:
    P's node checks both against the rosters it holds and applies it; ``audit verify`` passes it on both."""
    b, p = nodes
    trust(p, b, B)
    deliver(p, b)
    grant, exported = propose(b)
    b.app.approve_grant_from(B_ADMIN, grant, p.app.co_approve(P_ADMIN, exported, NOTE))
    deliver(b, p)  # every event applied: the role certification included
    at_peer = p.app.roster(B)
    assert at_peer is not None and at_peer.roles_recorded and at_peer.holds("tanaka", "administrator")
    for node in (b, p):
        report = verify_log(node.app, workers=1)
        assert report.ok and not report.staff_findings, report.staff_findings
