"""Staff credentials: enrolment codes, activation (password and staff key), unlocking, and the signatures staff
make on their own acts. The rules and statements: :mod:`ledger.domain.staff_acts`; the design:
docs/staff-signing.md.

An unlocked staff key is held for this process only (:data:`_UNLOCKED`, keyed by agency and staff id, then
key id): ``unlock`` registers it, the flag commands sign with it, ``lock`` forgets it. Nothing of it is
written anywhere; the private key is stored only wrapped (AES-GCM) under a key derived from the person's
password with argon2id, so whoever holds the data directory holds no staff key.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid5

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.app.access import LedgerAccess
from ledger.app.values import SYSTEM, Actor
from ledger.domain.agencies import Staff
from ledger.domain.credentials import StaffCredential
from ledger.domain.roster import StaffRoster
from ledger.domain.staff_acts import ROOT_ISSUER, code_digest, enrol_statement, possession_statement, staff_key_id
from ledger.domain.types import Action, Role
from ledger.errors import AuthError, Code, InputError, IntegrityError, PermissionDenied, StateConflict
from ledger.log.staff_roster import RosterState, verify_act

__all__ = ["KdfCost", "StaffProof", "StaffSigner", "WebAuthnProof", "set_kdf_cost"]

CODE_TTL = timedelta(days=7)
MIN_PASSWORD = 12


@dataclass(frozen=True)
class KdfCost:
    """argon2id cost, for the password hash and for the key that wraps the staff key (RFC 9106's second
    recommended option by default). Recorded with each wrapped key, so a change applies to new passwords."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4

    def label(self) -> str:
        return f"argon2id:t={self.time_cost},m={self.memory_kib},p={self.parallelism}"

    @classmethod
    def parse(cls, label: str) -> KdfCost:
        try:
            kind, _, params = label.partition(":")
            values = dict(p.split("=") for p in params.split(","))
            if kind != "argon2id":
                raise ValueError(kind)
            return cls(int(values["t"]), int(values["m"]), int(values["p"]))
        except (KeyError, ValueError) as exc:
            raise AuthError("the stored credential names an unknown key derivation", code=Code.NO_CREDENTIAL) from exc


_cost = KdfCost()


def set_kdf_cost(cost: KdfCost) -> None:
    """Cost for passwords set from now on (the test suite lowers it; never lower it on a node)."""
    global _cost
    _cost = cost


class StaffSigner:
    """One person's unlocked staff key."""

    def __init__(self, agency: str, staff: str, private: Ed25519PrivateKey) -> None:
        self.agency, self.staff, self._private = agency, staff, private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_hex = raw.hex()
        self.key_id = staff_key_id(agency, raw)

    def sign(self, message: bytes) -> dict[str, str]:
        return {"key_id": self.key_id, "signature": self._private.sign(message).hex()}

    def wrap(self, password: str) -> tuple[str, dict[str, Any]]:
        """(argon2id hash of ``password``, this key wrapped under it): what a credential stores."""
        return _wrap(self._private, password)

    def seal(self) -> tuple[bytes, bytes]:
        """(a fresh random key, this key sealed under it): to keep between the steps of a sign-in, the sealed
        half on one side (the server) and the key on the other (the browser), so neither alone opens it."""
        key = AESGCM.generate_key(bit_length=256)
        nonce, ciphertext = _seal_raw(key, self._private, _sealed_for(self.agency, self.staff))
        return key, nonce + ciphertext

    @classmethod
    def unseal(cls, agency: str, staff: str, key: bytes, sealed: bytes) -> StaffSigner:
        """The signer :meth:`seal` sealed for ``agency``/``staff``; AuthError if ``key`` does not open it."""
        try:
            return cls(agency, staff, _open_raw(key, sealed[:12], sealed[12:], _sealed_for(agency, staff)))
        except (InvalidTag, ValueError) as exc:
            raise AuthError("the sign-in's sealed staff key does not open: sign in again") from exc

    def seal_for_session(self, secret: bytes, session: str) -> dict[str, str]:
        """This key wrapped under a session's random secret (256 bits: no key stretching needed), bound to the
        session's id so that a sealed copy moved to another session opens nothing (ledger/cli/session.py)."""
        aad = _session_aad(self.agency, self.staff, session)
        nonce, ciphertext = _seal_raw(_session_key(secret), self._private, aad)
        return {"nonce": nonce.hex(), "ciphertext": ciphertext.hex()}

    @classmethod
    def unseal_session(
        cls, agency: str, staff: str, sealed: dict[str, str], secret: bytes, session: str
    ) -> StaffSigner:
        try:
            private = _open_raw(
                _session_key(secret),
                bytes.fromhex(sealed["nonce"]),
                bytes.fromhex(sealed["ciphertext"]),
                _session_aad(agency, staff, session),
            )
        except (InvalidTag, KeyError, ValueError) as exc:
            raise AuthError("this session's staff key does not open: sign in again", code=Code.NO_CREDENTIAL) from exc
        return cls(agency, staff, private)


