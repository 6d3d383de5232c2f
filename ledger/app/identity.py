"""Identity commands: linking a person's old and new numbers, registering and cancelling proxies."""

from __future__ import annotations

from uuid import UUID, uuid4

from eventsourcing.utils import get_topic

from ledger.app.access import LedgerAccess
from ledger.app.residence import link_refusal, named_move
from ledger.app.values import Actor, FlagStateReader
from ledger.domain.flags import Protection
from ledger.domain.identity import LinkRequest, PeerProxyCancellation, ProxyRegistration, PseudonymLink
from ledger.domain.types import (
    Action,
    Flag,
    RequestStatus,
)
from ledger.errors import (
    Code,
    ConfigurationError,
    InputError,
    NotFoundError,
    PermissionDenied,
    StateConflict,
)

_HOLDING = (Flag.NON_DISCLOSURE.value, Flag.NO_AUTO_RESPONSE.value)


class IdentityCommands(LedgerAccess):
    """Number changes and proxy registrations."""

    # hub mode (set by ledger.runtime.linkage): another agency's registrations are not in this log; the hub has them
    proxies_at_hub: bool = False

    # -- number changes: four eyes at the linking agency (issue 18; docs/operations.md "Number changes") -----
    def request_link(self, actor: Actor, old: str, new: str, reason: str) -> UUID:
        """Ask to record an individual-number change (old → new); nothing links until another staff member
        of this agency approves (:meth:`approve_link`). Refused now if either number is already linked."""
        self.authorise(actor, Action.REQUEST_LINK)
        o, n = self.subject(old), self.subject(new)
        if o == n:
            raise InputError("old and new numbers are the same", field="new")
        self._check_linkable(actor.agency, o, n)
        self._check_residence(actor.agency, o, n)
        req = LinkRequest(
            agency=actor.agency, kind="link", old=o, new=n, requested_by=actor.staff, reason=_reason(reason)
        )
        self.save_as(actor.agency, req)
        return req.id

    def request_unlink(self, actor: Actor, old: str, reason: str, second_change: bool = False) -> UUID:
        """Ask to undo this agency's link of ``old`` — a wrong link, or (``second_change``) to make room for the
        person's next number change: then every protection stays on both numbers and ``old`` stays retired,
        and the link's new number may be linked to the newer one. Four eyes as for a link."""
        self.authorise(actor, Action.REQUEST_LINK)
        o = self.subject(old)
        link = self._own_link(actor.agency, o)
        kind = "second_change" if second_change else "unlink"
        req = LinkRequest(
            agency=actor.agency, kind=kind, old=o, new=link.new, requested_by=actor.staff, reason=_reason(reason)
        )
        self.save_as(actor.agency, req)
        return req.id

    def approve_link(self, actor: Actor, request_id: UUID, note: str = "") -> dict[str, object]:
        """Approve another staff member's link or unlink request: the link changes in the same sealed batch.

        An unlink answers which protections keep covering each number only because they were held on the other
        one (``carried``: number → flags; a wrong link carries what was set through it, a second change carries
        everything): they are kept, never silently dropped, and reviewed with their holders; and which flags no
        longer cover a number (``no_longer_covered``): set before the wrong link on the other number — if that
        number is in fact the victim's, request them on it (docs/operations.md, Number changes)."""
        self.authorise(actor, Action.APPROVE_LINK)
        req = self._own(self.load(LinkRequest, request_id, "link request"), actor, "link request")
        req.check_decidable(actor.staff)
        lid = self.ids.link(actor.agency, req.old)
        link = self.find(PseudonymLink, lid)
        if req.kind == "link":
            self._check_linkable(actor.agency, req.old, req.new)  # again: the log may have changed since
            self._check_residence(actor.agency, req.old, req.new)  # (a move may have been recorded since)
            # signed with the link: every peer judges it as of the move judged by here (ledger/app/residence.py)
            move = named_move(self, (req.old, req.new))
            if link is None:
                link = PseudonymLink(
                    id=lid, agency=actor.agency, old=req.old, new=req.new, by=actor.staff, residence_move=move
                )
            else:
                link.relink(req.new, by=actor.staff, request_id=req.id, residence_move=move)
        else:
            link = self._own_link(actor.agency, req.old)
            if link.new != req.new:
                raise StateConflict("the link changed since the unlink was requested", code=Code.LINK_CONFLICT)
            link.unlink(by=actor.staff, request_id=req.id, reason=req.reason, second_change=req.kind != "unlink")
        numbers = (req.old, req.new)
        before = {p: set(self._reader().flags_for(p)) for p in numbers} if req.kind != "link" else {}
        req.approve(by=actor.staff, note=note)
        self.save_as(actor.agency, req, link)
        out: dict[str, object] = {"request_id": str(req.id), "kind": req.kind, "old": req.old, "new": req.new}
        if req.kind != "link":
            reader = self._reader()
            out["carried"] = {p: reader.carried(p) for p in numbers}
            out["no_longer_covered"] = {p: sorted(before[p] - set(reader.flags_for(p))) for p in numbers}
        return out

    def reject_link(self, actor: Actor, request_id: UUID, reason: str) -> None:
        self.authorise(actor, Action.APPROVE_LINK)
        req = self._own(self.load(LinkRequest, request_id, "link request"), actor, "link request")
        req.reject(by=actor.staff, reason=_reason(reason))
        self.save_as(actor.agency, req)

    def pending_link_requests(self, actor: Actor) -> list[dict[str, str]]:
        """The actor's agency's link, unlink and second-change requests still waiting for a decision (oldest
        first), for its approvers and requesters; read from the log (each request verified as it is loaded)."""
        try:
            self.authorise(actor, Action.APPROVE_LINK)
        except PermissionDenied:
            self.authorise(actor, Action.REQUEST_LINK)
        out: list[dict[str, str]] = []
        start, topic = 1, get_topic(LinkRequest.Requested)  # type: ignore[attr-defined]
        while True:
            rows = self.recorder.select_notifications(start=start, limit=1000, topics=[topic])
            for n in rows:
                req = self.find(LinkRequest, UUID(str(n.originator_id)))
                if req is not None and req.agency == actor.agency and req.status == RequestStatus.PENDING.value:
                    out.append(
                        {"request_id": str(req.id), "kind": req.kind, "old": req.old, "new": req.new,
                         "requested_by": req.requested_by, "reason": req.reason}
                    )  # fmt: skip
            if len(rows) < 1000:
                return out
            start = rows[-1].id + 1

    def _own_link(self, agency: str, old: str) -> PseudonymLink:
        link = self.find(PseudonymLink, self.ids.link(agency, old))
        if link is None or not link.active:
            raise NotFoundError(
                "this agency has no active link from that number (only the agency that linked it can undo it)"
            )
        return link

    def _reader(self) -> FlagStateReader:
        if self.flag_state is None:
            raise ConfigurationError("no nationwide flag state is wired: build the app with ledger.runtime.bootstrap")
        return self.flag_state

    def _check_linkable(self, agency: str, old: str, new: str) -> None:
        """Chains and cycles are refused: a number already in an active link, as old or new, by any agency,
        cannot be linked again (a genuine second change: docs/operations.md "Number changes")."""
        state = self._reader()
        for number, which in ((old, "old"), (new, "new")):
            linked = state.linked(number)
            if linked is None:
                continue
            hint = (
                "; if the person's number changed again, first `identity unlink --old FIRST_OLD --second-change`"
                if which == "old" and linked[1] == number
                else ""
            )
            raise StateConflict(
                f"the {which} number is already linked to another number (a chain or cycle of number changes "
                f"is refused){hint}; see docs/operations.md, Number changes",
                code=Code.LINK_CONFLICT,
            )
        link = self.find(PseudonymLink, self.ids.link(agency, old))
        if link is not None and link.active:  # (the state says so too; this holds without it being fresh)
            raise StateConflict("that old number is already linked to a new one", code=Code.LINK_CONFLICT)

    def _check_residence(self, agency: str, old: str, new: str) -> None:
        why = link_refusal(self, agency, (old, new))
        if why is not None:
            raise PermissionDenied(why + " (docs/operations.md, Number changes)", code=Code.NOT_RESIDENCE)

    def register_proxy(self, actor: Actor, subject: str, proxy: str) -> UUID:
        self.authorise(actor, Action.OPEN_CASE)
        s, p = self.subject(subject), self.subject(proxy)
        rid = self.ids.proxy(actor.agency, s, p)
        existing = self.find_proxy_registration(s, p)
        if self.find(ProxyRegistration, rid) is not None or (existing is not None and existing.active):
            raise StateConflict("that proxy is already registered")
        reg = ProxyRegistration(id=rid, agency=actor.agency, subject=s, proxy=p, by=actor.staff)
        self.save_as(actor.agency, reg)
        return reg.id

    def find_proxy_registration(self, subject: str, proxy: str) -> ProxyRegistration | None:
        """The registration of ``proxy`` for ``subject`` by whichever agency made it (an active one first).

        A hosted agency's own is found by its keyed id; a peer's only through :attr:`proxy_index` (its id is
        keyed with the peer's secret), and what the index names is loaded from the verified log and must be
        a registration of exactly this pair, so an edited index row can point nowhere else."""
        s, p = self.subject(subject), self.subject(proxy)
        ids = [self.ids.proxy(a, s, p) for a in sorted(self.hosted)]
        if self.proxy_index is not None:
            ids += self.proxy_index.registrations(s, p)
        found = [
            r
            for r in (self.find(ProxyRegistration, i) for i in dict.fromkeys(ids))
            if r is not None and (r.subject, r.proxy) == (s, p)
        ]
        return next((r for r in found if r.active), found[0] if found else None)

    def cancel_proxy(self, actor: Actor, subject: str, proxy: str, reason: str = "") -> str:
        """Cancel ``proxy``'s registration for ``subject``: ``"cancelled"`` in this log, or, in hub mode for a
        registration made by another agency (not in this log), ``"sent"``: recorded here, and the node's bridge
        sends it to the hub, which cancels it wherever it was registered — only for an agency holding the person
        (checked here first, and again at the hub: ``ledger.hub.proxy_registrations``)."""
        self.authorise(actor, Action.OPEN_CASE)
        s, p = self.subject(subject), self.subject(proxy)
        reg = self.find_proxy_registration(s, p)
        if self.proxies_at_hub and (reg is None or not reg.active):
            return self._cancel_at_hub(actor, s, p, reason)
        if reg is None:
            raise NotFoundError("unknown proxy registration")
        reg.cancel(by=actor.staff, reason=reason)
        self.save_as(actor.agency, reg)
        return "cancelled"

    def _cancel_at_hub(self, actor: Actor, s: str, p: str, reason: str) -> str:
        if s == p:
            raise InputError("a person is not their own proxy", field="proxy")
        protection = self.find(Protection, self.ids.protection(actor.agency, s))  # this agency's own
        if protection is None or not any(protection.active(f) for f in _HOLDING):
            raise PermissionDenied(
                f"agency {actor.agency} did not register this proxy and holds no NON_DISCLOSURE or NO_AUTO_RESPONSE "
                "on this person: only a holder cancels another agency's registration",
                code=Code.WRONG_AGENCY,
            )
        cancellation = PeerProxyCancellation(
            id=uuid4(), agency=actor.agency, subject=s, proxy=p, by=actor.staff, reason=reason
        )
        self.save_as(actor.agency, cancellation)
        return "sent"


def _reason(text: str) -> str:
    """A link request and its rejection state why: a number change joins two people's records."""
    if not text.strip():
        raise InputError("state the reason (e.g. the number-change notice 個人番号変更通知)", field="reason")
    return text.strip()
