"""Every error code is spelled once, in ``ledger.errors.Code``, and the values stay what they were.

Threat: none directly — the codes are an interface: API bodies, CLI messages (``flagledger: error [code]``),
parked rows, incident rules (``ledger/domain/incidents.py`` maps codes to incident kinds) and operators'
alerting read them. A renamed value would silently stop an incident from being raised.
"""

from __future__ import annotations

import inspect

import ledger.errors as errors
from ledger.domain.incidents import INCIDENT_CODES
from ledger.errors import Code

# the values as they were before they were gathered here (issue 17): none may change
PUBLISHED = {
    "clear_record",
    "kind_not_permitted",
    "unknown_legal_basis",
    "procedure_not_in_basis",
    "info_kind_not_permitted",
    "querier_not_in_basis",  # issue 21: a querier of another kind than the row's
    "provider_not_in_basis",  # issue 21: a provider of another kind than the row's
    "erased",
    "agency_held",
    "bad_checkpoint",
    "bad_key_event",
    "bad_proof",
    "bad_signature",
    "break_glass_refused",  # issue 18: separation of duties
    "broken_chain",
    "broker_unavailable",
    "stopping",  # a request SIGTERM came before (503)
    "checkpoint_fork",
    "checkpoint_mismatch",
    "concurrent_change",
    "configuration",
    "conflict",
    "csrf",
    "disk_full",
    "error",
    "forbidden",
    "foreign_agency",
    "foreign_writer",
    "forged_own",
    "fork",
    "four_eyes",
    "gap",
    "handover_pending",  # issue 21: a release before the new municipality holds
    "handover_open",  # issue 22: an erasure while the hub asks this municipality to take the person over
    "last_holder",  # issue 21: a release that would leave no holder anywhere
    "guardian_barred",  # issue 21: a guardian barred from acting for a protected person
    "not_entitled",  # issue 21: a disclosure or printout asked by neither the person nor their proxy
    "grant_closed",  # issue 18
    "head_corrupt",
    "head_missing",
    "holders_withheld",
    "inactive_staff",
    "integrity",
    "invalid_input",
    "key_expired",
    "key_not_yet_valid",
    "link_conflict",  # issue 18: a number change that would chain or cycle (refused here, parked from a peer)
    "not_residence",  # issue 21: a number change linked by another agency than the person's residence municipality
    "old_link_format",  # issue 21: a peer's number change without its named move, signed after the cut-over
    "malformed",
    "newer_envelope",
    "newer_schema",
    "not_found",
    "old_envelope",
    "oversize",
    "revoked_key",
    "revoked_key_late",
    "role_conflict",  # issue 18
    "role_not_permitted",
    "rule_violation",
    "schema",
    "stale_proposal",
    "staff_only",
    "storage",
    "system_only",
    "system_role",
    "token_scope",
    "truncated",
    "unauthenticated",
    "undecryptable",
    "unknown_agency",
    "unknown_key",
    "unknown_staff",
    "untrusted_key",
    "wrong_agency",
    # issue 18: staff credentials and signatures
    "staff_signature",
    "staff_signature_required",
    "staff_role",
    "bad_enrolment_code",
    "no_credential",
    "wrong_password",
    "locked_out",
    # issue 19: sealed linkage messages
    "sealed_message",
    "misaddressed",
    "wrong_route",
    # issue 19: the hub's leader lease (a standby refuses to sequence)
    "not_leader",
    "card_revoked",
    "proxy_refused",
    "card_certificate",  # issue 19: a portal sign-in's certificate malformed, forged or for another portal
    "card_issuer_unknown",  # issue 19: a certificate from an issuer the portal does not trust
    "card_expired",  # issue 19: a card certificate not valid now
    "card_signature",  # issue 19: the card's signature over the sign-in challenge does not verify
    "challenge_expired",  # issue 19: a sign-in challenge past its expiry
    "challenge_unknown",  # issue 19: a sign-in challenge never issued or used already
    # issue 18: command-line sessions
    "not_signed_in",
    "session_ended",
    "session_mismatch",
    # issue 20: an accountable hub
    "stale_map",
    "flag_ignored",
    "flag_dropped",
    "hub_fork",
    "checkpoint_rollback",
    "hub_rollback",
    "head_skipped",
    "head_uncosigned",
    "change_unseen",
    "bad_person_key",  # issue 19: the registration's VRF proof checked at the agency node
    # issue 19: the consultation beyond delivery (docs/linkage.md)
    "staff_decision_required",
    "delivery_replayed",  # issue 22: a portal delivery-key notice older than (or conflicting with) the one held
    "delivery_unpinned",  # issue 22: a delivery-key notice at a node whose linkage.portal entry has no serial
}


def constants() -> dict[str, str]:
    return {k: v for k, v in vars(Code).items() if k.isupper()}


def test_every_published_code_is_a_constant_with_its_old_value() -> None:
    values = constants()
    assert set(values.values()) == PUBLISHED
    assert len(set(values.values())) == len(values), "two constants spell one code"
    for name, value in values.items():
        assert value == name.lower(), name


def test_every_exception_of_the_tree_carries_a_code_of_the_list() -> None:
    tree = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.FlagLedgerError)]
    assert len(tree) >= 17
    for cls in tree:
        assert cls.code in PUBLISHED, cls


def test_the_incident_rules_name_codes_of_the_list() -> None:
    assert set(INCIDENT_CODES) <= PUBLISHED
