"""WebAuthn for the console: a staff member registers a security key (a USB key, an IC card reader's
authenticator, a platform authenticator — municipal My Number networks often bar phones), and from then on a
console session needs that key as well as the first factor (a token pasted in, or the agency's identity
provider). The key is certified in the agency's roster at registration, and each flag act the person makes in
the console is signed by it: an assertion whose challenge is the SHA-256 of the act's statement
(:func:`begin_act`, :func:`act_proof`; docs/staff-signing.md, "Security keys").

Stateless between the two halves of each ceremony: the challenge travels in an HMAC'd, short-lived cookie
bound to the purpose and the person, so a challenge issued for one person or purpose verifies nothing else.
The relying party is the console's own host name and origin, as the browser reached it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ledger.app import Actor
from ledger.app.credentials import WebAuthnProof
from ledger.errors import AuthError, Code, InputError, IntegrityError, PermissionDenied
from ledger.log.webauthn_proof import challenge_for, unb64url
from ledger.runtime.bootstrap import Node

__all__ = [
    "CEREMONY_TTL",
    "Ceremony",
    "act_proof",
    "act_proof_for",
    "begin_act",
    "begin_registration",
    "begin_sign_in",
    "finish_registration",
    "finish_sign_in",
    "signs_with_key",
]

CEREMONY_TTL = 300  # seconds to touch the key

log = logging.getLogger("flagledger.api.console")


@dataclass(frozen=True)
class Ceremony:
    """What the browser gets (``options``, JSON for navigator.credentials) and the cookie value that holds
    the challenge until the answer comes back."""

    options: dict[str, Any]
    binding: str


def _mac(node: Node, text: str) -> str:
    return hmac.new(node.keys.api_token_secret(), f"webauthn\x00{text}".encode(), hashlib.sha256).hexdigest()


def _bind(node: Node, purpose: str, actor: Actor, challenge: bytes) -> str:
    body = ".".join([purpose, actor.agency, actor.staff, bytes_to_base64url(challenge), str(int(time.time()))])
    return f"{body}.{_mac(node, body)}"


def _challenge(node: Node, purpose: str, actor: Actor, binding: str | None) -> bytes:
    parts = (binding or "").split(".")
    if len(parts) != 6 or not hmac.compare_digest(_mac(node, ".".join(parts[:5])), parts[5]):
        raise AuthError("the security-key step did not start in this browser; start again")
    if parts[:3] != [purpose, actor.agency, actor.staff]:
        raise AuthError("the security-key step belongs to another person or purpose")
    if int(parts[4]) + CEREMONY_TTL < time.time():
        raise AuthError("the security-key step took too long; start again")
    return base64url_to_bytes(parts[3])


def relying_party(request: Request) -> tuple[str, str]:
    """(RP id, origin) as the browser reached the console."""
    url = request.url
    if not url.hostname:
        raise InputError("the request names no host")
    return url.hostname, f"{url.scheme}://{url.netloc}"


def rp_id_hash(rp_id: str) -> str:
    """What an assertion's authenticator data names the relying party by (and the roster records)."""
    return hashlib.sha256(rp_id.encode()).hexdigest()


def _descriptors(node: Node, actor: Actor) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=base64url_to_bytes(c))
        for c in node.app.security_keys(actor.agency, actor.staff)
    ]


def begin_registration(node: Node, request: Request, actor: Actor) -> Ceremony:
    rp_id, _ = relying_party(request)
    member = node.app.staff(actor.agency, actor.staff)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name="flagledger",
        user_id=hashlib.sha256(f"{actor.agency}/{actor.staff}".encode()).digest(),
        user_name=f"{actor.agency}/{actor.staff}",
        user_display_name=member.name or actor.staff,
        exclude_credentials=_descriptors(node, actor),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED, user_verification=UserVerificationRequirement.PREFERRED
        ),
    )
    return Ceremony(json.loads(options_to_json(options)), _bind(node, "register", actor, options.challenge))


def finish_registration(node: Node, request: Request, actor: Actor, binding: str | None, credential: Any) -> str:
    """Check the authenticator's answer and record the key; returns its credential id."""
    rp_id, origin = relying_party(request)
    challenge = _challenge(node, "register", actor, binding)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise AuthError("the security key's answer does not verify") from exc
    credential_id = bytes_to_base64url(verified.credential_id)
    node.app.register_security_key(
        actor,
        credential_id,
        bytes_to_base64url(verified.credential_public_key),
        verified.sign_count,
        rp_id_hash(rp_id),
    )
    return credential_id


