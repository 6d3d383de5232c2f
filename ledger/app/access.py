"""Access: identities, the permission decision (with its per-position memo for read paths), and the
local records of who read what."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger.app.store import LedgerStore
from ledger.app.values import Actor
from ledger.domain.accounts import SystemAccount
from ledger.domain.agencies import Agency, Staff
from ledger.domain.base import LedgerAggregate
from ledger.domain.bodies import kind_refusal
from ledger.domain.credentials import StaffCredential
from ledger.domain.duties import duty_refusal
from ledger.domain.identity import AccessRecord, ReportRecord, TokenGrant
from ledger.domain.types import (
    SYSTEM_ONLY_ACTIONS,
    SYSTEM_ONLY_ROLES,
    Action,
)
from ledger.errors import (
    AuthError,
    Code,
    InputError,
    NotFoundError,
    PermissionDenied,
)

A = TypeVar("A", bound=LedgerAggregate)


class LedgerAccess(LedgerStore):
    """Who may do what (the agency's permission table, the staff member's roles), and the records of reads."""

    def _aggregates(self, cls: type[A], event: str) -> Iterator[A]:
        """Every ``cls`` aggregate created in the log (own and ingested), each verified as it is loaded."""
        start, topic = 1, get_topic(getattr(cls, event))
        while True:
            rows = self.recorder.select_notifications(start=start, limit=1000, topics=[topic])
            for n in rows:
                agg = self.find(cls, UUID(str(n.originator_id)))
                if agg is not None:
                    yield agg
            if len(rows) < 1000:
                return
            start = rows[-1].id + 1

    def _year_aggregates(self, cls: type[A], event: str) -> Iterator[A]:
        """Every ``cls`` created in the log, as :meth:`_aggregates` (ledger.app.handover reads the year index)."""
        return self._aggregates(cls, event)

    def _year_items(
        self, cls: type[A], event: str, kind: str, agency: str | None = None, *, to_agency: str | None = None
    ) -> Iterator[A]:
        """The ``cls`` aggregates (of ``agency``, or every agency's; sent to ``to_agency``) a listing of the
        year's rows may concern, in log order: the rows (projections.year_rows) name the candidates, each loaded
        and verified from its own stream — the caller tests it as a scan would, so a row can only cost a load,
        never add an item. Without the rows (an app not built by the bootstrap): every one
        :meth:`_year_aggregates` lists."""
        if self.year_rows is None:
            found: Iterator[A] = self._year_aggregates(cls, event)
        else:
            loaded = (self.find(cls, aid) for aid in self.year_rows.items(kind, agency, to_agency=to_agency))
            found = (agg for agg in loaded if isinstance(agg, cls))
        for agg in found:
            if agency is not None and getattr(agg, "agency", None) != agency:
                continue
            if to_agency is not None and getattr(agg, "municipality", None) != to_agency:
                continue
            yield agg

    # -- identities, permissions ----------------------------------------------------------------
    def subject(self, number_or_pseudonym: str) -> str:
        return self.pseudonymize.subject(number_or_pseudonym)

    def agency(self, code: str) -> Agency:
        return self.load(Agency, Agency.create_id(code), "agency")

    def staff(self, agency: str, who: str) -> Staff:
        if not self.ids.hosts(agency):  # staff are local: only the hosted agencies' are here
            raise NotFoundError("unknown staff member")
        return self.load(Staff, self.ids.staff(agency, who), "staff member")

    def system_account(self, agency: str, account: str) -> SystemAccount:
        if not self.ids.hosts(agency):  # local, as staff are
            raise NotFoundError("unknown system account")
        return self.load(SystemAccount, self.ids.system_account(agency, account), "system account")

    def authorise(self, actor: Actor, action: Action) -> tuple[Agency, Staff]:
        """A staff member of a hosted agency whose roles allow ``action``. A system account's actions go
        through :meth:`authorise_system`: it acts only as its kind, and never as staff."""
        if action in SYSTEM_ONLY_ACTIONS:  # whatever the staff member's roles or the agency's table say
            raise PermissionDenied(
                f"only a system account may {action.value}: staff members never do", code=Code.SYSTEM_ONLY
            )
        member = self._active_member(actor)
        agency = self.agency(actor.agency)
        self._check_kind(agency, action)
        if not agency.allows(set(member.roles), action):
            raise PermissionDenied(
                f"{actor} (roles: {', '.join(member.roles) or 'none'}) may not {action.value} at {actor.agency}",
                code="role_not_permitted",
            )
        conflict = duty_refusal(agency.permissions, member.roles, action)
        if conflict is not None:
            raise PermissionDenied(f"{actor}: {conflict}", code=Code.ROLE_CONFLICT)
        return agency, member

    def permit(self, actor: Actor, action: Action | None = None) -> None:
        """The read paths' check: ``authorise`` (or, with no action, "an active staff member of a hosted
        agency"), answered from memory while the log has not grown since the same question was answered.

        Every staff or agency change is an event, so a log that has not grown means the decision still stands;
        one that has grown (in any process writing to this log) drops every remembered decision. A decision
        is stored only under the position read *before* it was made, so one made on a newer state never
        outlives that newer position. Views call this several times per screen (figure "portal view" and the
        leak-freedom suites); commands keep calling ``authorise``, which loads the aggregates they change.
        """
        at = self.max_position()
        memo = self._permits
        if memo[0] != at:
            memo = self._permits = (at, {})
        key = (actor.agency, actor.staff, action)
        if key in memo[1]:
            refused = memo[1][key]
        else:
            try:
                if action is None:
                    self._active_member(actor)
                else:
                    self.authorise_any(actor, action)
                refused = None
            except PermissionDenied as exc:
                refused = exc
            memo[1][key] = refused
        if refused is not None:
            raise PermissionDenied(str(refused), code=refused.code)

    def authorise_system(self, actor: Actor, action: Action) -> tuple[Agency, SystemAccount]:
        """An active system account of a hosted agency whose kind's roles allow ``action`` (e.g. the portal's
        ``read_portal``). A staff member asking is refused with ``system_only``, whatever their roles."""
        if actor.agency not in self.hosted:
            raise PermissionDenied("the acting agency is not hosted on this node", code=Code.FOREIGN_AGENCY)
        try:
            account = self.system_account(actor.agency, actor.staff)
        except NotFoundError:
            raise PermissionDenied(
                f"only a system account may {action.value}: staff members never do", code=Code.SYSTEM_ONLY
            ) from None
        if not account.active:
            raise PermissionDenied("the system account is deactivated", code=Code.INACTIVE_STAFF)
        agency = self.agency(actor.agency)
        self._check_kind(agency, action)
        if not agency.allows(set(account.roles), action):
            # a staff member's act (no system kind has it) is "staff_only"; another kind's, "role_not_permitted"
            systems = agency.allows({r.value for r in SYSTEM_ONLY_ROLES}, action)
            raise PermissionDenied(
                f"system account {actor} ({account.kind}) may not {action.value}",
                code=Code.ROLE_NOT_PERMITTED if systems else Code.STAFF_ONLY,
            )
        return agency, account

    @staticmethod
    def _check_kind(agency: Agency, action: Action) -> None:
        refusal = kind_refusal(agency.kind, action)  # whatever the agency's permission table says
        if refusal is not None:
            raise PermissionDenied(refusal, code=Code.KIND_NOT_PERMITTED)

    def authorise_any(self, actor: Actor, action: Action) -> Agency:
        """``authorise`` for a staff member, ``authorise_system`` for a system account: for the few acts
        both kinds may do (a provision request: the counter, or the linkage gateway relaying one)."""
        if action not in SYSTEM_ONLY_ACTIONS:
            try:  # staff first: a staff member's check costs what it always did
                return self.authorise(actor, action)[0]
            except PermissionDenied as exc:
                if exc.code != Code.STAFF_ONLY:  # (raised only when the actor is a system account)
                    raise
        return self.authorise_system(actor, action)[0]

    def _is_system(self, actor: Actor) -> bool:
        return (
            actor.agency in self.hosted
            and self.find(SystemAccount, self.ids.system_account(actor.agency, actor.staff)) is not None
        )

    def _active_member(self, actor: Actor) -> Staff:
        if actor.agency not in self.hosted:
            raise PermissionDenied("the acting agency is not hosted on this node", code="foreign_agency")
        try:
            member = self.staff(actor.agency, actor.staff)
        except NotFoundError:
            if self._is_system(actor):  # a program is never a staff member: no staff view or act
                raise PermissionDenied(
                    "a system account acts only as its kind, never as staff", code=Code.STAFF_ONLY
                ) from None
            raise PermissionDenied("the acting staff member is not enrolled", code="unknown_staff") from None
        if not member.active:
            raise PermissionDenied("the acting staff member is deactivated", code="inactive_staff")
        return member

    def _own(self, agg: A, actor: Actor, what: str) -> A:
        """``agg`` if ``actor``'s agency owns it; another agency's is answered exactly like an unknown id
        (a refusal naming the owner would tell a querier which agency holds the request or the case)."""
        if agg.agency != actor.agency:
            raise self._unknown(what, agg.id)
        return agg

    def record_access(self, actor: Actor, subject: str, what: str, purpose: str) -> UUID:
        """Record a read of protected details; callers do this *before* showing them."""
        self.authorise(actor, Action.VIEW_PROTECTED)
        (rid,) = self._record_reads(actor, [subject], what, purpose)
        return rid

    def record_listing(
        self, actor: Actor, subjects: Sequence[str], what: str, purpose: str, allowed: Sequence[Action]
    ) -> list[UUID]:
        """Record that a listing showed protected details of ``subjects`` (one record each, saved together).

        A listing is authorised by the work it serves (``allowed``: any one of them), not by
        ``view_protected``: an approver of held requests must see the queue they decide. Checked with
        ``permit``, as the listing's own view just did (so answered from memory). Callers record *before*
        showing the listing, as with ``record_access``.
        """
        denied: PermissionDenied | None = None
        for action in allowed:
            try:
                self.permit(actor, action)
                break
            except PermissionDenied as exc:
                denied = exc
        else:
            raise denied or PermissionDenied(f"{actor} may not read {what}", code="role_not_permitted")
        return self._record_reads(actor, subjects, what, purpose)

    def _record_reads(self, actor: Actor, subjects: Sequence[str], what: str, purpose: str) -> list[UUID]:
        if not purpose.strip():
            raise InputError("say why the protected details are read (purpose)")
        records = [
            AccessRecord(agency=actor.agency, staff=actor.staff, subject=s, what=what, purpose=purpose)
            for s in dict.fromkeys(self.subject(s) for s in subjects)
        ]
        if records:
            self.save_as(actor.agency, *records)
        return [r.id for r in records]

    def record_sign_in(self, actor: Actor, roles: Sequence[str], expires_at: datetime, token_id: str, via: str) -> UUID:
        """Record a session a staff member obtained by signing in themselves (``via`` says how, e.g. ``oidc``),
        before its token is handed out; only an active member of a hosted agency signs in."""
        self.permit(actor)
        return self._record_grant(actor, roles, expires_at, token_id, via)

    def _record_grant(self, actor: Actor, roles: Sequence[str], expires_at: datetime, token_id: str, via: str) -> UUID:
        """The one record of a sign-in, staff's and system accounts' alike: the caller is its own issuer (nobody
        is issued a token by someone else), ``via`` says how it proved who it is."""
        grant = TokenGrant(
            agency=actor.agency,
            issuer=actor.staff,
            staff=actor.staff,
            roles=list(roles),
            expires_at=expires_at.isoformat(),
            token_id=token_id,
            via=via,
        )
        self.save_as(actor.agency, grant)
        return grant.id

    def limited_attempt(
        self, agency: str, holder: StaffCredential | SystemAccount, right: Callable[[], bool], refused: AuthError
    ) -> None:
        """The one limiter of sign-ins (a staff member's password, a system account's secret): refused while
        the credential is locked; a failed attempt (``right()`` false) is recorded and raises ``refused``, five
        in a row lock it (:mod:`ledger.domain.lockout`); a right one clears the failures."""
        now = self.clock()
        holder.check_not_locked(now)
        if not right():
            holder.fail(now)
            self.save_as(agency, holder)
            raise refused
        holder.succeed()
        if holder.pending_events:  # (a clean attempt records nothing here: the sign-in's grant is its record)
            self.save_as(agency, holder)

    def record_report(self, actor: Actor, period_from: datetime, period_to: datetime, out_dir: str) -> UUID:
        """Record that an auditor generates a period report (it names people), before it is written."""
        self.authorise(actor, Action.AUDIT)
        rec = ReportRecord(
            agency=actor.agency,
            staff=actor.staff,
            period_from=period_from.isoformat(),
            period_to=period_to.isoformat(),
            out_dir=out_dir,
        )
        self.save_as(actor.agency, rec)
        return rec.id
