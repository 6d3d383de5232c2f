"""The writer-authority rows for an agency itself and the people and keys that act for it: its registration,
permissions and staff, grants of privileged roles, system accounts, the key registry, staff credentials and the
shared roster of staff keys. Assembled into the one table by :mod:`ledger.domain.authority_rules`."""

from __future__ import annotations

from ledger.domain.authority_row import (
    ADMIN,
    DOMAIN_PREFIX,
    NODE,
    SETUP,
    Rule,
    Writer,
    admin,
    agency_stream,
    keys_stream,
    roster_stream,
)

__all__ = ["staff_rules"]

_D = DOMAIN_PREFIX


def staff_rules() -> list[Rule]:
    own = Writer.OWNER
    return [
        # -- agencies: the permission table and policy are the agency's own (attack 2) -------------------
        Rule(_D + "agencies:Agency.Registered", True, own, SETUP, agency_fields=("code",), stream_of=agency_stream),
        Rule(_D + "agencies:Agency.ApprovalPolicyChanged", True, own, ADMIN),
        Rule(_D + "agencies:Agency.PermissionGranted", True, own, ADMIN),
        Rule(_D + "agencies:Agency.PermissionRevoked", True, own, ADMIN),
        Rule(
            _D + "agencies:Staff.Enrolled",
            False,
            own,
            ADMIN + "; the first administrator at set-up",
            agency_fields=("agency",),
        ),
        Rule(_D + "agencies:Staff.RoleGranted", False, own, ADMIN),
        Rule(_D + "agencies:Staff.RoleRevoked", False, own, ADMIN),
        Rule(_D + "agencies:Staff.Deactivated", False, own, ADMIN),
        # -- grants of privileged roles: two administrators, or break-glass (ledger/domain/role_grants.py) --
        Rule(
            _D + "role_grants:RoleGrant.Proposed",
            False,
            own,
            admin("staff grant-role") + " or `staff enroll` with a privileged role",
            agency_fields=("agency",),
        ),
        Rule(_D + "role_grants:RoleGrant.Approved", False, own, admin("staff approve-grant") + ", not the proposer"),
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
        Rule(_D + "role_grants:RoleGrant.Rejected", False, own, admin("staff reject-grant") + ", not the proposer"),
        Rule(_D + "role_grants:RoleGrant.Withdrawn", False, own, "the proposer (`flagledger staff withdraw-grant`)"),
        Rule(
            _D + "accounts:SystemAccount.Enrolled",
            False,
            own,
            admin("system enroll"),
            agency_fields=("agency",),
        ),
        Rule(_D + "accounts:SystemAccount.SecretReplaced", False, own, admin("system new-secret")),
        Rule(_D + "accounts:SystemAccount.Deactivated", False, own, admin("system deactivate")),
        Rule(_D + "accounts:SystemAccount.SignInFailed", False, own, NODE + " (a wrong secret at sign-in)"),
        Rule(_D + "accounts:SystemAccount.FailuresCleared", False, own, NODE + " (a right secret at sign-in)"),
        # -- keys: only the registry's agency, and only about its own keys (attack 2) ----------------------
        Rule(_D + "keys:KeyRegistry.Opened", True, own, SETUP, agency_fields=("agency",), stream_of=keys_stream),
        Rule(
            _D + "keys:KeyRegistry.KeyAdded",
            True,
            own,
            admin("key rotate") + "; the genesis key at set-up",
            key_fields=("key_id",),
        ),
        Rule(_D + "keys:KeyRegistry.KeyRetired", True, own, admin("key rotate"), key_fields=("key_id",)),
        Rule(_D + "keys:KeyRegistry.KeyRevoked", True, own, admin("key revoke"), key_fields=("key_id",)),
        Rule(
            _D + "keys:KeyRegistry.RemoteKeyTrusted",
            True,
            own,
            admin("agency trust"),
            other_agency_fields=("remote_agency", "key_id"),
            note="folded into the key registry only on the node of the agency that vouched",
        ),
        # -- staff credentials (local) and the roster of staff keys (shared): docs/staff-signing.md ---------
        Rule(
            _D + "credentials:StaffCredential.Opened",
            False,
            own,
            admin("staff enroll") + "; the first administrator at set-up",
            agency_fields=("agency",),
        ),
        Rule(_D + "credentials:StaffCredential.CodeIssued", False, own, admin("staff enroll")),
        Rule(
            _D + "credentials:StaffCredential.Activated",
            False,
            own,
            "the staff member (`staff activate`)",
            key_fields=("key_id",),
        ),
        Rule(_D + "credentials:StaffCredential.PasswordChanged", False, own, "the staff member (`staff password`)"),
        Rule(_D + "credentials:StaffCredential.UnlockFailed", False, own, NODE + " (a wrong password)"),
        Rule(_D + "credentials:StaffCredential.FailuresCleared", False, own, NODE + " (a right password)"),
        Rule(
            _D + "roster:StaffRoster.Opened",
            True,
            own,
            "the first administrator's own key (`staff activate` of the code `init` printed)",
            agency_fields=("agency",),
            stream_of=roster_stream,
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
            admin("staff revoke-role") + "; " + admin("staff deactivate"),
            note="takes authority away, so it needs no person's signature (like a key's revocation)",
        ),
        Rule(
            _D + "roster:StaffRoster.KeyRevoked",
            True,
            own,
            admin("staff deactivate") + "; the staff member removing a security key",
            key_fields=("key_id",),
        ),
    ]
