"""The application surface: commands take and return IDs and plain values.

Every command names its actor (agency code + staff id); the agency's recorded permission table and
the staff member's recorded roles decide whether it may run. Business rules live in the aggregates'
guards; a refused command saves nothing. Library errors become flagledger errors here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import UUID

from cryptography.hazmat.primitives import serialization
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError as LibIntegrityError,
)
from eventsourcing.persistence import (
    OperationalError,
    PersistenceError,
    Recording,
    StoredEvent,
)

from ledger import clock
from ledger.domain.agencies import Agency, Staff
from ledger.domain.base import LedgerAggregate
from ledger.domain.cases import CHECKLIST_ITEMS, ProtectionCase
from ledger.domain.event_fields import check_event
from ledger.domain.flags import BodyRequest, FlagRequest, Protection
from ledger.domain.identity import AccessRecord, ProxyRegistration, PseudonymLink, ReportRecord, TokenGrant
from ledger.domain.keys import KeyRegistry
from ledger.domain.provision import ProbeNotice, ProvisionRequest, must_hold
from ledger.domain.types import (
    Action,
    AgencyKind,
    Applicant,
    Flag,
    ProvisionStatus,
    Reason,
    RequestKind,
    Role,
    agency_code,
    calendar_day,
    parse_enum,
    staff_id,
)
from ledger.envelope import Envelope
from ledger.errors import (
    ChainError,
    ConfigurationError,
    FlagLedgerError,
    InputError,
    KeyEventError,
    KeyProblem,
    NotFoundError,
    PermissionDenied,
    StateConflict,
    StorageError,
    UntrustedKeyError,
    is_disk_full,
)
from ledger.mapper import SignedEventStore, SignedMapper
from ledger.pseudonym import Pseudonymizer, is_pseudonym
from ledger.signing import KeyRecord, KeyRing, Signer, key_id_for, public_key_from_hex
from ledger.stream_ids import StreamIds

if TYPE_CHECKING:
    from ledger.checkpoints import Checkpoint

__all__ = ["CONCURRENT_CHANGE", "Actor", "FlagLedger", "FlagStateReader", "ProxyIndex", "QuerierAnswer"]

log = logging.getLogger("flagledger.ledger")
CONCURRENT_CHANGE = "someone else changed this at the same time; nothing was recorded: reload it and try again"

log = logging.getLogger("flagledger.ledger")
A = TypeVar("A", bound=LedgerAggregate)
SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    agency: str
    staff: str

    @classmethod
    def parse(cls, value: str) -> Actor:
        """``131016/tanaka`` → Actor("131016", "tanaka")."""
        agency, sep, who = value.partition("/")
        if not sep:
            raise InputError("the actor must look like AGENCY/STAFF (e.g. 131016/tanaka)", field="actor")
        return cls(agency_code(agency, "the actor's agency"), staff_id(who, "the actor's staff id"))

    def __str__(self) -> str:
        return f"{self.agency}/{self.staff}"


class ProxyIndex(Protocol):
    """The proxy registrations of a pair of pseudonyms, any agency's (stream ids, from the views)."""

    def registrations(self, subject: str, proxy: str) -> list[UUID]: ...


class FlagStateReader(Protocol):
    """Nationwide flag state as the request path reads it: flag → agencies holding it."""

    def flags_for(self, subject: str) -> dict[str, list[str]]: ...


@dataclass(frozen=True)
class QuerierAnswer:
    """What the querying agency (and anyone asking at its counter) learns. A held request and any other
    manual answer look exactly alike: no status, code, field or wording reveals a flag."""

    request_id: str
    status: str  # "answered" | "in_progress" | "not_provided"
    message: str

    IN_PROGRESS = "提供機関で手作業による確認を行っています。回答までしばらくお待ちください。"
    ANSWERED = "情報が提供されました。"
    NOT_PROVIDED = "提供機関の判断により、情報は提供されませんでした。"


def _now() -> datetime:
    return clock.now()


