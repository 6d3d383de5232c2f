"""The check of a flag change's evidence against an agency's staff roster: who requested, approved and
executed it, each with their own signature (docs/staff-signing.md).

Pure functions over payload values, so the local app (before it executes a request), a peer's ingest
(``consumers.decide``) and ``audit verify`` apply the one rule. The statements signed are
:mod:`ledger.domain.staff_acts`'s. The roster itself, folded from its events, is :mod:`ledger.log.roster_state`'s
(:class:`RosterState`, :class:`KeyCert`), importable from here as well, where its many readers took it from.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ledger.domain.staff_acts import (
    APPROVED,
    EXECUTED,
    REJECTED,
    REQUESTED,
    act_statement,
    request_digest,
)
from ledger.log.roster_state import ROSTER_ROLES, STAFF_KEY, WEBAUTHN, KeyCert, RosterState, verify_signature
from ledger.log.webauthn_proof import check_assertion

__all__ = [
    "ROSTER_ROLES",
    "STAFF_KEY",
    "WEBAUTHN",
    "KeyCert",
    "RosterState",
    "check_acts",
    "check_evidence",
    "uncertified_keys",
    "verify_act",
    "verify_signature",
]


def verify_act(cert: KeyCert, statement: bytes, signed: Mapping[str, Any]) -> str | None:
    """Why ``signed`` (an act's key id, signature and, for a security key, its assertion) is not ``cert``'s
    signature on ``statement`` (None: it is)."""
    if cert.kind == WEBAUTHN:
        if "authenticator_data" not in signed or "client_data" not in signed:
            return "a security key signs with a WebAuthn assertion, and this one carries none"
        return check_assertion(
            cert.cose_key,
            cert.rp_id_hash,
            statement,
            str(signed["authenticator_data"]),
            str(signed["client_data"]),
            str(signed["signature"]),
        )
    if "authenticator_data" in signed or "client_data" in signed:
        return "a staff key's signature carries no WebAuthn assertion"
    if not verify_signature(cert.public_hex, str(signed["signature"]), statement):
        return "the signature does not verify for this request"
    return None


# -- evidence ---
def check_acts(
    roster: RosterState,
    request_id: str,
    digest: str,
    acts: Sequence[Mapping[str, Any]],
    awaiting: Collection[str] = (),
) -> str | None:
    """Why one of ``acts`` (on request ``request_id`` whose :func:`request_digest` is ``digest``) is not signed
    by a key certified for its staff member and not revoked (None: each is). An act under a key in
    ``awaiting`` (not in the roster yet) is left unchecked: the caller decides again when the roster grows."""
    agency = roster.agency
    try:
        for a in acts:
            if str(a["key_id"]) in awaiting:
                continue
            cert = roster.keys.get(str(a["key_id"]))
            if cert is None or cert.staff != a["staff"]:
                return f"{a['act']} by {a['staff']}: key {a['key_id']} is not certified for them at {agency}"
            if cert.revoked:
                return f"{a['act']} by {a['staff']}: key {a['key_id']} was revoked"
            statement = act_statement(agency, str(a["act"]), request_id, digest, str(a["staff"]), str(a["note"]))
            problem = verify_act(cert, statement, a)
            if problem is not None:
                return f"{a['act']} by {a['staff']}: {problem}"
    except (KeyError, TypeError, ValueError, AttributeError):
        return "malformed staff signatures"
    return None


def uncertified_keys(roster: RosterState | None, payload: Mapping[str, Any]) -> list[str]:
    """The key ids the evidence on a flag change's ``payload`` names that ``roster`` does not hold at all (all
    of them before the agency's roster is here): what a roster event still to arrive could certify. A key the
    roster holds — revoked, another person's, or not matching the signature — is never one of them."""
    ev = payload.get("evidence")
    try:
        named = [str(a["key_id"]) for a in ev["acts"]] if isinstance(ev, Mapping) else []
    except (KeyError, TypeError):
        return []
    known = roster.keys if roster is not None and roster.opened else {}
    return sorted({k for k in named if k not in known})


def check_evidence(
    roster: RosterState | None,
    event: str,
    payload: Mapping[str, Any],
    awaiting: Collection[str] = (),
) -> str | None:
    """Why the evidence on a ``FlagsSet`` / ``FlagsRenewed`` / ``FlagsReleased`` payload does not prove four
    eyes and an operator, each a certified person of the agency (None: it does).

    Checks: the request digest is recomputed from the event's own fields, so the acts are about these flags on
    this subject; the requester signed ``requested``; at least ``approvals_required`` (≥ 1; 0 only for a
    ``provisional`` set, whose requester is its operator) distinct approvers,
    none the requester, signed ``approved``; the operator named in ``by`` signed ``executed``; each key is
    certified for that person in the agency's roster and not revoked.

    ``awaiting``: key ids not in the roster yet (:func:`uncertified_keys`) whose acts are taken as signed, so
    that everything else is checked now: a flag change that fails only for want of them may be waiting for
    its roster event; one that fails anything else is refused whatever arrives.
    """
    ev = payload.get("evidence")
    agency = str(payload.get("agency"))
    if ev is None:
        return "carries no staff signatures"
    if awaiting and (roster is None or not roster.opened):
        roster = RosterState(agency, opened=True)  # (nothing certified here yet: every key is awaited)
    if roster is None or not roster.opened:
        return f"agency {agency} has no staff roster to check its signatures against"
    try:
        kind = {"FlagsSet": "set", "FlagsRenewed": "renew", "FlagsReleased": "release"}[event]
        review = payload.get("review_date") if kind != "release" else None
        request_id = str(payload["request_id"])
        required = ev["approvals_required"]
        # an emergency flag (docs/year.md): set by one designated person, co-approved afterwards; only a set,
        # never a release or renewal, and its executor must be its requester
        provisional = ev.get("provisional") is True and kind == "set" and required == 0
        if type(required) is not int or (required < 1 and not provisional):
            return "a request needs at least one approval"
        digest = request_digest(
            agency, request_id, kind, str(payload["subject"]), list(payload["flags"]), review, required, ev["details"]
        )
        acts: list[Mapping[str, Any]] = list(ev["acts"])
        problem = check_acts(roster, request_id, digest, acts, awaiting)
        if problem is not None:
            return problem
        by_act: dict[str, list[str]] = {}
        for a in acts:
            by_act.setdefault(str(a["act"]), []).append(str(a["staff"]))
        requester = by_act.get(REQUESTED, [])
        approvers = by_act.get(APPROVED, [])
        if len(requester) != 1:
            return "the request is not signed by exactly one requester"
        if requester[0] in approvers:
            return "the requester approved their own request"
        if len(set(approvers)) != len(approvers) or len(approvers) < required:
            return f"{len(set(approvers))} distinct approver(s) signed; {required} required"
        if provisional and requester != [payload["by"]]:
            return "a provisional flag is set by the person who requested it"
        if by_act.get(EXECUTED) != [payload["by"]]:
            return f"the operator {payload['by']} did not sign the execution"
        if REJECTED in by_act:
            return "a rejected request was executed"
    except (KeyError, TypeError, ValueError, AttributeError):
        return "malformed staff evidence"
    return None
