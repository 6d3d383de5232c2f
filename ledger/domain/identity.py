"""Identifier changes, proxies and reads of protected details."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import LedgerAggregate
from ledger.domain.four_eyes import FourEyesRequest
from ledger.errors import Code, InputError, StateConflict

# "second_change": the person's number changed again (old → new, then new → newer): the first link is undone
# keeping every protection on both numbers and the old number retired, so that ``new`` may be linked to the newer
# one (a chain is refused); see docs/operations.md, Number changes
LINK_KINDS = ("link", "unlink", "second_change")
# what a registering agency's node records when the hub says another agency cancelled its registration: who did is
# not said (the hub does not tell; a holder's name would say who protects the person)
THROUGH_HUB = "cancelled by another agency holding the person"


class PseudonymLink(LedgerAggregate):
    """A number change: the old pseudonym now also names the person known by the new one.

    Since issue 18 a link is made, undone and made again only through a :class:`LinkRequest` that a second
    staff member approved (``by`` is the approver); links in older logs were one person's act and still replay.
    While active, the old number is *retired*: its card no longer counts as the person on the portal.
    """

    SHARED = True

    # ``id``: the linking agency's keyed id for ``old`` (FlagLedger.ids.link; see ledger.log.stream_ids)
    # ``residence_move``: the id of the latest move of either number the linking node knew (the residence it
    # judged by; "" for none), signed with the link so every peer judges it as of that move (issue 21,
    # ledger/app/residence.py); None in a link from before (class_version 1: upcast to None)
    @event("Linked")
    def __init__(self, id: UUID, agency: str, old: str, new: str, by: str, residence_move: str | None = None) -> None:
        self.agency = agency
        self.old = old
        self.new = new
        self.active = True
        self.residence_move = residence_move
        self.retired = False
        self.residence_move = residence_move

    def unlink(self, by: str, request_id: UUID, reason: str, second_change: bool = False) -> None:
        """Undo a wrong link (the numbers name two people again), or make room for a second number change
        (``second_change``: every protection stays on both numbers, the old one stays retired); see
        docs/operations.md for what protection stays."""
        if not self.active:
            raise StateConflict("that link was already undone", code=Code.LINK_CONFLICT)
        self._unlinked(by=by, request_id=request_id, reason=reason, second_change=second_change)

    @event("Unlinked")
    def _unlinked(self, by: str, request_id: UUID, reason: str, second_change: bool) -> None:
        self.active = False
        self.retired = second_change  # a superseded old number is never linked again

    def relink(self, new: str, by: str, request_id: UUID, residence_move: str | None = None) -> None:
        """Link the old number again, after an unlink (the stream id is the old number's: one stream per
        agency and old number)."""
        if self.active or self.retired:
            raise StateConflict("that old number is already linked to a new one", code=Code.LINK_CONFLICT)
        if new == self.old:
            raise InputError("old and new numbers are the same", field="new")
        self._relinked(new=new, by=by, request_id=request_id, residence_move=residence_move)

    @event("Relinked")
    def _relinked(self, new: str, by: str, request_id: UUID, residence_move: str | None = None) -> None:
        self.new = new
        self.active = True


def _upcast_v1_v2(state: dict[str, object]) -> None:
    state["residence_move"] = None  # a link from before issue 21's named move: judged as before (by its date)


# v2 names the move the link was judged by; an older node parks a v2 link `newer_schema` (replay after upgrading)
for _linked in (PseudonymLink.Linked, PseudonymLink.Relinked):  # type: ignore[attr-defined]
    _linked.class_version = 2
    _linked.upcast_v1_v2 = staticmethod(_upcast_v1_v2)


class LinkRequest(LedgerAggregate, FourEyesRequest):
    """A request to link (``kind`` "link") or unlink ("unlink") two numbers: four eyes at the linking agency
    (local only; the link's own events are shared). The requester states the reason; a different staff member
    approves or rejects it, and only an approval changes the link."""

    WHAT = "link request"
    OWN_DECISION = "the requester cannot decide their own link request (four eyes)"

    @event("Requested")
    def __init__(self, agency: str, kind: str, old: str, new: str, requested_by: str, reason: str) -> None:
        if kind not in LINK_KINDS:
            raise InputError(f"kind must be one of {', '.join(LINK_KINDS)}", field="kind")
        self.agency = agency
        self.kind = kind
        self.old = old
        self.new = new
        self.reason = reason
        self.open_request(requested_by)

    def approve(self, by: str, note: str) -> None:
        self.check_decidable(by)
        self._approved(by=by, note=note)

    _approved = event("Approved")(FourEyesRequest.record_approval)
    _rejected = event("Rejected")(FourEyesRequest.record_rejection)


class ProxyRegistration(LedgerAggregate):
    """A registered Mynaportal proxy (代理人) for a subject."""

    SHARED = True

    # ``id``: the registering agency's keyed id for the pair (FlagLedger.ids.proxy; see ledger.log.stream_ids)
    @event("Registered")
    def __init__(self, id: UUID, agency: str, subject: str, proxy: str, by: str) -> None:
        self.agency = agency
        self.subject = subject
        self.proxy = proxy
        self.active = True

    def cancel(self, by: str, reason: str) -> None:
        if not self.active:
            raise StateConflict("the proxy registration is already cancelled")
        self._cancelled(by=by, reason=reason)

    @event("Cancelled")
    def _cancelled(self, by: str, reason: str) -> None:
        self.active = False

    def cancelled_through_hub(self) -> bool:
        """In hub mode, the hub's word that another agency holding the person cancelled this registration (issue
        19: ``consumers.linkage_proxy_registrations.cancelled``); whether it was recorded now. The hub names no
        agency and no staff member, so neither does the event. Once: a registration already cancelled records
        nothing (a replayed message, or this agency cancelled it too)."""
        if not self.active:
            return False
        self._cancelled_through_hub(note=THROUGH_HUB)
        return True

    # recorded by this agency's node on the hub's ``proxy_cancelled`` only; no staff act makes it
    @event("CancelledThroughHub")
    def _cancelled_through_hub(self, note: str) -> None:
        self.active = False


class PeerProxyCancellation(LedgerAggregate):
    """This agency's cancellation of a proxy registered for ``subject`` by another agency, in hub mode (issue 19):
    the registration is not in this node's log (a node in hub mode holds only its own events), so the cancellation
    is recorded here and the node's bridge sends it to the hub, which checks that this agency holds the person
    (``ledger.hub.proxy_registrations``). Local: what leaves the node is the hub's ``proxy_registration`` only."""

    # ``id``: random — a proxy may be registered again elsewhere and cancelled again, each a new stream
    @event("Cancelled")
    def __init__(self, id: UUID, agency: str, subject: str, proxy: str, by: str, reason: str) -> None:
        self.agency = agency
        self.subject = subject
        self.proxy = proxy


