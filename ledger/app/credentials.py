"""Staff credentials: enrolment codes, activation (password and staff key), unlocking, and the signatures staff
make on their own acts. The rules and statements: :mod:`ledger.domain.staff_acts`; the design:
docs/staff-signing.md.

An unlocked staff key is held for this process only (:data:`_UNLOCKED`, keyed by agency and staff id, then
key id): ``unlock`` registers it, the flag commands sign with it, ``lock`` forgets it. Nothing of it is
written anywhere; the private key is stored only wrapped (AES-GCM) under a key derived from the person's
password with argon2id, so whoever holds the data directory holds no staff key. The key itself (the signer,
its wrapping and sealing, proofs made elsewhere) is :mod:`ledger.app.staff_keys`'s; its names stay importable
from here.
"""

from __future__ import annotations

import copy
import secrets
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid5

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.app.access import LedgerAccess
from ledger.app.staff_keys import (
    KdfCost,
    StaffProof,
    StaffSigner,
    WebAuthnProof,
    password_matches,
    set_kdf_cost,
    unwrap_key,
)
from ledger.app.values import SYSTEM, Actor
from ledger.domain.agencies import Staff
from ledger.domain.credentials import StaffCredential
from ledger.domain.roster import StaffRoster
from ledger.domain.staff_acts import ROOT_ISSUER, code_digest, enrol_statement, possession_statement
from ledger.domain.types import Action, Role
from ledger.errors import AuthError, Code, InputError, IntegrityError, PermissionDenied, StateConflict
from ledger.log.staff_roster import RosterState, verify_act

__all__ = ["KdfCost", "StaffProof", "StaffSigner", "WebAuthnProof", "set_kdf_cost"]

CODE_TTL = timedelta(days=7)
MIN_PASSWORD = 12


# (agency, staff) → key id → the unlocked signer: this process's, never written anywhere
_UNLOCKED: dict[tuple[str, str], dict[str, StaffSigner]] = {}
# roster stream → (its head when folded, the fold); a head names one history (version and hash): a store
# rewritten under the same version has another hash
_ROSTERS: dict[UUID, tuple[tuple[int, str], RosterState]] = {}


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"choose a password of at least {MIN_PASSWORD} characters", field="password")