class FlagLedger(Application[UUID]):
    name = "flagledger"
    log_section_size = 1000
    is_snapshotting_enabled = False

    def __init__(
        self,
        env: dict[str, str],
        *,
        signers: dict[str, Signer],
        anchors: Sequence[KeyRecord],
        pseudonymizer: Pseudonymizer,
        ids: StreamIds,
        clock: Callable[[], datetime] = _now,
        audit: bool = False,
    ) -> None:
        """``audit``: opened for ``audit verify`` — envelope v1 is read, and a key event that fails is recorded
        in :attr:`key_problem` (for the audit to name) instead of refusing to open."""
        self.keyring = KeyRing()
        self.key_problem: KeyProblem | None = None
        self._audit = audit
        self.signers = dict(signers)
        self._anchors = {a.key_id: a for a in anchors}
        self.pseudonymize = pseudonymizer
        self.clock = clock
        self.flag_state: FlagStateReader | None = None
        self.proxy_index: ProxyIndex | None = None
        self.ids = ids  # keyed ids of the hosted agencies' streams about people (ledger.stream_ids)
        self.hosted = frozenset(self.signers)
        self._vouched: set[str] = set()
        # read paths' permission decisions, valid only at one log position (see permit)
        self._permits: tuple[int, dict[tuple[str, str, Action | None], PermissionDenied | None]] = (-1, {})
        env = dict(env)
        # the recorders that advance the log head in every insert transaction (ledger.log_head)
        recorder = _LOG_HEAD_RECORDERS.get(env.get("PERSISTENCE_MODULE", ""))
        if recorder is not None:
            env.setdefault("APPLICATION_RECORDER_TOPIC", recorder)
        try:
            super().__init__(env=env)
        except (PersistenceError, OperationalError) as exc:
            raise StorageError(f"cannot open the event store: {exc}") from exc
        events = self.events
        assert isinstance(events, SignedEventStore)
        self.signed_store: SignedEventStore = events
        self.signed_store.default_origin = self._single_origin
        self.signed_store.door.fold_keys = self.apply_key_events  # every stored key event, saved or received
        if hasattr(self.recorder, "leaf_of"):
            self.recorder.leaf_of = self.signed_mapper.leaf_of_state
        self.signed_mapper.read_v1 = audit
        self.load_keyring()

    # -- wiring --------------------------------------------------------------------------------
    def construct_mapper(self) -> SignedMapper:
        return SignedMapper(
            transcoder=self.construct_transcoder(),
            cipher=self.factory.cipher(),
            compressor=None,
            keyring=self.keyring,
            signers=self.signers,
        )

    def construct_event_store(self) -> SignedEventStore:
        mapper = self.mapper
        assert isinstance(mapper, SignedMapper)
        return SignedEventStore(mapper, self.recorder)

    @property
    def signed_mapper(self) -> SignedMapper:
        m = self.mapper
        assert isinstance(m, SignedMapper)
        return m

    def _single_origin(self) -> str:
        if len(self.hosted) == 1:
            return next(iter(self.hosted))
        raise ConfigurationError("several agencies are hosted here: say which one originates the events")

    # -- the key registry ----------------------------------------------------------------------
    def load_keyring(self) -> None:
        """Rebuild the key registry from the log's key events, verifying each as it is applied."""
        try:
            self._load_keys()
        except KeyEventError as exc:
            if not self._audit:
                raise
            # the audit names this event as the first bad one (or an earlier one); keys after it stay unknown
            self.key_problem = exc.problem
        if self._audit:
            # this node's own keys, as its config.json lists them, even where the log lost their registration:
            # its events still verify, and the audit names the missing key event itself (ledger.log_check)
            known = {r.key_id for r in self.keyring.records()}
            for anchor in self._anchors.values():
                if anchor.key_id not in known:
                    self.keyring.add(anchor)

    def _load_keys(self) -> None:
        start = 1
        batch: list[tuple[Envelope, StoredEvent]] = []
        while True:
            page = self.recorder.select_notifications(start=start, limit=1000, topics=self._key_topics())
            for n in page:
                try:
                    env = self.signed_mapper.open(n.state)
                except FlagLedgerError as exc:
                    raise KeyEventError.at(n, exc) from exc
                if batch and batch[-1][0].seal.signature != env.seal.signature:
                    self.apply_key_events(batch)
                    batch = []
                batch.append((env, n))
            if len(page) < 1000:
                break
            start = page[-1].id + 1
        if batch:
            self.apply_key_events(batch)

    @staticmethod
    def _key_topics() -> list[str]:
        prefix = "ledger.domain.keys:KeyRegistry."
        return [prefix + e for e in ("Opened", "KeyAdded", "KeyRetired", "KeyRevoked", "RemoteKeyTrusted")]

    def apply_key_events(self, batch: Sequence[tuple[Envelope, StoredEvent]]) -> None:
        """Verify one sealed batch of key events and fold it into the registry.

        A KeyAdded is trusted if signed by a key of the same agency valid at the time (rotation), or
        self-signed by a key anchored for this node (a hosted agency's genesis) or vouched for by a local
        administrator (RemoteKeyTrusted).
        """
        mapper = self.signed_mapper
        tentative: list[str] = []
        row: StoredEvent | None = None
        try:
            for env, row in batch:
                mapper.check_row(row, env)
                h = env.header
                if h.topic.endswith(".KeyAdded"):
                    ev: Any = mapper.decode(env)
                    vouched = ev.key_id in self._anchors or ev.key_id in self._vouched
                    if (
                        h.key_id == ev.key_id
                        and vouched
                        and ev.key_id not in {r.key_id for r in self.keyring.records()}
                    ):
                        self.keyring.add(
                            KeyRecord(h.origin, ev.key_id, ev.public_hex, datetime.fromisoformat(ev.valid_from))
                        )
                        tentative.append(ev.key_id)
            for env, stored in batch:
                row = stored  # (named in the error below)
                mapper.verify(env)
                self._fold_key_event(env)
        except (FlagLedgerError, AttributeError, TypeError, ValueError) as exc:
            # (a payload missing a field, or a malformed date, raises the latter three)
            for key_id in tentative:
                self.keyring.discard(key_id)
            if row is None or isinstance(exc, KeyEventError):
                raise
            raise KeyEventError.at(row, exc) from exc

    def _fold_key_event(self, env: Envelope) -> None:
        h = env.header
        ev: Any = self.signed_mapper.decode(env)
        if not self._may_write_key_event(env, vars(ev)):
            return
        kind = h.topic.rsplit(".", 1)[1]
        if kind == "KeyAdded":
            self.keyring.add(
                KeyRecord(h.origin, ev.key_id, ev.public_hex, datetime.fromisoformat(ev.valid_from))
            )
        elif kind == "KeyRetired":
            self.keyring.retire(ev.key_id, datetime.fromisoformat(ev.valid_until))
        elif kind == "KeyRevoked":
            self.keyring.revoke(ev.key_id, datetime.fromisoformat(ev.effective_from), ev.reason)
        elif kind == "RemoteKeyTrusted" and h.origin in self.hosted:
            self._vouched.add(ev.key_id)
            if ev.key_id not in {r.key_id for r in self.keyring.records()}:
                self.keyring.add(
                    KeyRecord(
                        ev.remote_agency, ev.key_id, ev.public_hex, datetime.fromisoformat(ev.valid_from)
                    )
                )

    def _may_write_key_event(self, env: Envelope, payload: dict[str, Any]) -> bool:
        """A key event its signer may not write (another agency's registry or key) is never folded in.

        Ingest parks such events and sealing refuses them, so only one written straight into the store gets
        here: the registry ignores it (another agency's key stays usable, this node still opens) and
        ``audit verify`` names it."""
        from ledger.authority import append_violation, payload_violation

        h = env.header
        bad = payload_violation(h.topic, h.origin, payload, h.stream, h.version)
        if bad is None and h.version > 1:
            bad = append_violation(h.topic, h.origin, self.signed_store.owner(UUID(h.stream)))
        if bad is not None:
            log.error("key event v%s of stream %s (%s) by agency %s is ignored: %s; run `flagledger audit verify`",
                      h.version, h.stream, h.topic, h.origin, bad)
        return bad is None

    # -- persistence helpers -------------------------------------------------------------------
    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's ``save``, collecting our aggregates' events without its runtime-Protocol
        ``isinstance`` checks (a fifth of the time of a batched save; figure "signed append")."""
        processing = ProcessingEvent[UUID]()
        for obj in objs:
            if isinstance(obj, LedgerAggregate):
                processing.events.extend(obj.collect_events())
                processing.aggregates[obj.id] = obj
            elif obj is not None:
                processing.collect_events(obj)
        processing.saved_kwargs.update(kwargs)
        for e in processing.events:  # every field within its bound, or nothing is saved (InputError)
            check_event(e)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)  # the library still calls its deprecated hook
        return recordings

    def save_as(self, origin: str, *aggregates: LedgerAggregate | None) -> list[int]:
        """Save aggregates as one sealed batch originated by ``origin``; returns notification ids."""
        try:
            recordings = self.save(*aggregates, origin=origin)
        except LibIntegrityError as exc:
            # the driver's words (constraint, key values) are for the log, never for the person at the screen
            log.info("save refused by the store's unique key: %s", exc)
            raise StateConflict(CONCURRENT_CHANGE, code="concurrent_change") from exc
        except (PersistenceError, OperationalError) as exc:
            if is_disk_full(exc):
                raise StorageError(
                    f"the disk holding the event store is full ({exc}): nothing was recorded. Free space on that "
                    "filesystem (or grow the volume), then repeat the command",
                    code="disk_full",
                ) from exc
            raise StorageError(
                f"the event store refused the write: {exc}; nothing was recorded. Check the database, then "
                "repeat the command"
            ) from exc
        # (its key events are in the key registry: the store's door folded them in, ledger.store_door)
        return [r.notification.id for r in recordings]

    def load(self, cls: type[A], aggregate_id: UUID, what: str) -> A:
        try:
            agg: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise self._unknown(what, aggregate_id) from None
        except (PersistenceError, OperationalError) as exc:
            raise StorageError(f"cannot read {what}: {exc}") from exc
        if not isinstance(agg, cls):  # another kind of object under that id: answered as if there were none
            raise self._unknown(what, aggregate_id)
        return agg

    @staticmethod
    def _unknown(what: str, aggregate_id: UUID) -> NotFoundError:
        """The one answer for an id that names nothing the caller may act on: unknown, another kind of
        object, or another agency's (requests, cases, protections) — so no answer tells them apart."""
        return NotFoundError(f"unknown {what}")

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            return self.load(cls, aggregate_id, cls.__name__)
        except NotFoundError:
            return None

    # -- identities, permissions ----------------------------------------------------------------
    def subject(self, number_or_pseudonym: str) -> str:
        return self.pseudonymize.subject(number_or_pseudonym)

    def agency(self, code: str) -> Agency:
        return self.load(Agency, Agency.create_id(code), "agency")

    def staff(self, agency: str, who: str) -> Staff:
        if not self.ids.hosts(agency):  # staff are local: only the hosted agencies' are here
            raise NotFoundError("unknown staff member")
        return self.load(Staff, self.ids.staff(agency, who), "staff member")

    def authorise(self, actor: Actor, action: Action) -> tuple[Agency, Staff]:
        member = self._active_member(actor)
        agency = self.agency(actor.agency)
        if not agency.allows(set(member.roles), action):
            raise PermissionDenied(
                f"{actor} (roles: {', '.join(member.roles) or 'none'}) "
                f"may not {action.value} at {actor.agency}",
                code="role_not_permitted",
            )
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
                    self.authorise(actor, action)
                refused = None
            except PermissionDenied as exc:
                refused = exc
            memo[1][key] = refused
        if refused is not None:
            raise PermissionDenied(str(refused), code=refused.code)

    def _active_member(self, actor: Actor) -> Staff:
        if actor.agency not in self.hosted:
            raise PermissionDenied("the acting agency is not hosted on this node", code="foreign_agency")
        try:
            member = self.staff(actor.agency, actor.staff)
        except NotFoundError:
            raise PermissionDenied("the acting staff member is not enrolled", code="unknown_staff") from None
        if not member.active:
            raise PermissionDenied("the acting staff member is deactivated", code="inactive_staff")
        return member

    # -- set-up ---------------------------------------------------------------------------------
    def register_agency(
        self, code: str, name: str, kind: str, *, administrator: str, approvals_required: int = 1
    ) -> str:
        """Register a hosted agency with its first administrator and its self-signed key (``init``)."""
        agency_code(code)
        staff_id(administrator)
        parse_enum(AgencyKind, kind, "agency kind")
        signer = self.signers.get(code)
        if signer is None:
            raise ConfigurationError(f"no signing key for agency {code} on this node")
        if self.find(Agency, Agency.create_id(code)) is not None:
            raise StateConflict(f"agency {code} is already registered")
        registry = KeyRegistry(agency=code)
        anchor = self._anchors[signer.key_id]
        registry.add_key(
            key_id=signer.key_id, public_hex=signer.public_raw.hex(), valid_from=anchor.valid_from.isoformat()
        )
        self.save_as(code, registry)
        agency = Agency(code=code, name=name, kind=kind, approvals_required=approvals_required)
        admin = Staff(
            id=self.ids.staff(code, administrator),
            agency=code,
            staff_id=administrator,
            name=administrator,
            roles=[Role.ADMINISTRATOR.value],
            by=SYSTEM,
        )
        self.save_as(code, agency, admin)
        return code

    def register_remote_agency(
        self,
        actor: Actor,
        code: str,
        name: str,
        kind: str,
        key_id: str,
        public_hex: str,
        valid_from: datetime,
    ) -> None:
        """Vouch for another agency's first key, exchanged out of band (the trust anchor for its events)."""
        self.authorise(actor, Action.ADMINISTER)
        agency_code(code)
        parse_enum(AgencyKind, kind, "agency kind")
        public = public_key_from_hex(public_hex)  # refuse a malformed key before anything is recorded
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if key_id != key_id_for(code, raw):
            raise UntrustedKeyError("the key id does not match that agency and public key")
        registry = self.load(KeyRegistry, KeyRegistry.create_id(actor.agency), "key registry")
        registry.trust_remote(
            remote_agency=code,
            key_id=key_id,
            public_hex=public_hex,
            valid_from=valid_from.isoformat(),
            by=actor.staff,
        )
        self.save_as(actor.agency, registry)

    def enroll_staff(self, actor: Actor, who: str, name: str, roles: Sequence[str]) -> str:
        self.authorise(actor, Action.ADMINISTER)
        staff_id(who)
        parsed = [parse_enum(Role, r, "role").value for r in roles]
        sid = self.ids.staff(actor.agency, who)
        if self.find(Staff, sid) is not None:
            raise StateConflict("that staff id is already enrolled at this agency")
        self.save_as(
            actor.agency, Staff(id=sid, agency=actor.agency, staff_id=who, name=name, roles=parsed, by=actor.staff)
        )
        return who

    def grant_role(self, actor: Actor, who: str, role: str) -> None:
        self.authorise(actor, Action.ADMINISTER)
        member = self.staff(actor.agency, who)
        member.grant_role(parse_enum(Role, role, "role"), by=actor.staff)
        self.save_as(actor.agency, member)

    def revoke_role(self, actor: Actor, who: str, role: str) -> None:
        self.authorise(actor, Action.ADMINISTER)
        member = self.staff(actor.agency, who)
        member.revoke_role(parse_enum(Role, role, "role"), by=actor.staff)
        self.save_as(actor.agency, member)

    def deactivate_staff(self, actor: Actor, who: str) -> None:
        self.authorise(actor, Action.ADMINISTER)
        member = self.staff(actor.agency, who)
        member.deactivate(by=actor.staff)
        self.save_as(actor.agency, member)

    def grant_permission(self, actor: Actor, role: str, action: str) -> None:
        agency, _ = self.authorise(actor, Action.ADMINISTER)
        agency.grant(parse_enum(Role, role, "role"), parse_enum(Action, action, "action"), by=actor.staff)
        self.save_as(actor.agency, agency)

    def revoke_permission(self, actor: Actor, role: str, action: str) -> None:
        agency, _ = self.authorise(actor, Action.ADMINISTER)
        agency.revoke(parse_enum(Role, role, "role"), parse_enum(Action, action, "action"), by=actor.staff)
        self.save_as(actor.agency, agency)

    def set_approval_policy(self, actor: Actor, approvals_required: int) -> None:
        agency, _ = self.authorise(actor, Action.ADMINISTER)
        agency.set_approvals_required(approvals_required, by=actor.staff)
        self.save_as(actor.agency, agency)

    # -- keys -------------------------------------------------------------------------------------
    def rotate_key(self, actor: Actor, new_signer: Signer, valid_from: datetime) -> str:
        """Announce ``new_signer`` (signed by the current key); retire the current one at ``valid_from``."""
        self.authorise(actor, Action.ADMINISTER)
        old = self.signers[actor.agency]
        registry = self.load(KeyRegistry, KeyRegistry.create_id(actor.agency), "key registry")
        registry.add_key(
            key_id=new_signer.key_id,
            public_hex=new_signer.public_raw.hex(),
            valid_from=valid_from.isoformat(),
        )
        registry.retire(old.key_id, valid_until=(valid_from + timedelta(days=1)).isoformat())
        self.save_as(actor.agency, registry)
        self.signers[actor.agency] = new_signer
        self.signed_mapper.signers[actor.agency] = new_signer
        return new_signer.key_id

    def revoke_key(
        self, actor: Actor, key_id: str, reason: str, effective_from: datetime | None = None
    ) -> None:
        self.authorise(actor, Action.ADMINISTER)
        if self.signers[actor.agency].key_id == key_id:
            raise StateConflict("rotate to a new key before revoking the current one")
        registry = self.load(KeyRegistry, KeyRegistry.create_id(actor.agency), "key registry")
        registry.revoke(key_id, (effective_from or self.clock()).isoformat(), reason, by=actor.staff)
        self.save_as(actor.agency, registry)

    # -- intake (Point 1) --------------------------------------------------------------------------
    def open_case(
        self,
        actor: Actor,
        victim: str,
        *,
        perpetrators: Sequence[str] = (),
        reason: str = Reason.DV.value,
        checklist: dict[str, bool] | None = None,
        proxies_to_cancel: Sequence[str] = (),
        notes: str = "",
    ) -> UUID:
        self.authorise(actor, Action.OPEN_CASE)
        parse_enum(Reason, reason, "reason")
        checklist = dict(checklist or {})
        unknown = set(checklist) - set(CHECKLIST_ITEMS)
        if unknown:
            raise InputError(f"unknown checklist items; known: {', '.join(CHECKLIST_ITEMS)}", field="checklist")
        full = {item: bool(checklist.get(item, False)) for item in CHECKLIST_ITEMS}
        case = ProtectionCase(
            agency=actor.agency,
            victim=self.subject(victim),
            perpetrators=[self.subject(p) for p in perpetrators],
            reason=reason,
            checklist=full,
            proxies_to_cancel=[self.subject(p) for p in proxies_to_cancel],
            notes=notes,
            opened_by=actor.staff,
        )
        self.save_as(actor.agency, case)
        return case.id

    def case(self, case_id: UUID) -> ProtectionCase:
        return self.load(ProtectionCase, case_id, "case")

    def add_perpetrator(self, actor: Actor, case_id: UUID, subject: str) -> None:
        self.authorise(actor, Action.OPEN_CASE)
        case = self._own(self.case(case_id), actor, "case")
        case.add_perpetrator(self.subject(subject), by=actor.staff)
        self.save_as(actor.agency, case)

    def _own(self, agg: A, actor: Actor, what: str) -> A:
        """``agg`` if ``actor``'s agency owns it; another agency's is answered exactly like an unknown id
        (a refusal naming the owner would tell a querier which agency holds the request or the case)."""
        if agg.agency != actor.agency:
            raise self._unknown(what, agg.id)
        return agg

    # -- flags: request, approve, execute (Points 2, 6, 7) ------------------------------------------
    def request_flags(
        self,
        actor: Actor,
        subject: str,
        flags: Sequence[str],
        *,
        kind: str = RequestKind.SET.value,
        reason: str = Reason.DV.value,
        review_date: date | None = None,
        case_id: UUID | None = None,
        explanation: str = "",
        body_request_id: UUID | None = None,
    ) -> UUID:
        agency, _ = self.authorise(actor, Action.REQUEST_FLAG)
        k = parse_enum(RequestKind, kind, "request kind")
        parse_enum(Reason, reason, "reason")
        if not flags:
            raise InputError("name at least one flag (NON_DISCLOSURE, NO_AUTO_RESPONSE)")
        fl = sorted({parse_enum(Flag, f, "flag").value for f in flags})
        subj = self.subject(subject)
        if case_id is not None:
            self._own(self.case(case_id), actor, "case")
        if body_request_id is not None:
            body = self.load(BodyRequest, body_request_id, "protection-body request")
            if body.municipality != actor.agency:  # sent to another municipality: as if unknown
                raise self._unknown("protection-body request", body_request_id)
        protection = self.find(Protection, self.ids.protection(actor.agency, subj))
        today = self.clock().date()
        if k is RequestKind.SET:
            review = review_date or today + timedelta(days=365)
        elif k is RequestKind.RENEW:
            if protection is None:
                raise NotFoundError(f"agency {actor.agency} holds no flag on this subject to renew")
            protection.check_held(fl)
            review = review_date or today + timedelta(days=365)
        else:
            if protection is None:
                raise NotFoundError(f"agency {actor.agency} holds no flag on this subject to release")
            protection.check_held(fl)
            if not explanation.strip():
                raise InputError(
                    "record the explanation given to the person (Point 6) before requesting release"
                )
            review = None
        if review is not None and review <= today:
            raise InputError("the review date must be in the future")
        if review is not None:
            calendar_day(review, "review_date")
        request = FlagRequest(
            agency=actor.agency,
            kind=k.value,
            subject=subj,
            flags=fl,
            reason=reason,
            review_date=review.isoformat() if review else None,
            requested_by=actor.staff,
            approvals_required=agency.approvals_required,
            case_id=case_id,
            explanation=explanation,
            body_request_id=body_request_id,
        )
        self.save_as(actor.agency, request)
        return request.id

    def flag_request(self, request_id: UUID) -> FlagRequest:
        return self.load(FlagRequest, request_id, "flag request")

    def approve_request(self, actor: Actor, request_id: UUID, note: str = "") -> str:
        self.authorise(actor, Action.APPROVE_FLAG)
        request = self._own(self.flag_request(request_id), actor, "flag request")
        request.approve(actor.staff, note)
        self.save_as(actor.agency, request)
        return request.status

    def reject_request(self, actor: Actor, request_id: UUID, reason: str) -> None:
        self.authorise(actor, Action.APPROVE_FLAG)
        request = self._own(self.flag_request(request_id), actor, "flag request")
        request.reject(actor.staff, reason)
        self.save_as(actor.agency, request)

    def execute_request(self, actor: Actor, request_id: UUID) -> None:
        """The designated operator applies an approved request to the agency's flags."""
        self.authorise(actor, Action.EXECUTE_FLAG)
        request = self._own(self.flag_request(request_id), actor, "flag request")
        request.execute(actor.staff)
        pid = self.ids.protection(actor.agency, request.subject)
        protection = self.find(Protection, pid) or Protection(id=pid, agency=actor.agency, subject=request.subject)
        if request.kind == RequestKind.SET.value:
            assert request.review_date is not None
            protection.set_flags(request.flags, request.id, actor.staff, request.reason, request.review_date)
        elif request.kind == RequestKind.RENEW.value:
            assert request.review_date is not None
            protection.renew(request.flags, request.id, actor.staff, request.review_date)
        else:
            protection.release(request.flags, request.id, actor.staff, "see request explanation")
        self.save_as(actor.agency, request, protection)

    def protection(self, agency: str, subject: str) -> Protection | None:
        """The flags hosted agency ``agency`` holds on ``subject``. Another agency's protection is not found by
        person on any node but its own: its id is keyed with that agency's secret (ledger.stream_ids)."""
        if not self.ids.hosts(agency):
            raise NotFoundError("only the protections of agencies hosted here are found by person")
        return self.find(Protection, self.ids.protection(agency, self.subject(subject)))

    # -- protection bodies ----------------------------------------------------------------------------
    def send_body_request(
        self,
        actor: Actor,
        municipality: str,
        subject: str,
        flags: Sequence[str],
        reason: str = Reason.DV.value,
    ) -> UUID:
        agency, _ = self.authorise(actor, Action.SEND_BODY_REQUEST)
        if not AgencyKind(agency.kind).is_protection_body:
            raise PermissionDenied("only support centres and child guidance centres send protection requests")
        agency_code(municipality, "municipality")
        parse_enum(Reason, reason, "reason")
        fl = sorted({parse_enum(Flag, f, "flag").value for f in flags})
        if not fl:
            raise InputError("name at least one flag")
        body = BodyRequest(
            agency=actor.agency,
            municipality=municipality,
            subject=self.subject(subject),
            flags=fl,
            reason=reason,
            sent_by=actor.staff,
        )
        self.save_as(actor.agency, body)
        return body.id

    # -- information provision (Points 4, 5) ---------------------------------------------------------
    def _national_flags(self, subject: str) -> dict[str, list[str]]:
        if self.flag_state is None:
            raise ConfigurationError("no nationwide flag state is wired: build the app with ledger.bootstrap")
        return self.flag_state.flags_for(subject)

    def request_provision(
        self,
        actor: Actor,
        provider: str,
        subject: str,
        *,
        legal_item: int,
        procedure: str,
        info_kind: str,
        applicant: str = Applicant.UNKNOWN.value,
    ) -> QuerierAnswer:
        """Agency ``actor.agency`` queries ``provider`` (hosted here) about ``subject``."""
        self.authorise(actor, Action.REQUEST_PROVISION)
        return self._provision(actor.agency, provider, subject, legal_item=legal_item, procedure=procedure,
                               info_kind=info_kind, applicant=applicant)

    def receive_query(
        self,
        querier: str,
        provider: str,
        subject: str,
        *,
        legal_item: int,
        procedure: str,
        info_kind: str,
        applicant: str = Applicant.UNKNOWN.value,
    ) -> QuerierAnswer:
        """A query from an agency served by another node, as the information-provision network delivers it
        to ``provider``'s intermediate server. The network authenticates the querier, so no staff of ours
        is involved; the answer is what the network relays back (the querier's node learns the rest from
        the provider's published events, exactly as for :meth:`request_provision`)."""
        agency_code(querier, "querier")
        return self._provision(querier, provider, subject, legal_item=legal_item, procedure=procedure,
                               info_kind=info_kind, applicant=applicant)

    def _provision(
        self,
        querier: str,
        provider: str,
        subject: str,
        *,
        legal_item: int,
        procedure: str,
        info_kind: str,
        applicant: str,
    ) -> QuerierAnswer:
        agency_code(provider, "provider")
        if provider not in self.hosted:  # (never echoed: it may be an individual number typed in the wrong field)
            raise NotFoundError("the providing agency is not served by this node")
        if not isinstance(legal_item, int) or not 1 <= legal_item <= 200:
            raise InputError("legal_item must be the item number of table 2 (別表第二), 1-200")
        if not procedure.strip() or not info_kind.strip():
            raise InputError("procedure and info_kind are required")
        parse_enum(Applicant, applicant, "applicant")
        subj = self.subject(subject)
        request = ProvisionRequest(
            agency=provider,
            querier=querier,
            subject=subj,
            legal_item=legal_item,
            procedure=procedure,
            info_kind=info_kind,
            applicant=applicant,
        )
        state = self._national_flags(subj)
        to_save: list[LedgerAggregate] = [request]
        if must_hold(state):
            request.hold(flags=sorted(state))
        else:
            request.provide_automatically()
        if state:  # the agencies protecting the person hear of every request about them, held or not
            to_save.append(
                ProbeNotice(
                    agency=provider,
                    holders=sorted({a for hs in state.values() for a in hs}),
                    request_id=request.id,
                    querier=querier,
                    procedure=procedure,
                    legal_item=legal_item,
                )
            )
        self.save_as(provider, *to_save)
        return self.querier_answer(request.id)

    def provision_request(self, request_id: UUID) -> ProvisionRequest:
        return self.load(ProvisionRequest, request_id, "provision request")

    def provision_answer(self, actor: Actor, request_id: UUID) -> QuerierAnswer:
        """What staff of ``actor``'s agency may see of a provision request: the querier's answer, to the
        querying or the providing agency only; any other agency's request is answered like an unknown one."""
        self.permit(actor)
        r = self.provision_request(request_id)
        if actor.agency not in (r.querier, r.agency):
            raise self._unknown("provision request", request_id)
        return self.querier_answer(request_id)

    def querier_answer(self, request_id: UUID) -> QuerierAnswer:
        r = self.provision_request(request_id)
        if r.status in (ProvisionStatus.PROVIDED.value, ProvisionStatus.PROVIDED_MANUALLY.value):
            return QuerierAnswer(str(r.id), "answered", QuerierAnswer.ANSWERED)
        if r.status == ProvisionStatus.REFUSED.value:
            return QuerierAnswer(str(r.id), "not_provided", QuerierAnswer.NOT_PROVIDED)
        return QuerierAnswer(str(r.id), "in_progress", QuerierAnswer.IN_PROGRESS)

    def propose_decision(
        self, actor: Actor, request_id: UUID, decision: str, applicant_check: str, note: str = ""
    ) -> None:
        """A reviewer at the provider proposes to provide or refuse a held request (after Point 5's check)."""
        self.authorise(actor, Action.REVIEW_HELD)
        parse_enum(Applicant, applicant_check, "applicant check")
        request = self._own(self.provision_request(request_id), actor, "provision request")
        request.propose(decision, applicant_check, actor.staff, note)
        self.save_as(actor.agency, request)

    def approve_decision(self, actor: Actor, request_id: UUID, proposal_version: int) -> str:
        """Approve the proposal ``proposal_version`` (the version of the DecisionProposed event the approver
        was shown: ``HeldRequest.proposal_version``); a stale one is refused with ``stale_proposal``."""
        self.authorise(actor, Action.APPROVE_HELD)
        request = self._own(self.provision_request(request_id), actor, "provision request")
        request.approve_decision(actor.staff, proposal_version)
        self.save_as(actor.agency, request)
        assert request.status is not None
        return request.status

    # -- identity and proxies ----------------------------------------------------------------------
    def link_numbers(self, actor: Actor, old: str, new: str) -> tuple[str, str]:
        """Record an individual-number change; protection follows the person to the new pseudonym."""
        self.authorise(actor, Action.REQUEST_FLAG)
        o, n = self.subject(old), self.subject(new)
        if o == n:
            raise InputError("old and new numbers are the same")
        lid = self.ids.link(actor.agency, o)
        if self.find(PseudonymLink, lid) is not None:
            raise StateConflict("that old number is already linked to a new one")
        self.save_as(actor.agency, PseudonymLink(id=lid, agency=actor.agency, old=o, new=n, by=actor.staff))
        return o, n

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
        found = [r for r in (self.find(ProxyRegistration, i) for i in dict.fromkeys(ids))
                 if r is not None and (r.subject, r.proxy) == (s, p)]
        return next((r for r in found if r.active), found[0] if found else None)

    def cancel_proxy(self, actor: Actor, subject: str, proxy: str, reason: str = "") -> None:
        self.authorise(actor, Action.OPEN_CASE)
        s, p = self.subject(subject), self.subject(proxy)
        reg = self.find_proxy_registration(s, p)
        if reg is None:
            raise NotFoundError("unknown proxy registration")
        reg.cancel(by=actor.staff, reason=reason)
        self.save_as(actor.agency, reg)

    def record_access(self, actor: Actor, subject: str, what: str, purpose: str) -> UUID:
        """Record a read of protected details; callers do this *before* showing them."""
        self.authorise(actor, Action.VIEW_PROTECTED)
        (rid,) = self._record_reads(actor, [subject], what, purpose)
        return rid

    def record_listing(self, actor: Actor, subjects: Sequence[str], what: str, purpose: str,
                       allowed: Sequence[Action]) -> list[UUID]:
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

    def record_token_grant(self, issuer: Actor, staff: str, roles: Sequence[str], expires_at: datetime,
                           token_id: str) -> UUID:
        """Record an API token's grant (never the token) before it is handed out."""
        self.authorise(issuer, Action.ADMINISTER)
        grant = TokenGrant(agency=issuer.agency, issuer=issuer.staff, staff=staff, roles=list(roles),
                           expires_at=expires_at.isoformat(), token_id=token_id)
        self.save_as(issuer.agency, grant)
        return grant.id

    def record_report(self, actor: Actor, period_from: datetime, period_to: datetime, out_dir: str) -> UUID:
        """Record that an auditor generates a period report (it names people), before it is written."""
        self.authorise(actor, Action.AUDIT)
        rec = ReportRecord(agency=actor.agency, staff=actor.staff, period_from=period_from.isoformat(),
                           period_to=period_to.isoformat(), out_dir=out_dir)
        self.save_as(actor.agency, rec)
        return rec.id

    # -- reading the log ------------------------------------------------------------------------------
    def envelopes(
        self, start: int = 1, page: int = 1000, stop: int | None = None
    ) -> Iterator[tuple[int, StoredEvent, Envelope]]:
        """Stream (notification id, row, envelope) in log order, page by page (bounded memory)."""
        mapper = self.signed_mapper
        while True:
            rows = self.recorder.select_notifications(start=start, limit=page, stop=stop)
            for n in rows:
                yield n.id, n, mapper.open(n.state)
            if len(rows) < page:
                return
            start = rows[-1].id + 1

    def max_position(self) -> int:
        try:
            return self.recorder.max_notification_id() or 0
        except PersistenceError as exc:  # e.g. the connection was lost: nothing changed, ask again later
            raise StorageError(f"cannot read the log's last position: {exc}") from exc

    # -- checkpoints ------------------------------------------------------------------------------------
    def sign_checkpoint(self, agency: str | None = None, *, force: bool = False) -> list[Checkpoint]:
        """"Checkpoint now": sign the log as it stands for ``agency`` (default: every hosted agency).

        Returns the :class:`ledger.checkpoints.Checkpoint` objects signed (none if nothing new was logged).
        """
        from ledger.checkpoints import sign_checkpoint

        return sign_checkpoint(self, agency, force=force)


_LOG_HEAD_RECORDERS = {
    "eventsourcing.sqlite": "ledger.sqlite_recorder:LogHeadSQLiteRecorder",
    "eventsourcing.postgres": "ledger.pg_recorder:BinaryInsertRecorder",
}


def is_local_only(topic: str) -> bool:
    """Whether events of this topic stay on the node (intake notes, approvals, staff, access reads)."""
    from eventsourcing.utils import resolve_topic

    cls_name = topic.split(":", 1)[1].split(".", 1)[0] if ":" in topic else ""
    owner = resolve_topic(topic.split(":", 1)[0] + ":" + cls_name)
    return not getattr(owner, "SHARED", False)


_ = (is_pseudonym, ChainError, FlagLedgerError)
