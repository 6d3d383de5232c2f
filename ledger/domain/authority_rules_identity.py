"""The writer-authority rows for identity and access: pseudonym links and link requests, proxy registrations,
access and report records, tokens, security keys and one-time codes, disclosures. Assembled into the one
table by :mod:`ledger.domain.authority_rules`."""

from __future__ import annotations

from ledger.domain.authority_row import ADMIN, DOMAIN_PREFIX, Rule, Writer

__all__ = ["identity_rules"]

_D = DOMAIN_PREFIX


def identity_rules() -> list[Rule]:
    own = Writer.OWNER
    return [
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
            _D + "identity:ProxyRegistration.CancelledThroughHub",
            True,
            own,
            "the registering agency's node, on the hub's `proxy_cancelled` (another agency holding the person "
            "cancelled the registration there); no staff act, and no other party's message, records it",
            party="registering agency (the stream's owner)",
            note="issue 19: names no agency and no staff member (the hub tells neither)",
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
            ADMIN + ", or the staff member signing in themselves (`via`)",
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
        Rule(_D + "security_keys:SecurityKeys.Removed", False, own, "the staff member, or " + ADMIN),
        Rule(_D + "one_time_codes:SignInPolicy.Opened", False, own, ADMIN, agency_fields=("agency",)),
        Rule(_D + "one_time_codes:SignInPolicy.TotpAllowed", False, own, ADMIN),
        Rule(_D + "one_time_codes:SignInPolicy.TotpWithdrawn", False, own, ADMIN),
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
        Rule(_D + "one_time_codes:OneTimeCodes.Removed", False, own, "the staff member, or " + ADMIN),
        Rule(_D + "identity:ReportRecord.Generated", False, own, "auditor (`audit`)", agency_fields=("agency",)),
        Rule(
            _D + "disclosures:DisclosureRecord.Made",
            False,
            own,
            "counter staff handing out a disclosure document or printout (`counter_lookup`)",
            agency_fields=("agency",),
        ),
    ]