class AccessRecord(LedgerAggregate):
    """Every read of protected details (who, when, what, why) is itself a ledger event."""

    @event("ProtectedDetailsRead")
    def __init__(self, agency: str, staff: str, subject: str, what: str, purpose: str) -> None:
        self.agency = agency
        self.staff = staff
        self.subject = subject
        self.what = what
        self.purpose = purpose


class TokenGrant(LedgerAggregate):
    """An API token issued by an administrator: who may act as whom, with which roles, until when.

    The token itself is never stored (it is a bearer secret); its id lets an auditor tie a token seen in
    a proxy's log to the grant.
    """

    @event("Issued")
    def __init__(
        self,
        agency: str,
        issuer: str,
        staff: str,
        roles: list[str],
        expires_at: str,
        token_id: str,
        via: str = "administrator",  # absent from grants recorded before sign-in through an identity provider
    ) -> None:
        self.agency = agency
        self.issuer = issuer
        self.staff = staff
        self.roles = roles
        self.expires_at = expires_at
        self.token_id = token_id
        self.via = via


class ReportRecord(LedgerAggregate):
    """An auditor's period report was generated: it lists people, held requests and reads, so making it is
    itself a read of protected details, recorded before the report is written."""

    @event("Generated")
    def __init__(self, agency: str, staff: str, period_from: str, period_to: str, out_dir: str) -> None:
        self.agency = agency
        self.staff = staff
        self.period_from = period_from
        self.period_to = period_to
        self.out_dir = out_dir
