"""The writer-authority table itself: one :class:`Rule` per shared event type (who may write it, which payload
fields must name the signer, which key fields must be the signer's keys, which node kinds may originate it).
The checks that apply it and the page that renders it are in :mod:`ledger.domain.authority`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

__all__ = ["AGENCY_NODES", "DOMAIN_PREFIX", "TABLE", "NodeKind", "Rule", "Writer"]


class NodeKind(StrEnum):
    AGENCY = "agency"  # a municipality's or protection body's node (every node today)
    HUB = "hub"  # the linkage hub (情報提供ネットワークシステム), coming
    PORTAL = "portal"  # Mynaportal, coming


class Writer(StrEnum):
    OWNER = "owner"  # the agency that signed the stream's v1
    ANY_AGENCY = "any agency"


AGENCY_NODES = frozenset({NodeKind.AGENCY})


@dataclass(frozen=True)
class Rule:
    topic: str
    shared: bool
    writer: Writer
    locally: str
    agency_fields: tuple[str, ...] = ()
    key_fields: tuple[str, ...] = ()
    other_agency_fields: tuple[str, ...] = ()
    party: str = ""
    nodes: frozenset[NodeKind] = AGENCY_NODES
    # the stream id a creation event must have, from the signer's agency (aggregates with one stream per agency:
    # a peer cannot take another agency's registry id with a stream of its own)
    stream_of: Callable[[str], UUID] | None = None
    note: str = ""


def _agency_stream(origin: str) -> UUID:
    from ledger.domain.agencies import Agency

    return Agency.create_id(code=origin)


def _keys_stream(origin: str) -> UUID:
    from ledger.domain.keys import KeyRegistry

    return KeyRegistry.create_id(agency=origin)


def _roster_stream(origin: str) -> UUID:
    from ledger.domain.roster import StaffRoster

    return StaffRoster.create_id(agency=origin)


def _checkpoints_stream(origin: str) -> UUID:
    from ledger.domain.checkpoints import CheckpointLog

    return CheckpointLog.create_id(agency=origin)


DOMAIN_PREFIX = _D = "ledger.domain."
_ADMIN = "administrator (`administer`)"


def _admin(command: str) -> str:
    return f"administrator (`administer`: `flagledger {command}`)"


_SETUP = "the node at set-up (`flagledger init`)"
_NODE = "the node itself (no staff)"
_PROVIDER = (
    "provider (payload `agency`, the stream's owner); the querier (payload `querier`) never appends: "
    "`FlagLedger._provision`, `propose_decision` and `approve_decision` all save as the provider"
)


def _rules() -> list[Rule]:
    own = Writer.OWNER
    return [
        # -- agencies: the permission table and policy are the agency's own (attack 2) -------------------
        Rule(_D + "agencies:Agency.Registered", True, own, _SETUP, agency_fields=("code",), stream_of=_agency_stream),
        Rule(_D + "agencies:Agency.ApprovalPolicyChanged", True, own, _ADMIN),
        Rule(_D + "agencies:Agency.PermissionGranted", True, own, _ADMIN),
        Rule(_D + "agencies:Agency.PermissionRevoked", True, own, _ADMIN),
        Rule(
            _D + "agencies:Staff.Enrolled",
            False,
            own,
            _ADMIN + "; the first administrator at set-up",
            agency_fields=("agency",),
        ),
        Rule(_D + "agencies:Staff.RoleGranted", False, own, _ADMIN),
        Rule(_D + "agencies:Staff.RoleRevoked", False, own, _ADMIN),
        Rule(_D + "agencies:Staff.Deactivated", False, own, _ADMIN),
        # -- grants of privileged roles: two administrators, or break-glass (ledger/domain/role_grants.py) --
        Rule(
            _D + "role_grants:RoleGrant.Proposed",
            False,
            own,
            _admin("staff grant-role") + " or `staff enroll` with a privileged role",
            agency_fields=("agency",),
        ),
        Rule(_D + "role_grants:RoleGrant.Approved", False, own, _admin("staff approve-grant") + ", not the proposer"),
        Rule(
            _D + "role_grants:RoleGrant.BreakGlassApproved",
            False,
            own,
            "the agency's prefecture's administrator, only while the agency has a single administrator: hosted "
            "here (`staff approve-grant --break-glass`), or on its own node with a co-approval signed by their "
            "staff key (`staff co-approve`, recorded by `staff approve-grant --break-glass-from`); saved under "
            "the agency's own key",
            other_agency_fields=("by_agency",),
        ),
        Rule(_D + "role_grants:RoleGrant.Rejected", False, own, _admin("staff reject-grant") + ", not the proposer"),
        Rule(_D + "role_grants:RoleGrant.Withdrawn", False, own, "the proposer (`flagledger staff withdraw-grant`)"),
        Rule(
            _D + "accounts:SystemAccount.Enrolled",
            False,
            own,
            _admin("system enroll"),
            agency_fields=("agency",),
        ),
        Rule(_D + "accounts:SystemAccount.SecretReplaced", False, own, _admin("system new-secret")),
        Rule(_D + "accounts:SystemAccount.Deactivated", False, own, _admin("system deactivate")),
        Rule(_D + "accounts:SystemAccount.SignInFailed", False, own, _NODE + " (a wrong secret at sign-in)"),
        Rule(_D + "accounts:SystemAccount.FailuresCleared", False, own, _NODE + " (a right secret at sign-in)"),
        # -- keys: only the registry's agency, and only about its own keys (attack 2) ----------------------
        Rule(_D + "keys:KeyRegistry.Opened", True, own, _SETUP, agency_fields=("agency",), stream_of=_keys_stream),
        Rule(
            _D + "keys:KeyRegistry.KeyAdded",
            True,
            own,
            _admin("key rotate") + "; the genesis key at set-up",
            key_fields=("key_id",),
        ),
        Rule(_D + "keys:KeyRegistry.KeyRetired", True, own, _admin("key rotate"), key_fields=("key_id",)),
        Rule(_D + "keys:KeyRegistry.KeyRevoked", True, own, _admin("key revoke"), key_fields=("key_id",)),
        Rule(
            _D + "keys:KeyRegistry.RemoteKeyTrusted",
            True,
            own,
            _admin("agency trust"),
            other_agency_fields=("remote_agency", "key_id"),
            note="folded into the key registry only on the node of the agency that vouched",
        ),
        # -- staff credentials (local) and the roster of staff keys (shared): docs/staff-signing.md ---------
        Rule(
            _D + "credentials:StaffCredential.Opened",
            False,
            own,
            _admin("staff enroll") + "; the first administrator at set-up",
            agency_fields=("agency",),
        ),
        Rule(_D + "credentials:StaffCredential.CodeIssued", False, own, _admin("staff enroll")),
        Rule(
            _D + "credentials:StaffCredential.Activated",
            False,
            own,
            "the staff member (`staff activate`)",
            key_fields=("key_id",),
        ),
        Rule(_D + "credentials:StaffCredential.PasswordChanged", False, own, "the staff member (`staff password`)"),
        Rule(_D + "credentials:StaffCredential.UnlockFailed", False, own, _NODE + " (a wrong password)"),
        Rule(_D + "credentials:StaffCredential.FailuresCleared", False, own, _NODE + " (a right password)"),
        Rule(
            _D + "roster:StaffRoster.Opened",
            True,
            own,
            "the first administrator's own key (`staff activate` of the code `init` printed)",
            agency_fields=("agency",),
            stream_of=_roster_stream,
            note="the one root: a second is refused; its certificate is checked by every reader",
        ),
        Rule(
            _D + "roster:StaffRoster.KeyCertified",
            True,
            own,
            "the staff member (`staff activate`), under an administrator's signed enrolment code",
            note="checked by every reader: proof of possession, the one-time code, a certified administrator's "
            "signature",
        ),
        Rule(
            _D + "roster:StaffRoster.SecurityKeyCertified",
            True,
            own,
            "the staff member registering a security key (console), signed by their own staff key",
            note="checked by every reader: the person's staff key (certified, not revoked) signed the credential, "
            "its COSE key and the relying party",
        ),
        Rule(
            _D + "roster:StaffRoster.RoleCertified",
            True,
            own,
            "two administrators (`staff grant-role` + `staff approve-grant`; requester: one), or one plus the "
            "prefecture's break-glass co-approval",
            note="checked by every reader: each administrator's staff-key signature over the grant, their "
            "administrator role in the roster, and that an administrator holds no requester/approver/operator",
        ),
        Rule(
            _D + "roster:StaffRoster.RolesWithdrawn",
            True,
            own,
            _admin("staff revoke-role") + "; " + _admin("staff deactivate"),
            note="takes authority away, so it needs no person's signature (like a key's revocation)",
        ),
        Rule(
            _D + "roster:StaffRoster.KeyRevoked",
            True,
            own,
            _admin("staff deactivate") + "; the staff member removing a security key",
            key_fields=("key_id",),
        ),
        # -- intake, flag requests (local) ---------------------------------------------------------------
        Rule(_D + "cases:ProtectionCase.Opened", False, own, "requester (`open_case`)", agency_fields=("agency",)),
        Rule(_D + "cases:ProtectionCase.PerpetratorAdded", False, own, "requester (`open_case`)"),
        Rule(_D + "cases:ProtectionCase.ChecklistUpdated", False, own, "requester (`open_case`)"),
        Rule(_D + "cases:ProtectionCase.Closed", False, own, "requester (`open_case`)"),
        Rule(
            _D + "cases:ProtectionCase.CompanionProposed",
            False,
            own,
            "requester (`open_case`), with a flag request on the companion",
        ),
        Rule(
            _D + "cases:ProtectionCase.CompanionAttached",
            False,
            own,
            "operator (`execute_flag`), with the companion's approved flag request",
        ),
        # -- erasure (issue 22): four eyes, then the person's data keys are destroyed ---------------------
        Rule(
            _D + "erasure:ErasureRequest.Requested",
            False,
            own,
            _admin("erase request"),
            agency_fields=("agency",),
            note="encrypted under the person's data key: erased with them",
        ),
        Rule(_D + "erasure:ErasureRequest.Approved", False, own, _admin("erase approve") + ", not the requester"),
        Rule(
            _D + "erasure:ErasureRequest.Erased",
            False,
            own,
            _admin("erase approve") + ", with the approval",
            note="names the destroyed data keys (random refs), never the person",
        ),
        Rule(_D + "erasure:ErasureRequest.Rejected", False, own, _admin("erase approve") + ", not the requester"),
        Rule(
            _D + "erasure:ErasureNotice.Published",
            True,
            own,
            _admin("erase approve") + ", with the approval",
            agency_fields=("agency",),
            party="the erasing agency (payload `agency`); other nodes drop their views of its events about the person",
        ),
        Rule(_D + "flags:FlagRequest.Requested", False, own, "requester (`request_flag`)", agency_fields=("agency",)),
        Rule(_D + "flags:FlagRequest.Approved", False, own, "approver (`approve_flag`), not the requester"),
        Rule(_D + "flags:FlagRequest.Rejected", False, own, "approver (`approve_flag`), not the requester"),
        Rule(
            _D + "flags:FlagRequest.Executed",
            False,
            own,
            "operator (`execute_flag`); a provisional flag: its requester (`set_provisional`)",
        ),
        Rule(_D + "flags:FlagRequest.CoApproved", False, own, "approver (`approve_flag`), not the requester"),
        Rule(
            _D + "flags:FlagRequest.Escalated",
            False,
            own,
            _NODE + ": a provisional flag not co-approved in a business day",
        ),
        # -- a protected person's year (docs/year.md) ---------------------------------------------------------
        Rule(
            _D + "moves:ResidenceChange.Recorded",
            True,
            own,
            "requester (`request_flag`) of the municipality moved from or to; the node, for the residence registry",
            agency_fields=("agency",),
            other_agency_fields=("from_agency", "to_agency"),
            party="recording municipality (payload `agency`); the new one (payload `to_agency`) never appends: it "
            "takes over with its own FlagRequest and Protection",
        ),
        Rule(
            _D + "moves:ReleaseDecision.Proposed", False, own, "requester (`request_flag`)", agency_fields=("agency",)
        ),
        Rule(
            _D + "moves:LastHolderWarning.Raised",
            True,
            own,
            "requester (`request_flag`), with a release that would leave no holder anywhere",
            agency_fields=("agency",),
        ),
        Rule(_D + "moves:ReleaseDecision.Approved", False, own, "approver (`approve_flag`), not the proposer"),
        Rule(_D + "moves:ReleaseDecision.Used", False, own, "operator (`execute_flag`), with the release"),
        Rule(
            _D + "guardians:GuardianBar.Proposed",
            True,
            own,
            "requester (`request_flag`)",
            agency_fields=("agency",),
            party="barring agency (payload `agency`, the stream's owner); it only ever takes access away",
        ),
        Rule(_D + "guardians:GuardianBar.Approved", True, own, "approver (`approve_flag`), not the proposer"),
        Rule(_D + "guardians:GuardianBar.LiftProposed", True, own, "requester (`request_flag`)"),
        Rule(_D + "guardians:GuardianBar.Lifted", True, own, "approver (`approve_flag`), not the lift's proposer"),
        Rule(
            _D + "proxy_approvals:HolderProxyApproval.Proposed",
            False,
            own,
            "requester (`request_flag`) of an agency holding a flag on the person, signed with their staff key",
            agency_fields=("agency",),
            note="issue 19: sent to the hub (`proxy_approval`) by the node's bridge once approved or withdrawn",
        ),
        Rule(
            _D + "proxy_approvals:HolderProxyApproval.Approved",
            False,
            own,
            "approver (`approve_flag`), not the proposer, signed with their staff key",
        ),
        Rule(_D + "proxy_approvals:HolderProxyApproval.WithdrawalProposed", False, own, "requester (`request_flag`)"),
        Rule(
            _D + "proxy_approvals:HolderProxyApproval.Withdrawn",
            False,
            own,
            "approver (`approve_flag`), not the withdrawal's proposer",
        ),
        Rule(_D + "terms:SupportTerm.Applied", False, own, "requester (`request_flag`)", agency_fields=("agency",)),
        Rule(_D + "terms:SupportTerm.ExtensionRequested", False, own, "requester (`request_flag`)"),
        Rule(_D + "terms:SupportTerm.Reminded", False, own, _NODE + " (`flagledger year step`)"),
        Rule(_D + "terms:SupportTerm.Escalated", False, own, _NODE + " (`flagledger year step`)"),
        Rule(_D + "terms:SupportTerm.LapseProposed", False, own, "requester (`request_flag`)"),
        Rule(_D + "terms:SupportTerm.Lapsed", False, own, "approver (`approve_flag`), not the proposer"),
        # -- the flags an agency holds: what protects everywhere (attack 1) --------------------------------
        Rule(_D + "flags:Protection.Opened", True, own, "operator (`execute_flag`)", agency_fields=("agency",)),
        Rule(_D + "flags:Protection.FlagsSet", True, own, "operator (`execute_flag`)", agency_fields=("agency",)),
        Rule(_D + "flags:Protection.FlagsRenewed", True, own, "operator (`execute_flag`)", agency_fields=("agency",)),
        Rule(_D + "flags:Protection.FlagsReleased", True, own, "operator (`execute_flag`)", agency_fields=("agency",)),
        Rule(
            _D + "flags:BodyRequest.Sent",
            True,
            own,
            "requester of a protection body (`send_body_request`)",
            agency_fields=("agency",),
            other_agency_fields=("municipality",),
            party="sending protection body (payload `agency`); the municipality (payload `municipality`) never "
            "appends: it answers with its own FlagRequest and Protection",
        ),
        Rule(
            _D + "bodies:BodyOutcome.Recorded",
            True,
            own,
            "the asked municipality's requester, approver or operator, with the act on its flag request that "
            "names the body request (requested, approved, rejected, executed)",
            agency_fields=("agency",),
            other_agency_fields=("body",),
            party="municipality that was asked (payload `agency`); the body (payload `body`) reads it, never "
            "appends; it names no person",
        ),
        # -- information provision -----------------------------------------------------------------------
        Rule(
            _D + "provision:ProvisionRequest.Received",
            True,
            own,
            "counter (`request_provision`) or the linkage network (`receive_query`)",
            agency_fields=("agency",),
            other_agency_fields=("querier",),
            party=_PROVIDER,
        ),
        Rule(
            _D + "provision:ProvisionRequest.AutoProvided",
            True,
            own,
            "the provider's node, with Received",
            party=_PROVIDER,
        ),
        Rule(_D + "provision:ProvisionRequest.Held", True, own, "the provider's node, with Received", party=_PROVIDER),
        Rule(
            _D + "provision:ProvisionRequest.DecisionProposed", True, own, "reviewer (`review_held`)", party=_PROVIDER
        ),
        Rule(
            _D + "provision:ProvisionRequest.ManuallyProvided",
            True,
            own,
            "approver (`approve_held`), not the proposer",
            party=_PROVIDER,
        ),
        Rule(
            _D + "provision:ProvisionRequest.Refused",
            True,
            own,
            "approver (`approve_held`), not the proposer",
            party=_PROVIDER,
        ),
        Rule(
            _D + "provision:ProvisionRequest.Reopened",
            True,
            own,
            "the provider's node, on the hub's `decide_again` escalation (a decision the hub refused as taken on "
            "advice that changed since); no staff act, and no other party's message, reopens a request",
            party=_PROVIDER,
        ),
        Rule(
            _D + "provision:ProvisionRequest.Released",
            True,
            own,
            "the node at the provider's batch time (`flagledger provision release` or the node loop)",
            party=_PROVIDER,
        ),
        # -- answers that need staff (issue 21): local to the provider ---------------------------------
        Rule(_D + "answers:AnswerPolicy.Opened", False, own, _ADMIN, agency_fields=("agency",)),
        Rule(_D + "answers:AnswerPolicy.BatchTimesChanged", False, own, _ADMIN),
        Rule(_D + "answers:AnswerPolicy.DueDaysChanged", False, own, _ADMIN),
        Rule(_D + "answers:AnswerPolicy.ManualItemMarked", False, own, _ADMIN),
        Rule(_D + "answers:AnswerPolicy.ManualItemUnmarked", False, own, _ADMIN),
        Rule(_D + "answers:CopyNote.Opened", False, own, "reviewer (`review_held`)", agency_fields=("agency",)),
        Rule(_D + "answers:CopyNote.Changed", False, own, "reviewer (`review_held`)"),
        Rule(
            _D + "answers:HeldFile.Opened",
            False,
            own,
            "the provider's node, with ProvisionRequest.Held",
            agency_fields=("agency",),
        ),
        Rule(_D + "answers:HeldFile.Escalated", False, own, _NODE + ": a held request past its due date"),
        Rule(_D + "answers:HeldFile.Closed", False, own, "with ProvisionRequest.Released"),
        Rule(
            _D + "provision:ProbeNotice.Sent",
            True,
            own,
            "the provider's node, with Received",
            agency_fields=("agency",),
            other_agency_fields=("holders", "querier"),
            party="provider that received the query (payload `agency`); the flag holders (payload `holders`) "
            "never append: they read it in their work queue",
        ),
        # -- identity ------------------------------------------------------------------------------------
        Rule(
            _D + "identity:PseudonymLink.Linked",
            True,
            own,
            "approver (`approve_link`) of a link request, not its requester (older logs: requester, `request_flag`)",
            agency_fields=("agency",),
            note="only the person's residence municipality (its latest recorded move; a municipality when none is "
            "recorded): another agency's link is parked (`not_residence`)",
        ),
        Rule(
            _D + "identity:PseudonymLink.Unlinked",
            True,
            own,
            "approver (`approve_link`) of an unlink request, not its requester",
            note="only the linking agency undoes its link; a peer's link that would chain or cycle is parked "
            "(`link_conflict`)",
        ),
        Rule(
            _D + "identity:PseudonymLink.Relinked",
            True,
            own,
            "approver (`approve_link`) of a link request for an unlinked old number, not its requester",
        ),
        Rule(
            _D + "identity:LinkRequest.Requested", False, own, "requester (`request_link`)", agency_fields=("agency",)
        ),
        Rule(_D + "identity:LinkRequest.Approved", False, own, "approver (`approve_link`), not the requester"),
        Rule(_D + "identity:LinkRequest.Rejected", False, own, "approver (`approve_link`), not the requester"),
        Rule(
            _D + "identity:ProxyRegistration.Registered",
            True,
            own,
            "requester (`open_case`)",
            agency_fields=("agency",),
            party="registering agency (payload `agency`, the stream's owner) opens it; see Cancelled",
        ),
        Rule(
            _D + "identity:ProxyRegistration.Cancelled",
            True,
            Writer.ANY_AGENCY,
            "requester (`open_case`)",
            party="any agency: the victim's new municipality cancels the perpetrator's proxy registered where "
            "they lived together (intake advice, Point 1); the signer is recorded in the header",
            note="the one event a non-owner may append: a cancellation only ever takes access away",
        ),
        Rule(
            _D + "identity:PeerProxyCancellation.Cancelled",
            False,
            own,
            "requester (`open_case`), in hub mode, of a proxy another agency registered",
            agency_fields=("agency",),
            note="issue 19: sent to the hub (`proxy_registration`, `cancel`) by the node's bridge; the hub takes it "
            "only from an agency holding a protection on the person",
        ),
        Rule(
            _D + "identity:AccessRecord.ProtectedDetailsRead",
            False,
            own,
            "whoever read (`view_protected`, or the work a listing serves)",
            agency_fields=("agency",),
        ),
        Rule(
            _D + "identity:TokenGrant.Issued",
            False,
            own,
            _ADMIN + ", or the staff member signing in themselves (`via`)",
            agency_fields=("agency",),
        ),
        Rule(
            _D + "security_keys:SecurityKeys.Opened",
            False,
            own,
            "the staff member registering a security key (console)",
            agency_fields=("agency",),
        ),
        Rule(_D + "security_keys:SecurityKeys.Registered", False, own, "the staff member themselves (console)"),
        Rule(_D + "security_keys:SecurityKeys.Used", False, own, "the staff member signing in (console)"),
        Rule(_D + "security_keys:SecurityKeys.Removed", False, own, "the staff member, or " + _ADMIN),
        Rule(_D + "one_time_codes:SignInPolicy.Opened", False, own, _ADMIN, agency_fields=("agency",)),
        Rule(_D + "one_time_codes:SignInPolicy.TotpAllowed", False, own, _ADMIN),
        Rule(_D + "one_time_codes:SignInPolicy.TotpWithdrawn", False, own, _ADMIN),
        Rule(
            _D + "one_time_codes:OneTimeCodes.Registered",
            False,
            own,
            "the staff member themselves (console)",
            agency_fields=("agency",),
        ),
        Rule(_D + "one_time_codes:OneTimeCodes.Reregistered", False, own, "the staff member themselves (console)"),
        Rule(_D + "one_time_codes:OneTimeCodes.Used", False, own, "the staff member signing in (console)"),
        Rule(_D + "one_time_codes:OneTimeCodes.Failed", False, own, "whoever typed a wrong code (console)"),
        Rule(_D + "one_time_codes:OneTimeCodes.Removed", False, own, "the staff member, or " + _ADMIN),
        Rule(_D + "identity:ReportRecord.Generated", False, own, "auditor (`audit`)", agency_fields=("agency",)),
        Rule(
            _D + "disclosures:DisclosureRecord.Made",
            False,
            own,
            "counter staff handing out a disclosure document or printout (`counter_lookup`)",
            agency_fields=("agency",),
        ),
        # -- checkpoints ---------------------------------------------------------------------------------
        Rule(
            _D + "checkpoints:CheckpointLog.Opened",
            True,
            own,
            _NODE,
            agency_fields=("agency",),
            stream_of=_checkpoints_stream,
        ),
        Rule(
            _D + "checkpoints:CheckpointLog.CheckpointSigned",
            True,
            own,
            _NODE + " or `audit checkpoint`",
            key_fields=("key_id",),
        ),
        Rule(
            _D + "checkpoints:AgencyHold.Opened",
            False,
            own,
            _NODE + " (on a checkpoint fork)",
            agency_fields=("agency",),
            other_agency_fields=("held",),
        ),
        Rule(_D + "checkpoints:AgencyHold.Placed", False, own, _NODE + " (on a checkpoint fork)"),
        Rule(_D + "checkpoints:AgencyHold.Lifted", False, own, _admin("audit release")),
        # -- incidents and parked messages (local) -------------------------------------------------------
        Rule(
            _D + "incidents:Incident.Raised",
            False,
            own,
            _NODE + " (a parked message was evidence of an attack)",
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
            _admin("consumers replay --accept-revoked-key"),
            agency_fields=("agency",),
            other_agency_fields=("origin", "key_id"),
        ),
        Rule(
            _D + "parked:RevokedKeyAcceptance.Approved",
            False,
            own,
            _admin("consumers replay --accept-revoked-key") + ", not the proposer",
        ),
    ]


TABLE: dict[str, Rule] = {r.topic: r for r in _rules()}
