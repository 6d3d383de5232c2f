"""Staff sign their own acts: the statements a staff key signs (pure functions over payload values). The
roster of certified keys and the check of a flag's evidence, which verify signatures, are in
:mod:`ledger.log.staff_roster`, used alike by the local app, a peer's ingest and ``audit verify``.

The node's signing key proves only which node wrote an event; a staff signature proves which person acted,
and the key that made it was certified by the person's own proof of possession plus an administrator's
signature (the root: the agency's first administrator).
A shell user holding every secret of the node holds no staff key. See docs/staff-signing.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ACTS",
    "CO_APPROVAL",
    "ROLE_ACTS",
    "ROOT_ISSUER",
    "act_statement",
    "co_approval_statement",
    "code_digest",
    "details_digest",
    "enrol_statement",
    "grant_digest",
    "note_digest",
    "possession_statement",
    "proxy_approval_statement",
    "request_digest",
    "role_statement",
    "security_key_statement",
    "staff_key_id",
]

REQUESTED, APPROVED, REJECTED, EXECUTED = ACTS = ("requested", "approved", "rejected", "executed")
# what an administrator signs about a role grant: proposing it (alone enough for a one-step role such as
# requester) and approving another administrator's proposal (a privileged role: approver, operator, reviewer,
# administrator)
PROPOSED_ROLE, APPROVED_ROLE = ROLE_ACTS = ("proposed", "approved")
ROOT_ISSUER = "system"  # the root's code is issued by the node at set-up, not by a person


def _canonical(tag: str, value: Mapping[str, Any]) -> bytes:
    return (tag + "\n" + json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def staff_key_id(agency: str, public_raw: bytes) -> str:
    """A staff key's id: its agency and fingerprint, in a namespace apart from the node keys'."""
    return f"{agency}:{_sha(b'flagledger staff key v1' + public_raw)[:16]}"


def code_digest(code: str) -> str:
    return _sha(code.encode())


def details_digest(reason: str, explanation: str, case_id: str | None, body_request_id: str | None) -> str:
    """The digest of a request's local details (never shared); peers see only this digest."""
    return _sha(
        _canonical(
            "flagledger request details v1",
            {"reason": reason, "explanation": explanation, "case": case_id, "body_request": body_request_id},
        )
    )


def request_digest(
    agency: str,
    request_id: str,
    kind: str,
    subject: str,
    flags: Sequence[str],
    review_date: str | None,
    approvals_required: int,
    details: str,
) -> str:
    """What each act signs about the request: everything a peer sees on the resulting Protection event, plus
    the chain length and the digest of the local details."""
    return _sha(
        _canonical(
            "flagledger flag request v1",
            {
                "agency": agency,
                "request": request_id,
                "kind": kind,
                "subject": subject,
                "flags": sorted(flags),
                "review_date": review_date,
                "approvals_required": approvals_required,
                "details": details,
            },
        )
    )


def note_digest(note: str) -> str:
    return _sha(note.encode())


def act_statement(agency: str, act: str, request_id: str, request: str, staff: str, note: str) -> bytes:
    """The bytes a staff member signs for one act on one request (``request``: its :func:`request_digest`;
    ``note``: the :func:`note_digest` of the act's note or reason, which stays local). The request id and
    digest bind the signature to this request: replayed onto another it fails."""
    return _canonical(
        "flagledger staff act v1",
        {
            "agency": agency,
            "act": act,
            "request": request_id,
            "digest": request,
            "staff": staff,
            "note": note,
        },
    )


def enrol_statement(agency: str, staff: str, digest: str, expires_at: str, certifies: bool) -> bytes:
    """What the issuing administrator signs when handing out an enrolment code."""
    return _canonical(
        "flagledger enrolment v1",
        {"agency": agency, "staff": staff, "code": digest, "expires_at": expires_at, "certifies": certifies},
    )


def possession_statement(agency: str, staff: str, key_id: str, digest: str) -> bytes:
    """What the new staff key signs to prove it is held by whoever completed the enrolment."""
    return _canonical("flagledger key possession v1", {"agency": agency, "staff": staff, "key": key_id, "code": digest})


def security_key_statement(
    agency: str, staff: str, key_id: str, credential: str, cose_key: str, rp_id_hash: str
) -> bytes:
    """What the person's staff key signs to certify a WebAuthn credential of theirs (base64url ``credential``
    id and ``cose_key``, the hex SHA-256 of the relying party's id) as ``key_id`` in the roster."""
    return _canonical(
        "flagledger security key v1",
        {"agency": agency, "staff": staff, "key": key_id, "credential": credential, "cose": cose_key, "rp": rp_id_hash},
    )


CO_APPROVAL = "break-glass co-approval"


def grant_digest(agency: str, grant: str, staff: str, role: str, proposed_by: str) -> str:
    """What a prefecture's administrator co-approves about a pending role grant of a single-administrator
    agency (``flagledger staff export-grant``): recomputed by that agency's node from its own record."""
    return _sha(
        _canonical(
            "flagledger role grant v1",
            {"agency": agency, "grant": grant, "staff": staff, "role": role, "proposed_by": proposed_by},
        )
    )


def co_approval_statement(
    prefecture: str, staff: str, key_id: str, agency: str, grant: str, digest: str, note: str, at: str
) -> bytes:
    """What a prefecture's administrator signs, on the prefecture's own node, to co-approve ``agency``'s grant
    (break-glass; ``digest``: its :func:`grant_digest`; ``note``: the :func:`note_digest` of why). The grant
    id and digest bind it to this grant: copied onto another it does not verify."""
    return _canonical(
        "flagledger break-glass v1",
        {
            "act": CO_APPROVAL,
            "prefecture": prefecture,
            "staff": staff,
            "key": key_id,
            "agency": agency,
            "grant": grant,
            "digest": digest,
            "note": note,
            "at": at,
        },
    )


def role_statement(act: str, digest: str) -> bytes:
    """What an administrator signs with their own staff key to propose (``proposed``) or approve (``approved``)
    a role grant whose :func:`grant_digest` is ``digest`` (agency, grant id, staff, role, proposer): the
    evidence ``StaffRoster.RoleCertified`` carries, so that a peer checks who holds which role."""
    return _canonical("flagledger role grant act v1", {"act": act, "digest": digest})


def proxy_approval_statement(
    agency: str, approval: str, withdrawal: bool, act: str, subject: str, proxy: str, staff: str
) -> bytes:
    """What a holder's staff member signs for ``act`` (``requested`` or ``approved``) on approval ``approval`` (its
    stream id) of ``proxy`` for ``subject`` — or on its withdrawal. The same bytes are recomputed by the hub from
    the ``proxy_approval`` message (ledger.hub.proxy_approvals), so a statement copied onto another pair, another
    approval or the other action does not verify."""
    what = "proxy-withdrawal:" if withdrawal else "proxy-approval:"
    digest = details_digest(subject, "holder_proxy_approval", proxy, None)
    return act_statement(agency, act, what + approval, digest, staff, note_digest(""))