def _sealed_for(agency: str, staff: str) -> bytes:
    return f"flagledger sealed staff key v1\x00{agency}\x00{staff}".encode()


def _seal_raw(key: bytes, private: Ed25519PrivateKey, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext): the raw private key under AES-256-GCM, bound to ``aad`` (who, and which sealing)."""
    nonce = secrets.token_bytes(12)
    return nonce, AESGCM(key).encrypt(nonce, _raw(private), aad)


def _open_raw(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> Ed25519PrivateKey:
    """What :func:`_seal_raw` sealed; InvalidTag or ValueError when the key, the nonce or the binding differ."""
    return Ed25519PrivateKey.from_private_bytes(AESGCM(key).decrypt(nonce, ciphertext, aad))


def _raw(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class StaffProof:
    """A signature made elsewhere with the person's staff key: the key id and the Ed25519 signature over the
    act's statement (:func:`ledger.domain.staff_acts.act_statement`)."""

    key_id: str
    signature: str

    def signed(self) -> dict[str, str]:
        return {"key_id": self.key_id, "signature": self.signature}


@dataclass(frozen=True)
class WebAuthnProof:
    """The person's security key's assertion over the act's statement (the console asks the browser for it
    with challenge = SHA-256 of the statement): the roster's id of the certified credential, the
    authenticator and client data (base64url, as the browser gave them) and the signature (hex). Checked
    by :func:`ledger.log.webauthn_proof.check_assertion`, here and by every reader after."""

    key_id: str
    authenticator_data: str
    client_data: str
    signature: str

    def signed(self) -> dict[str, str]:
        return {
            "key_id": self.key_id,
            "signature": self.signature,
            "authenticator_data": self.authenticator_data,
            "client_data": self.client_data,
        }


# (agency, staff) → key id → the unlocked signer: this process's, never written anywhere
_UNLOCKED: dict[tuple[str, str], dict[str, StaffSigner]] = {}
# roster stream → (its head when folded, the fold); a head names one history (version and hash): a store
# rewritten under the same version has another hash
_ROSTERS: dict[UUID, tuple[tuple[int, str], RosterState]] = {}


def _derive(password: str, salt: bytes, cost: KdfCost) -> bytes:
    return hash_secret_raw(password.encode(), salt, cost.time_cost, cost.memory_kib, cost.parallelism, 32, Type.ID)


def _hasher(cost: KdfCost) -> PasswordHasher:
    return PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism)


def _wrap(private: Ed25519PrivateKey, password: str) -> tuple[str, dict[str, Any]]:
    cost = _cost
    salt = secrets.token_bytes(16)
    nonce, sealed = _seal_raw(_derive(password, salt, cost), private, b"flagledger staff key v1")
    wrapped = {"salt": salt.hex(), "nonce": nonce.hex(), "ciphertext": sealed.hex(), "kdf": cost.label()}
    return _hasher(cost).hash(password), wrapped


def _unwrap(wrapped: dict[str, Any], password: str) -> Ed25519PrivateKey:
    key = _derive(password, bytes.fromhex(wrapped["salt"]), KdfCost.parse(wrapped["kdf"]))
    try:
        return _open_raw(
            key, bytes.fromhex(wrapped["nonce"]), bytes.fromhex(wrapped["ciphertext"]), b"flagledger staff key v1"
        )
    except InvalidTag as exc:
        raise AuthError("the stored staff key does not open with this password", code=Code.WRONG_PASSWORD) from exc


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher(_cost).verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _session_key(secret: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"flagledger session staff key v1").derive(secret)


def _session_aad(agency: str, staff: str, session: str) -> bytes:
    return f"flagledger session v1|{agency}|{staff}|{session}".encode()


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
        self.limited_attempt(agency, cred, lambda: _password_matches(cred.password_hash or "", password), wrong)
        signer = StaffSigner(agency, who, _unwrap(cred.wrapped, password))
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
