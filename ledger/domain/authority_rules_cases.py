"""The writer-authority rows for a protected person's case at their agency: intake, erasure, flag requests and
the person's year (moves, releases, guardian bars, holder proxy approvals, support terms). Assembled into the
one table by :mod:`ledger.domain.authority_rules`."""

from __future__ import annotations

from ledger.domain.authority_row import DOMAIN_PREFIX, NODE, Rule, Writer, admin

__all__ = ["case_rules"]

_D = DOMAIN_PREFIX


def case_rules() -> list[Rule]:
    own = Writer.OWNER
    return [
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
            admin("erase request"),
            agency_fields=("agency",),
            note="encrypted under the person's data key: erased with them",
        ),
        Rule(_D + "erasure:ErasureRequest.Approved", False, own, admin("erase approve") + ", not the requester"),
        Rule(
            _D + "erasure:ErasureRequest.Erased",
            False,
            own,
            admin("erase approve") + ", with the approval",
            note="names the destroyed data keys (random refs), never the person",
        ),
        Rule(_D + "erasure:ErasureRequest.Rejected", False, own, admin("erase approve") + ", not the requester"),
        Rule(
            _D + "erasure:ErasureNotice.Published",
            True,
            own,
            admin("erase approve") + ", with the approval",
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
            NODE + ": a provisional flag not co-approved in a business day",
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
        Rule(_D + "terms:SupportTerm.Reminded", False, own, NODE + " (`flagledger year step`)"),
        Rule(_D + "terms:SupportTerm.Escalated", False, own, NODE + " (`flagledger year step`)"),
        Rule(_D + "terms:SupportTerm.LapseProposed", False, own, "requester (`request_flag`)"),
        Rule(_D + "terms:SupportTerm.Lapsed", False, own, "approver (`approve_flag`), not the proposer"),
    ]