def begin_sign_in(node: Node, request: Request, actor: Actor) -> Ceremony:
    rp_id, _ = relying_party(request)
    allowed = _descriptors(node, actor)
    if not allowed:
        raise AuthError("no security key is registered for this staff member")
    options = generate_authentication_options(
        rp_id=rp_id, allow_credentials=allowed, user_verification=UserVerificationRequirement.PREFERRED
    )
    return Ceremony(json.loads(options_to_json(options)), _bind(node, "sign_in", actor, options.challenge))


def finish_sign_in(node: Node, request: Request, actor: Actor, binding: str | None, credential: Any) -> None:
    """Check the assertion against the person's registered key and record the use (counter moves on)."""
    rp_id, origin = relying_party(request)
    challenge = _challenge(node, "sign_in", actor, binding)
    keys = node.app.security_keys(actor.agency, actor.staff)
    used = str(credential.get("rawId") or credential.get("id") or "") if isinstance(credential, dict) else ""
    known = keys.get(used)
    if known is None:
        raise AuthError("that security key is not registered for this staff member")
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=base64url_to_bytes(known["cose_key"]),
            credential_current_sign_count=int(known["counter"]),
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        raise AuthError("the security key's answer does not verify") from exc
    node.app.record_security_key_use(actor, used, verified.new_sign_count)
    # a key registered before keys were certified, or whose staff key a new enrolment replaced; with no staff
    # key unlocked (an identity-provider sign-in) it is certified at the next password sign-in. The sign-in
    # itself stands either way: without a certified key the person's console acts are refused, not forged
    try:
        node.app.certify_security_key(actor, used, rp_id_hash(rp_id))
    except PermissionDenied:
        pass
    except IntegrityError as exc:
        log.warning("security key of %s not certified at sign-in: %s", actor, exc)


# -- each flag act signed by the person's security key ------------------------------------------------------
def signs_with_key(node: Node, actor: Actor) -> bool:
    """Whether ``actor``'s console acts are signed by their security key (they have a certified one): then
    the console never signs for them with the staff key unlocked in this server."""
    return bool(node.app.certified_security_keys(actor.agency, actor.staff))


def begin_act(node: Node, request: Request, actor: Actor, statement: bytes) -> dict[str, Any]:
    """navigator.credentials.get options whose challenge is the SHA-256 of the act's statement, for the keys
    certified for ``actor`` under this relying party."""
    rp_id, _ = relying_party(request)
    certified = node.app.certified_security_keys(actor.agency, actor.staff, rp_id_hash(rp_id))
    if not certified:
        raise PermissionDenied(
            "no security key is certified for you at this address: register one", code=Code.STAFF_SIGNATURE_REQUIRED
        )
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge_for(statement),
        allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c.credential)) for c in certified],
        user_verification=UserVerificationRequirement.PREFERRED,
        timeout=CEREMONY_TTL * 1000,
    )
    parsed: dict[str, Any] = json.loads(options_to_json(options))
    return parsed


def act_proof_for(
    node: Node, request: Request, actor: Actor, assertion: str, chosen: object, what: str, field: str
) -> WebAuthnProof | None:
    """:func:`act_proof` for a new act whose id the signed statement named: a security key's assertion signs
    the statement for one id, so the form must send that id back (``chosen``, the form's ``field``)."""
    proof = act_proof(node, request, actor, assertion)
    if proof is not None and chosen is None:
        raise InputError(f"a {what} signed by a security key names the id it signed", field=field)
    return proof


def act_proof(node: Node, request: Request, actor: Actor, assertion: str) -> WebAuthnProof | None:
    """The proof to sign an act with: the browser's assertion (JSON, as webauthn.js sends it), mapped to the
    roster's certification of the key that made it; None (the staff key unlocked here signs) only for a person
    with no certified security key. The signature itself is checked by the app against the roster."""
    if not assertion:
        if signs_with_key(node, actor):
            raise PermissionDenied(
                "sign this act with your security key (the console asks for it)", code=Code.STAFF_SIGNATURE_REQUIRED
            )
        return None
    rp_id, origin = relying_party(request)
    try:
        credential = json.loads(assertion)
        response = credential["response"]
        used, client_data = str(credential["rawId"]), str(response["clientDataJSON"])
        seen = json.loads(unb64url(client_data))
        signature = unb64url(str(response["signature"])).hex()
        authenticator_data = str(response["authenticatorData"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError("the security key's answer is malformed", field="assertion") from exc
    if not isinstance(seen, dict) or seen.get("origin") != origin:
        raise PermissionDenied("the security key answered another site", code=Code.STAFF_SIGNATURE)
    for cert in node.app.certified_security_keys(actor.agency, actor.staff, rp_id_hash(rp_id)):
        if cert.credential == used:
            return WebAuthnProof(cert.key_id, authenticator_data, client_data, signature)
    raise PermissionDenied("that security key is not certified for you", code=Code.STAFF_SIGNATURE)
