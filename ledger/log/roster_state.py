"""An agency's staff roster as a fold: the certified staff keys (and security keys), the codes used and the
roles a peer checks, from the agency's roster events in log order (docs/staff-signing.md).

What the certificates themselves prove — the evidence on a flag change, an act's signature — is checked over
this state in :mod:`ledger.log.staff_roster`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.domain.duties import PRIVILEGED_ROLES, is_own_prefecture, role_conflict
from ledger.domain.staff_acts import (
    APPROVED_ROLE,
    PROPOSED_ROLE,
    ROOT_ISSUER,
    co_approval_statement,
    code_digest,
    enrol_statement,
    grant_digest,
    possession_statement,
    role_statement,
    security_key_statement,
    staff_key_id,
)
from ledger.domain.types import Role
from ledger.errors import Code, IntegrityError
from ledger.log.webauthn_proof import cose_algorithm

__all__ = ["ROSTER_ROLES", "STAFF_KEY", "WEBAUTHN", "KeyCert", "RosterState", "verify_signature"]

STAFF_KEY, WEBAUTHN = "ed25519", "webauthn"  # a staff key (password-wrapped) or a certified security key
# the roles a peer checks — on a flag change (requester, approver, operator), on a staff answer a hub relays
# (reviewer and approver) — and so the roles the roster records (counter and auditor stay local)
ROSTER_ROLES = frozenset(
    {Role.REQUESTER.value, Role.APPROVER.value, Role.OPERATOR.value, Role.REVIEWER.value, Role.ADMINISTRATOR.value}
)
_ADMIN = Role.ADMINISTRATOR.value


def verify_signature(public_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# -- the roster ------------------------------------------------------------------------------------------
@dataclass
class KeyCert:
    staff: str
    key_id: str
    public_hex: str
    certifies: bool  # may certify others (an administrator when the code was issued)
    revoked: bool = False
    kind: str = STAFF_KEY
    # a security key (WEBAUTHN): its credential id and COSE key (base64url), the relying party's id hash (hex),
    # and the staff key that certified it (revoking that key ends this certification too)
    credential: str = ""
    cose_key: str = ""
    rp_id_hash: str = ""
    certified_by: str = ""


@dataclass
class RosterState:
    """An agency's certified staff keys, folded from its roster events in log order."""

    agency: str
    keys: dict[str, KeyCert] = field(default_factory=dict)
    codes: set[str] = field(default_factory=set)  # code digests already used (each code certifies one key)
    opened: bool = False
    # the roles a peer checks (ROSTER_ROLES), per staff member, as certified here; ``roles_recorded``: this
    # roster records them (its root says so) — a roster opened before roles travelled does not
    roles: dict[str, set[str]] = field(default_factory=dict)
    roles_recorded: bool = False
    grants: set[str] = field(default_factory=set)  # role grants already certified (each certifies once)
    # the administrators named at set-up (the root and `init --second-admin`): the bootstrap trusts whoever ran
    # `init`; any later administrator holds the role only through a RoleCertified with two administrators'
    # signatures (or a break-glass co-approval), never through one administrator's enrolment code
    set_up: frozenset[str] = frozenset()

    def apply(
        self, kind: str, payload: Mapping[str, Any], peers: Callable[[str], RosterState | None] | None = None
    ) -> str | None:
        """Fold one roster event (``Opened``, ``KeyCertified``, ``SecurityKeyCertified``, ``KeyRevoked``,
        ``RoleCertified``, ``RolesWithdrawn``); a reason if it is not valid (then it changes nothing).
        ``peers``: other agencies' rosters, for a break-glass co-approval by a prefecture."""
        try:
            if kind == "Opened":
                if self.opened:
                    return "a second roster root is refused"
                return self._certify(payload["root"], root=True)
            if not self.opened:
                return "a roster event before the roster's root"
            if kind == "KeyCertified":
                return self._certify(payload["cert"], root=False)
            if kind == "SecurityKeyCertified":
                return self._certify_security_key(payload["security_key"])
            if kind == "RoleCertified":
                return self._certify_role(payload["certified"], peers)
            if kind == "RolesWithdrawn":
                return self._withdraw_roles(str(payload["staff"]), [str(r) for r in payload["roles"]])
            if kind == "KeyRevoked":
                cert = self.keys.get(str(payload["key_id"]))
                if cert is None or cert.staff != payload["staff"]:
                    return "revokes a key this roster does not hold for that staff member"
                cert.revoked = True
                for other in self.keys.values():  # what a revoked staff key certified, it no longer vouches for
                    if other.certified_by == cert.key_id:
                        other.revoked = True
                return None
        except (KeyError, TypeError, ValueError, AttributeError):
            return "a malformed roster event"
        return f"unknown roster event {kind}"

    def _certify(self, cert: Mapping[str, Any], *, root: bool) -> str | None:
        agency, staff = self.agency, str(cert["staff"])
        key_id, public_hex, digest = str(cert["key_id"]), str(cert["public_hex"]), str(cert["code_digest"])
        certifies = cert["certifies"] is True
        if key_id != staff_key_id(agency, bytes.fromhex(public_hex)):
            return "the key id does not match the agency and public key"
        if key_id in self.keys:
            return f"key {key_id} is already certified"
        if code_digest(str(cert["code"])) != digest:
            return "the enrolment code does not match its digest"
        if digest in self.codes:
            return "that enrolment code was already used"
        if not verify_signature(
            public_hex, str(cert["possession"]), possession_statement(agency, staff, key_id, digest)
        ):
            return "no proof of possession of the new key"
        if root:
            if cert["issuer"] != ROOT_ISSUER or not certifies:
                return "the root must be the administrator enrolled at set-up"
        else:
            issuer = self.keys.get(str(cert["issuer_key_id"]))
            if issuer is None or issuer.revoked or not issuer.certifies or issuer.staff != cert["issuer"]:
                return "the issuer's key is not a certified administrator key of this agency"
            statement = enrol_statement(agency, staff, digest, str(cert["expires_at"]), certifies)
            if not verify_signature(issuer.public_hex, str(cert["issuer_signature"]), statement):
                return "the issuing administrator's signature does not verify"
        if root and "roles" in cert:
            if cert["roles"] != [_ADMIN]:
                return "the root holds the administrator role, and only it"
            set_up = frozenset(str(s) for s in cert.get("set_up_administrators", [staff]))
            if staff not in set_up or len(set_up) > 2:
                return "the administrators named at set-up are the root and at most one other"
            self.roles_recorded, self.set_up = True, set_up
        elif certifies and self.roles_recorded and staff not in self.set_up and not self.holds(staff, _ADMIN):
            return (
                f"an administrator's key for {staff}, who was neither named at set-up nor certified as an "
                "administrator by two administrators"
            )
        self.keys[key_id] = KeyCert(staff, key_id, public_hex, certifies)
        self.codes.add(digest)
        self.opened = True
        if certifies:  # an administrator's key (the root, or issued to an administrator by one)
            self.roles.setdefault(staff, set()).add(_ADMIN)
        return None

    def _certify_security_key(self, cert: Mapping[str, Any]) -> str | None:
        """A WebAuthn credential certified by its holder's own staff key (the node alone holds none): a
        security key the node wrote in by itself certifies nothing."""
        agency, staff, key_id = self.agency, str(cert["staff"]), str(cert["key_id"])
        credential, cose_key, rp_hash = str(cert["credential"]), str(cert["cose_key"]), str(cert["rp_id_hash"])
        if not key_id.startswith(f"{agency}:") or key_id in self.keys:
            return f"key {key_id} is already certified (or not of this agency)"
        if len(rp_hash) != 64 or bytes.fromhex(rp_hash).hex() != rp_hash:
            return "the relying party's id hash is not a SHA-256"
        try:
            cose_algorithm(cose_key)
        except (ValueError, KeyError, TypeError) as exc:
            return f"the security key's public key is not accepted: {exc}"
        by = self.keys.get(str(cert["certified_by"]))
        if by is None or by.kind != STAFF_KEY or by.revoked or by.staff != staff:
            return "not certified by a staff key of that person (certified, not revoked)"
        statement = security_key_statement(agency, staff, key_id, credential, cose_key, rp_hash)
        if not verify_signature(by.public_hex, str(cert["signature"]), statement):
            return "the person's signature on the security key does not verify"
        self.keys[key_id] = KeyCert(
            staff, key_id, "", False, kind=WEBAUTHN, credential=credential, cose_key=cose_key, rp_id_hash=rp_hash,
            certified_by=by.key_id,
        )  # fmt: skip
        return None

    # -- roles ---------------------------------------------------------------------------------------------
    def holds(self, staff: str, role: str) -> bool:
        return role in self.roles.get(staff, ())

    def _certify_role(self, c: Mapping[str, Any], peers: Callable[[str], RosterState | None] | None) -> str | None:
        """A role certified by the grant's administrators: the proposer's signature (enough for requester), and
        for a privileged role a second administrator's, or the agency's prefecture's break-glass co-approval.
        Each administrator signs with a staff key certified here for them, not revoked, while they hold the
        administrator role here; an administrator never also holds requester, approver or operator."""
        staff, role, grant, proposer = str(c["staff"]), str(c["role"]), str(c["grant"]), str(c["proposed_by"])
        if role not in ROSTER_ROLES:
            return f"{role} is not a role the roster records"
        if grant in self.grants:
            return f"grant {grant} already certified a role"
        if staff == proposer:
            return "nobody grants a role to themselves"
        digest = grant_digest(self.agency, grant, staff, role, proposer)
        problem = self._administrator_signed(proposer, c["proposal"], role_statement(PROPOSED_ROLE, digest))
        if problem is not None:
            return f"the proposal: {problem}"
        if Role(role) in PRIVILEGED_ROLES:
            approval, co = c.get("approval"), c.get("co_approval")
            if approval is not None:
                approver = str(approval["staff"])
                if approver in (proposer, staff):
                    return "a privileged role needs a second administrator, neither its proposer nor its holder"
                problem = self._administrator_signed(approver, approval, role_statement(APPROVED_ROLE, digest))
                problem = None if problem is None else f"the approval: {problem}"
            elif co is not None:
                problem = self._co_approved(co, grant, digest, peers)
            else:
                problem = "a privileged role needs a second administrator's signature (or a break-glass co-approval)"
            if problem is not None:
                return problem
        clash = role_conflict(self.roles.get(staff, set()) | {role})
        if clash:
            return f"{staff} would hold administrator together with {', '.join(clash)} (separation of duties)"
        self.roles.setdefault(staff, set()).add(role)
        self.grants.add(grant)
        return None

    def _administrator_signed(self, staff: str, signed: Mapping[str, Any], statement: bytes) -> str | None:
        cert = self.keys.get(str(signed["key_id"]))
        if cert is None or cert.kind != STAFF_KEY or cert.staff != staff or cert.revoked:
            return f"key {signed['key_id']} is not a staff key certified for {staff} (and not revoked)"
        if not self.holds(staff, _ADMIN):
            return f"{staff} is not an administrator in the roster"
        if not verify_signature(cert.public_hex, str(signed["signature"]), statement):
            return f"{staff}'s signature does not verify for this grant"
        return None

    def _co_approved(
        self, co: Mapping[str, Any], grant: str, digest: str, peers: Callable[[str], RosterState | None] | None
    ) -> str | None:
        """Break-glass: the agency's prefecture's administrator signed this grant on their own node (the
        statement of ``ledger.log.co_approval``), with a key certified in the prefecture's roster as an
        administrator's. Its revocation since is not looked at: a role a genuine co-approval certified stays
        certified (rosters are folded again later; the local node checked it was current when it recorded it)."""
        prefecture, staff, key_id = str(co["prefecture"]), str(co["staff"]), str(co["key_id"])
        if prefecture == self.agency or not (
            prefecture.isdigit() and len(prefecture) == 6 and prefecture[2:5] == "000"
        ):
            return f"break-glass: {prefecture} is not a prefecture's code"
        if not is_own_prefecture(prefecture, self.agency):
            return f"break-glass: {prefecture} is not the prefecture of {self.agency}"
        if co["agency"] != self.agency or co["grant"] != grant or co["digest"] != digest:
            return "break-glass: the co-approval is for another grant"
        theirs = peers(prefecture) if peers is not None else None
        cert = theirs.keys.get(key_id) if theirs is not None else None
        if cert is None or cert.staff != staff or cert.kind != STAFF_KEY or not cert.certifies:
            return f"break-glass: key {key_id} is not an administrator's key certified in {prefecture}'s roster here"
        statement = co_approval_statement(
            prefecture, staff, key_id, self.agency, grant, digest, str(co["note_digest"]), str(co["at"])
        )
        if not verify_signature(cert.public_hex, str(co["signature"]), statement):
            return "break-glass: the co-approval's signature does not verify"
        return None

    def _withdraw_roles(self, staff: str, roles: list[str]) -> str | None:
        unknown = [r for r in roles if r not in ROSTER_ROLES]
        if unknown or not roles:
            return f"withdraws roles the roster does not record: {', '.join(unknown) or '(none)'}"
        self.roles.setdefault(staff, set()).difference_update(roles)
        return None

    def check(
        self, kind: str, payload: Mapping[str, Any], peers: Callable[[str], RosterState | None] | None = None
    ) -> None:
        """Raise IntegrityError (``staff_signature``) unless the event would be folded in: for the app, before
        it writes one."""
        problem = copy.deepcopy(self).apply(kind, payload, peers)
        if problem is not None:
            raise IntegrityError(f"the staff roster refuses this: {problem}", code=Code.STAFF_SIGNATURE)

    def current_key(self, staff: str) -> KeyCert | None:
        """The newest staff key certified for ``staff`` and not revoked."""
        found = [c for c in self.keys.values() if c.staff == staff and not c.revoked and c.kind == STAFF_KEY]
        return found[-1] if found else None

    def security_keys(self, staff: str) -> list[KeyCert]:
        """The security keys (WebAuthn) certified for ``staff`` and not revoked, oldest first."""
        return [c for c in self.keys.values() if c.staff == staff and not c.revoked and c.kind == WEBAUTHN]