class CredentialCommands(LedgerAccess):
    """Enrolment codes, activation, unlocking and the staff signatures of acts."""

    def credential_id(self, agency: str, who: str) -> UUID:
        return uuid5(self.ids.staff(agency, who), "credential")

    def roster(self, agency: str) -> RosterState | None:
        """The agency's certified staff keys (as this node's log holds them), or None before staff signing."""
        # folded from the stream's events in order (not the aggregate's replay: a creation event forged into
        # the stream later would start a new aggregate); an invalid event certifies nothing. Kept per stream
        # head: each flag change a peer sends is checked against it (every certificate's two signatures would
        # otherwise be verified again for each one); handed out as a copy, callers may change theirs
        stream = StaffRoster.create_id(agency)
        head = self.signed_store.stored_head(stream)
        if head is None:
            return None
        cached = _ROSTERS.get(stream)
        if cached is None or cached[0] != head:
            state = RosterState(agency)
            for e in self.events.get(stream):
                state.apply(type(e).__name__, vars(e), self.roster)
            cached = _ROSTERS[stream] = (head, state)
        return copy.deepcopy(cached[1])

    # -- enrolment ---------------------------------------------------------------------------------------
    def issue_enrolment_code(self, actor: Actor, who: str, ttl: timedelta = CODE_TTL) -> str:
        """A one-time code for ``who`` to activate their credential (shown once; only its SHA-256 is kept).

        Signed by the issuing administrator's own staff key, so the roster certifies the key it activates.
        Before the agency has a roster (a log from before staff signing) an administrator may issue one
        unsigned code for an administrator: whoever completes it becomes the roster's root."""
        self.authorise(actor, Action.ADMINISTER)
        member = self.staff(actor.agency, who)
        if not member.active:
            raise StateConflict(f"{who} is deactivated")
        certifies = Role.ADMINISTRATOR.value in member.roles
        if self.roster(actor.agency) is None:
            if not certifies:
                raise StateConflict(
                    f"agency {actor.agency} has no staff roster yet: its first administrator activates first",
                    code=Code.NO_CREDENTIAL,
                )
            return self._issue(actor.agency, who, ttl, certifies, issuer=ROOT_ISSUER, signer=None)
        return self._issue(actor.agency, who, ttl, certifies, issuer=actor.staff, signer=self.signer_for(actor))

    def issue_root_code(self, agency: str, administrator: str) -> str:
        """The first administrator's code, issued by the node at set-up (``init``, ``agency add``)."""
        return self._issue(agency, administrator, CODE_TTL, True, issuer=ROOT_ISSUER, signer=None)

    def _issue(
        self, agency: str, who: str, ttl: timedelta, certifies: bool, *, issuer: str, signer: StaffSigner | None
    ) -> str:
        code = secrets.token_urlsafe(24)
        digest, expires = code_digest(code), (self.clock() + ttl).isoformat()
        issued: dict[str, Any] = {
            "code_digest": digest,
            "expires_at": expires,
            "issuer": issuer if signer is None else signer.staff,
            "certifies": certifies,
            "issuer_key_id": None,
            "issuer_signature": None,
        }
        if signer is not None:
            signed = signer.sign(enrol_statement(agency, who, digest, expires, certifies))
            issued["issuer_key_id"], issued["issuer_signature"] = signed["key_id"], signed["signature"]
        cid = self.credential_id(agency, who)
        cred = self.find(StaffCredential, cid) or StaffCredential(id=cid, agency=agency, staff_id=who)
        cred.issue_code(issued)
        self.save_as(agency, cred)
        return code

    def activate_credential(self, agency: str, who: str, code: str, password: str) -> StaffSigner:
        """Complete an enrolment: choose a password; a new staff key is made, certified in the roster (the
        root for the code printed at set-up) and unlocked for this process. A previous key is revoked."""
        _check_password(password)
        self._active_member(Actor(agency, who))
        cred = self.find(StaffCredential, self.credential_id(agency, who))
        if cred is None:
            raise AuthError("the enrolment code is not valid for this staff member", code=Code.BAD_ENROLMENT_CODE)
        issued = cred.check_code(code_digest(code), self.clock())
        private = Ed25519PrivateKey.generate()
        signer = StaffSigner(agency, who, private)
        digest = issued["code_digest"]
        cert = {
            "staff": who,
            "key_id": signer.key_id,
            "public_hex": signer.public_hex,
            "certifies": issued["certifies"],
            "code": code,
            "code_digest": digest,
            "expires_at": issued["expires_at"],
            "issuer": issued["issuer"],
            "issuer_key_id": issued["issuer_key_id"],
            "issuer_signature": issued["issuer_signature"],
            "possession": signer.sign(possession_statement(agency, who, signer.key_id, digest))["signature"],
        }
        roster = self.find(StaffRoster, StaffRoster.create_id(agency))
        if issued["issuer"] == ROOT_ISSUER and issued["issuer_key_id"] is None:
            if roster is not None:
                raise IntegrityError(
                    "the agency's roster already has its root: a second is refused", code=Code.STAFF_SIGNATURE
                )
            if self.roles_start_recorded(agency):
                cert["roles"] = [Role.ADMINISTRATOR.value]  # the roster records roles from its root on
                cert["set_up_administrators"] = self.set_up_administrators(agency, who)
            RosterState(agency).check("Opened", {"root": cert})
            roster = StaffRoster(agency=agency, root=cert)
        else:
            if roster is None:
                raise IntegrityError("the agency has no staff roster to certify this key in", code=Code.STAFF_SIGNATURE)
            state = self.roster(agency) or RosterState(agency)
            state.check("KeyCertified", {"cert": cert})
            roster.certify(cert=cert)
            old = state.keys.get(cred.key_id or "")
            if old is not None and not old.revoked:
                roster.revoke(staff=who, key_id=old.key_id, reason="replaced by a new enrolment", by=who)
        password_hash, wrapped = signer.wrap(password)
        cred.activate(key_id=signer.key_id, public_hex=signer.public_hex, password_hash=password_hash, wrapped=wrapped)
        self.save_as(agency, cred, roster)
        _UNLOCKED.setdefault((agency, who), {})[signer.key_id] = signer
        return signer

    def set_up_administrators(self, agency: str, root: str) -> list[str]:
        """The root and the other administrator registered at set-up (``init --second-admin``): when the root
        activates, nobody can have granted a role yet, so every active administrator of the agency is one."""
        found = {
            s.staff_id
            for s in self._aggregates(Staff, "Enrolled")
            if s.agency == agency and s.active and Role.ADMINISTRATOR.value in s.roles
        }
        return sorted(found | {root})

    def roles_start_recorded(self, agency: str) -> bool:
        """Whether a roster opened now records roles from its root on: yes, unless someone already holds a
        role a peer checks (a log from before roles travelled; ``RoleGrantCommands`` looks)."""
        return True

    # -- unlocking ---------------------------------------------------------------------------------------
    def unlock(self, agency: str, who: str, password: str) -> StaffSigner:
        """Open ``who``'s staff key with their password and hold it for this process. A wrong password is
        recorded (``UnlockFailed``); five in a row lock the credential for 15 minutes."""
        return self.hold_key(self.open_key(agency, who, password))

    def open_key(self, agency: str, who: str, password: str) -> StaffSigner:
        """``who``'s staff key, opened with their password (wrong ones recorded and rate-limited, as
        :meth:`unlock`) but *not* held: nothing in this process signs with it until :meth:`hold_key`. A
        sign-in with a second factor still to come opens it here and holds it only once that is done."""
        self._active_member(Actor(agency, who))
        cred = self.find(StaffCredential, self.credential_id(agency, who))
        if cred is None:
            raise AuthError(
                f"{who} has no activated credential: activate the enrolment code first", code=Code.NO_CREDENTIAL
            )
        cred.check_unlockable(self.clock())
        assert cred.password_hash is not None and cred.wrapped is not None
        wrong = AuthError("wrong password (the attempt is recorded)", code=Code.WRONG_PASSWORD)
        self.limited_attempt(agency, cred, lambda: password_matches(cred.password_hash or "", password), wrong)
        signer = StaffSigner(agency, who, unwrap_key(cred.wrapped, password))
        cert = (self.roster(agency) or RosterState(agency)).keys.get(signer.key_id)
        if cert is None or cert.revoked or cert.staff != who:
            raise AuthError(
                f"{who}'s staff key is not certified (or revoked) at {agency}: enrol again", code=Code.NO_CREDENTIAL
            )
        return signer

    def hold_key(self, signer: StaffSigner) -> StaffSigner:
        """Hold an opened staff key for this process: its holder's acts are signed with it until :meth:`lock`."""
        _UNLOCKED.setdefault((signer.agency, signer.staff), {})[signer.key_id] = signer
        return signer

    def holds_key(self, agency: str, who: str) -> bool:
        """Whether this process holds any unlocked staff key of ``who``."""
        return bool(_UNLOCKED.get((agency, who)))

    def hold_session_key(self, signer: StaffSigner) -> StaffSigner:
        """Hold a key opened elsewhere in this process (a session's sealed copy), once it is the person's
        current certified key and they are still active: as :meth:`unlock` does after the password."""
        self._active_member(Actor(signer.agency, signer.staff))
        roster = self.roster(signer.agency)
        cert = roster.current_key(signer.staff) if roster is not None else None
        if cert is None or cert.key_id != signer.key_id:
            raise AuthError(
                f"{signer.staff}'s staff key changed or was revoked since this session began: sign in again",
                code=Code.NO_CREDENTIAL,
            )
        return self.hold_key(signer)

    def lock(self, agency: str, who: str) -> None:
        """Forget ``who``'s unlocked key in this process (sign out)."""
        _UNLOCKED.pop((agency, who), None)

    def change_password(self, agency: str, who: str, old: str, new: str) -> None:
        _check_password(new)
        signer = self.unlock(agency, who, old)
        cred = self.load(StaffCredential, self.credential_id(agency, who), "credential")
        password_hash, wrapped = signer.wrap(new)
        cred.change_password(password_hash=password_hash, wrapped=wrapped)
        self.save_as(agency, cred)

    # -- signing acts ------------------------------------------------------------------------------------
    def signer_for(self, actor: Actor) -> StaffSigner:
        """The actor's unlocked key, certified and not revoked in the roster; refused without one."""
        roster = self.roster(actor.agency)
        cert = roster.current_key(actor.staff) if roster is not None else None
        signer = _UNLOCKED.get((actor.agency, actor.staff), {}).get(cert.key_id) if cert is not None else None
        if signer is None:
            raise PermissionDenied(
                f"{actor} has not unlocked their staff key: acts are signed by the person "
                "(`flagledger staff activate`, then the password when asked)",
                code=Code.STAFF_SIGNATURE_REQUIRED,
            )
        return signer

    def sign_act(
        self, actor: Actor, statement: bytes, proof: StaffProof | WebAuthnProof | None = None
    ) -> dict[str, str]:
        """The actor's signature over ``statement``: made with their unlocked key, or ``proof`` made elsewhere
        (their staff key, or their security key's assertion) and checked here against the roster."""
        if proof is None:
            return self.signer_for(actor).sign(statement)
        roster = self.roster(actor.agency)
        cert = roster.keys.get(proof.key_id) if roster is not None else None
        signed = proof.signed()
        if cert is None or cert.revoked or cert.staff != actor.staff or verify_act(cert, statement, signed):
            raise PermissionDenied(f"the signature given for {actor} does not verify", code=Code.STAFF_SIGNATURE)
        return signed

    def revoke_staff_keys(self, actor: Actor, who: str, reason: str) -> None:
        """End every certified key of ``who`` (on deactivation): nothing they sign afterwards is accepted."""
        roster = self.find(StaffRoster, StaffRoster.create_id(actor.agency))
        state = self.roster(actor.agency)
        if roster is None or state is None:
            return
        for cert in list(state.keys.values()):
            if cert.staff == who and not cert.revoked:
                roster.revoke(staff=who, key_id=cert.key_id, reason=reason, by=actor.staff)
                cert.revoked = True
        self.save_as(actor.agency, roster)
        self.lock(actor.agency, who)


assert SYSTEM == ROOT_ISSUER  # the root's issuer is the same "system" the first administrator is enrolled by
