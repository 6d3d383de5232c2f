"""The writer-authority rows for what protects everywhere and what is answered to others: the flags an agency
holds, protection-body requests and their outcomes, information provision, the answers that need staff and
probe notices. Assembled into the one table by :mod:`ledger.domain.authority_rules`."""

from __future__ import annotations

from ledger.domain.authority_row import ADMIN, DOMAIN_PREFIX, NODE, Rule, Writer

__all__ = ["provision_rules"]

_D = DOMAIN_PREFIX
_PROVIDER = (
    "provider (payload `agency`, the stream's owner); the querier (payload `querier`) never appends: "
    "`FlagLedger._provision`, `propose_decision` and `approve_decision` all save as the provider"
)


def provision_rules() -> list[Rule]:
    own = Writer.OWNER
    return [
        # -- the flags an agency holds: what protects everywhere (attack 1) --------------------------------
        Rule(_D + "flags:Protection.Opened", True, own, "operator (`execute_flag`)", agency_fields=("agency",)),
        Rule(_D + "flags:Protection.FlagsSet", True, own, "operator (`execute_flag`)", agency_fields=("agency",)),
        Rule(_D + "flags:Protection.FlagsRenewed", True, own, "operator (`execute_flag`)", agency_fields=("agency",)),
        Rule(_D + "flags:Protection.FlagsReleased", True, own, "operator (`execute_flag`)", agency_fields=("agency",)),
        Rule(
            _D + "flags:BodyRequest.Sent",
            True,
            own,
            "requester of a protection body (`send_body_request`)",
            agency_fields=("agency",),
            other_agency_fields=("municipality",),
            party="sending protection body (payload `agency`); the municipality (payload `municipality`) never "
            "appends: it answers with its own FlagRequest and Protection",
        ),
        Rule(
            _D + "bodies:BodyOutcome.Recorded",
            True,
            own,
            "the asked municipality's requester, approver or operator, with the act on its flag request that "
            "names the body request (requested, approved, rejected, executed)",
            agency_fields=("agency",),
            other_agency_fields=("body",),
            party="municipality that was asked (payload `agency`); the body (payload `body`) reads it, never "
            "appends; it names no person",
        ),
        # -- information provision -----------------------------------------------------------------------
        Rule(
            _D + "provision:ProvisionRequest.Received",
            True,
            own,
            "counter (`request_provision`) or the linkage network (`receive_query`)",
            agency_fields=("agency",),
            other_agency_fields=("querier",),
            party=_PROVIDER,
        ),
        Rule(
            _D + "provision:ProvisionRequest.AutoProvided",
            True,
            own,
            "the provider's node, with Received",
            party=_PROVIDER,
        ),
        Rule(_D + "provision:ProvisionRequest.Held", True, own, "the provider's node, with Received", party=_PROVIDER),
        Rule(
            _D + "provision:ProvisionRequest.DecisionProposed", True, own, "reviewer (`review_held`)", party=_PROVIDER
        ),
        Rule(
            _D + "provision:ProvisionRequest.ManuallyProvided",
            True,
            own,
            "approver (`approve_held`), not the proposer",
            party=_PROVIDER,
        ),
        Rule(
            _D + "provision:ProvisionRequest.Refused",
            True,
            own,
            "approver (`approve_held`), not the proposer",
            party=_PROVIDER,
        ),
        Rule(
            _D + "provision:ProvisionRequest.Reopened",
            True,
            own,
            "the provider's node, on the hub's `decide_again` escalation (a decision the hub refused as taken on "
            "advice that changed since); no staff act, and no other party's message, reopens a request",
            party=_PROVIDER,
        ),
        Rule(
            _D + "provision:ProvisionRequest.Released",
            True,
            own,
            "the node at the provider's batch time (`flagledger provision release` or the node loop)",
            party=_PROVIDER,
        ),
        # -- answers that need staff (issue 21): local to the provider ---------------------------------
        Rule(_D + "answers:AnswerPolicy.Opened", False, own, ADMIN, agency_fields=("agency",)),
        Rule(_D + "answers:AnswerPolicy.BatchTimesChanged", False, own, ADMIN),
        Rule(_D + "answers:AnswerPolicy.DueDaysChanged", False, own, ADMIN),
        Rule(_D + "answers:AnswerPolicy.ManualItemMarked", False, own, ADMIN),
        Rule(_D + "answers:AnswerPolicy.ManualItemUnmarked", False, own, ADMIN),
        Rule(_D + "answers:CopyNote.Opened", False, own, "reviewer (`review_held`)", agency_fields=("agency",)),
        Rule(_D + "answers:CopyNote.Changed", False, own, "reviewer (`review_held`)"),
        Rule(
            _D + "answers:HeldFile.Opened",
            False,
            own,
            "the provider's node, with ProvisionRequest.Held",
            agency_fields=("agency",),
        ),
        Rule(_D + "answers:HeldFile.Escalated", False, own, NODE + ": a held request past its due date"),
        Rule(_D + "answers:HeldFile.Closed", False, own, "with ProvisionRequest.Released"),
        Rule(
            _D + "provision:ProbeNotice.Sent",
            True,
            own,
            "the provider's node, with Received",
            agency_fields=("agency",),
            other_agency_fields=("holders", "querier"),
            party="provider that received the query (payload `agency`); the flag holders (payload `holders`) "
            "never append: they read it in their work queue",
        ),
    ]
