"""The hub's message loop: one :meth:`HubService.step` polls the hub's inbox and handles what it finds.

For each message, in order: open it with the hub's sealing key and check its signature under the sender's
registered key (``Directory``); drop it if its (sender, event id) was applied before; apply it — a
registration binds the sender's code at the hub, a flag change and a provision record are filed in the hub's
sequence, a query is routed, a provider's answer is relayed to the querier — in one transaction with its
applied id and the sealed messages it owes (the outbox); park it with its reason if it cannot be applied. The
outbox is sent, then the inbox committed: after the database commit, never before.

Only the leader handles: a process without the lease (a standby) does not even poll, so the inbox stays
uncommitted for whoever leads; a leader deposed mid-batch stops at once, commits nothing, and the new leader
drops what was already applied. Every write that decides anything runs through the sequencer, whose fencing
refuses a deposed leader. Design and limits: docs/linkage.md.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta

from sqlalchemy import Connection

from ledger import clock
from ledger.domain.types import AgencyKind
from ledger.errors import (
    BrokerUnavailable,
    Code,
    InputError,
    NotFoundError,
    PermissionDenied,
    StorageError,
)
from ledger.hub import links
from ledger.hub.body_requests import HubBodyRequests
from ledger.hub.consultations import WINDOW, HubConsultations
from ledger.hub.delivery_relay import FROM_PORTAL, from_portal
from ledger.hub.digests import DigestSchedule, send_digests
from ledger.hub.erasure import erase
from ledger.hub.heads import MapHeads
from ledger.hub.inbox import applied_seq, mark_applied, owe, owed, paid
from ledger.hub.log import HubStore
from ledger.hub.moves import HubMoves, Write
from ledger.hub.openers import Openers
from ledger.hub.poll import Step, apply_poll, open_poll
from ledger.hub.proxy_approvals import approve
from ledger.hub.proxy_registrations import register as register_proxy
from ledger.hub.queries import QueryRouting
from ledger.hub.record_outcomes import update_outcome
from ledger.hub.rosters import keep_roster
from ledger.hub.sealed_records import file_sealed
from ledger.hub.sequencer import NotLeader
from ledger.hub.unrouted import answer_unrouted
from ledger.hub.witness_relay import WITNESSING, witnessing
from ledger.linkage.body_requests import BodyOutcomeMessage, BodyRequestMessage
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.codes import Registration, link_numbers, register
from ledger.linkage.consultation import AdviceMessage, StaffAnswer
from ledger.linkage.directory import Directory
from ledger.linkage.erasure_messages import ErasureMessage
from ledger.linkage.hub_seq import HUB_SEQ, with_seq
from ledger.linkage.keys import PartyKeys
from ledger.linkage.map_messages import FlagFiled, Registered
from ledger.linkage.messages import (
    AnswerMessage,
    FlagChangeMessage,
    LinkMessage,
    Message,
    QueryMessage,
    RecordMessage,
    UnlinkMessage,
    decode,
)
from ledger.linkage.moves import LastHolderMessage, MoveMessage
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.proxy_approvals import ProxyApproval
from ledger.linkage.proxy_registrations import ProxyRegistrationMessage
from ledger.linkage.record_contents import RecordOutcomeMessage, SealedRecordMessage, StampedRecordMessage
from ledger.linkage.sealing import Opened, seal
from ledger.linkage.staff_rosters import StaffRosterMessage
from ledger.linkage.transport import Transport
from ledger.linkage.tree_heads import Cosignature
from ledger.log.staff_roster import RosterState

__all__ = ["HubService", "Step"]

log = logging.getLogger("flagledger.hub")


Owed = list[tuple[str, bytes]]


class HubService(QueryRouting):
    def __init__(
        self,
        store: HubStore,
        transport: Transport,
        keys: PartyKeys,
        directory: Directory,
        now: Callable[[], datetime] = clock.now,
        rosters: Mapping[str, RosterState] | None = None,
        window: timedelta = WINDOW,
        heads: MapHeads | None = None,
        digests: DigestSchedule | None = None,
        person_ids: Callable[[str], str] | None = None,
        witnesses: Sequence[str] = (),
        open_workers: int | None = None,
    ) -> None:
        """``heads``: the flag map, its heads and routing proofs (issue #20, ledger.hub.heads); None: routing
        decisions the providers take on trust (docs/accountable-hub.md). ``open_workers``: processes that open
        and verify large polls (ledger.hub.openers; None: one per usable CPU, at most 4; 0: none)."""
        if transport.party != HUB or keys.signer.agency != HUB:
            raise InputError("the hub's loop runs on the hub's transport with the hub's keys", code=Code.CONFIGURATION)
        self.store = store
        self.transport = transport
        self.keys = keys
        self.directory = directory
        self.now = now
        # the consultation beyond delivery; rosters: each provider's staff keys, to check its four-eyes decisions
        self.consults = HubConsultations(
            store, self._seal, lambda: self.now(), {} if rosters is None else rosters, window
        )
        self.heads = heads
        self.digests = digests  # None: each message sent as decided; else one digest per inbox per tick
        # number → person id from the key store (ledger.hub.person_ids); None: from keys.secret
        self.person_ids = person_ids
        self.witnesses = tuple(witnesses)  # forwarded every agency's own tree head (ledger.hub.witness_relay)
        self.unrouted = 0  # queries answered not_routed since this process started (its metrics)
        # the sender's kind from the directory in use (a reloaded one included): a move only from a municipality,
        # a body request only from a protection body
        self.moves = HubMoves(store.engine, store.codes, self._seal, self._kind_of)  # handovers (ledger.hub.moves)
        self.bodies = HubBodyRequests(store.engine, store.codes, self._seal, self._kind_of)  # ledger.hub.body_requests
        self.openers = Openers(keys.sealing, open_workers)  # started at the first large poll, kept (close())

    def _kind_of(self, party: str) -> AgencyKind | None:
        return self.directory.kind_of(party)

    # -- the loop ------------------------------------------------------------------------------------------
    def lead(self) -> bool:
        """Whether this process leads (taking the lease if it is free)."""
        if self.store.sequencer.leader:
            return True
        try:
            self.store.sequencer.take_lease()
        except NotLeader:
            return False
        if self.heads is not None:
            self.heads.started = False  # another leader may have filed since: rebuild before handling
        return True

    def step(self, timeout_ms: int = 200, max_records: int = 100) -> Step:
        done = Step()
        if not self.lead():
            done.standby = True
            return done
        try:
            if self.heads is not None and not self.heads.started:
                self.heads.start(self.store)
            done.sent += self._send_owed()
            deliveries = self.transport.poll(timeout_ms, max_records)
            apply_poll(self, open_poll(self, deliveries), done)  # one transaction (ledger.hub.poll)
            self.consults.sweep()  # holders silent past the deadline: raised to the provider's staff
            self._settle_map()
            done.sent += self._send_owed()
        except NotLeader:
            self._rewind()
            self._forget_map()
            done.standby = True  # nothing committed: whoever leads now is handed these again
            return done
        except BaseException:
            self._rewind()  # e.g. the database went away mid-batch: the next step starts at this batch again
            self._forget_map()
            raise
        self.transport.commit()
        return done

    def close(self) -> None:
        """Stop the opening workers (the transport and the store are the caller's)."""
        self.openers.close()

    def _forget_map(self) -> None:
        # the flag map in memory may hold what the rolled-back poll registered: rebuilt from the database
        if self.heads is not None:
            self.heads.started = False

    def _rewind(self) -> None:
        # without it the next poll goes on after the failed batch, and its commit passes messages never applied
        with suppress(BrokerUnavailable):  # the Kafka transport owes itself the rewind before its next poll
            self.transport.rewind()

    def run(self, stop: threading.Event, standby_wait: float = 1.0, retry: float = 1.0) -> None:
        """Step until ``stop`` is set. A standby waits ``standby_wait`` seconds between tries for the lease; a
        database or broker failure is logged and retried after ``retry`` seconds, nothing committed past it."""
        while not stop.is_set():
            try:
                if self.digests is not None and self.digests.due():
                    self.tick()
                if self.step().standby:
                    stop.wait(standby_wait)
            except (StorageError, BrokerUnavailable) as exc:
                log.warning("the hub's loop will retry in %.1f s: %s", retry, exc)
                stop.wait(retry)

    def tick(self) -> int:
        """On a digest schedule, send every inbox its digest (the leader only); returns the digests sent."""
        if self.digests is None or not self.lead():
            return 0
        self.digests.ticked()
        return send_digests(self.store.engine, self.transport, self.keys, self.directory, self.digests.size)

    def _send_owed(self) -> int:
        if self.digests is not None:
            return 0  # held for the next tick's digests: nothing reaches an inbox off the schedule
        rows = owed(self.store.engine)
        for _, recipient, message in rows:
            self.transport.send(recipient, message)
        if rows:
            self.transport.flush()
            paid(self.store.engine, [i for i, _, _ in rows])
        return len(rows)

    # -- applying one message ------------------------------------------------------------------------------
    def _apply(self, opened: Opened) -> None:
        kind = opened.kind
        if opened.sender == PORTAL and kind not in ("registration", *FROM_PORTAL):
            # the portal maps card sign-ins to its codes; it sets no flag, files no record, asks no agency
            raise PermissionDenied(f"the portal sends the hub registrations only, not {kind!r}", code=Code.WRONG_AGENCY)
        if kind in FROM_PORTAL:  # its delivery keys to every agency, a wire key asked of a provider (issue 22)
            keys = self.directory.sender_keys(self.now())
            agencies = [a for a in self._agencies() if a not in self.witnesses]
            self._commit(opened, from_portal(opened, self.directory, agencies, keys, self._seal))
        elif kind == "registration":
            self._registration(opened)
        elif kind == FlagChangeMessage.kind:
            m = decode(FlagChangeMessage, opened.payload)
            also = self._mark(opened) if self.heads is None else self._filed(opened, m)
            person = self.store.codes.person(opened.sender, m.code)
            if m.action == "set" and person is not None:  # a new municipality taking over: its reporter told
                also = _and(also, *self.moves.flag_set(opened.sender, person, m.flag))
            self.store.log.flag(opened.sender, m.code, m.flag, m.action, m.change_id, also)  # type: ignore[arg-type]
        elif kind == BodyRequestMessage.kind:
            self._commit(opened, *self.bodies.request(opened.sender, decode(BodyRequestMessage, opened.payload)))
        elif kind == BodyOutcomeMessage.kind:
            self._commit(opened, self.bodies.outcome(opened.sender, decode(BodyOutcomeMessage, opened.payload)))
        elif kind in (MoveMessage.kind, LastHolderMessage.kind):  # a move; a last holder's warning to route
            try:
                self._commit(opened, *self.moves.take(opened.sender, kind, opened.payload))
            except PermissionDenied as exc:
                if exc.code == Code.NOT_RESIDENCE:  # told once (marked applied with it), then parked
                    self._commit(opened, self.moves.refused(opened.sender, opened.payload, exc.code))
                raise
        elif kind == LinkMessage.kind:
            link = decode(LinkMessage, opened.payload)
            # a municipality's act (番号の変更): any other kind is parked wrong_agency before the person is read
            self.moves.municipality(opened.sender, "a number link")
            # only the residence links, by the moves filed before it in the hub's sequence (parked not_residence)
            self.moves.may_link(opened.sender, links.persons(self.store.codes, opened.sender, link))
            link_numbers(self.store.codes, opened.sender, link.old_code, link.new_code)  # idempotent, as register
            self._commit(opened, [], links.made(self.store.codes, opened.sender, link))
            self._relinked(opened.sender, link.old_code, link.new_code)
        elif kind == UnlinkMessage.kind:  # only by the agency that made the link (ledger.hub.links)
            undo = decode(UnlinkMessage, opened.payload)
            self._commit(opened, [], links.unlink(self.store.engine, self.store.codes, opened.sender, undo))
            self._relinked(opened.sender, undo.old_code, undo.new_code)
        elif kind == ErasureMessage.kind:  # only the sender's own records, about a person it registered
            erase(self.store, opened.sender, decode(ErasureMessage, opened.payload), self._mark(opened))
        elif kind == ProxyApproval.kind:  # only from a holder protecting the person now (ledger.hub.proxy_approvals)
            approval = decode(ProxyApproval, opened.payload)  # with its four eyes checked against the roster
            approve(self.store, opened.sender, approval, self._mark(opened), self.consults.rosters)
        elif kind == ProxyRegistrationMessage.kind:  # from an agency that knows the person (proxy_registrations)
            message = decode(ProxyRegistrationMessage, opened.payload)  # a cancellation tells the registering agency
            register_proxy(self.store, opened.sender, message, self._mark(opened), self._seal)
        elif kind == SealedRecordMessage.kind:
            file_sealed(self.store, opened.sender, decode(SealedRecordMessage, opened.payload), self._mark(opened))
        elif kind == StampedRecordMessage.kind:  # hidden from the lower of its stamp and its arrival (hub_seq)
            file_sealed(self.store, opened.sender, decode(StampedRecordMessage, opened.payload), self._mark(opened))
        elif kind == RecordOutcomeMessage.kind:  # a later outcome: the record keeps its number and its position
            update_outcome(self.store, opened.sender, decode(RecordOutcomeMessage, opened.payload), self._mark(opened))
        elif kind == RecordMessage.kind:  # its text would sit readable in the hub's database: the insider's bound
            raise PermissionDenied(
                "the hub files provision records sealed to the portal only (sealed_record), not in the clear",
                code=Code.CLEAR_RECORD,
            )
        elif kind == QueryMessage.kind:
            query = decode(QueryMessage, opened.payload)
            try:
                self._query(opened, query)
            except (InputError, NotFoundError):
                with suppress(NotFoundError):  # no sealing key for the querier: parked only
                    # not left waiting; counted once committed (a poll rolled back is applied again)
                    answer_unrouted(self.store, self._seal, opened, query, self._unrouted)
                raise
        elif kind == AnswerMessage.kind:
            self._answer(opened, decode(AnswerMessage, opened.payload))
        elif kind == AdviceMessage.kind:
            self.consults.advice(opened, decode(AdviceMessage, opened.payload))
        elif kind == StaffAnswer.kind:
            self.consults.staff_answer(opened, decode(StaffAnswer, opened.payload))
        elif kind == Cosignature.kind and self.heads is not None and opened.sender in self.witnesses:
            # a witness's cosignature of a map head: kept as evidence, passed on with decisions and announcements
            cosig = decode(Cosignature, opened.payload)
            keep, kept = self.heads.cosign(opened.sender, cosig, self.directory.sender_keys(self.now()))
            self._commit(opened, [], keep)
            kept()
        elif kind in WITNESSING:  # relays, agencies' tree heads to the witnesses (issue #20)
            self._commit(opened, witnessing(opened, self.directory, self.witnesses, self._seal))
        elif kind == StaffRosterMessage.kind:  # the agency's staff keys, for the check above (ledger.hub.rosters)
            keep_roster(self.store, opened, decode(StaffRosterMessage, opened.payload))
        else:
            raise InputError(f"the hub takes no message of kind {kind!r}", code=Code.MALFORMED)

    def _unrouted(self) -> None:
        self.unrouted += 1

    def _relinked(self, sender: str, *codes: str) -> None:
        if self.heads is not None:  # the flag map's leaves of both numbers are folded again
            for code in codes:
                self.heads.relink.add(self.store.codes.person(sender, code) or "")
            self.heads.relink.discard("")

    def _mark(self, opened: Opened) -> Callable[[Connection, int], None]:
        return lambda conn, seq: mark_applied(conn, opened.sender, opened.event_id, seq)

    def _commit(
        self,
        opened: Opened,
        owes: Owed,
        write: Callable[[Connection, int], object] | None = None,
        done: Callable[[Connection], int | None] | None = None,
    ) -> int:
        """One sequenced transaction: ``write``, the messages owed and the applied id (fenced by the lease) —
        unless the message was applied before, by its id or as ``done`` finds it (nothing written, nothing owed);
        ``done`` only reads."""

        def apply(conn: Connection, seq: int) -> None:
            if write is not None:
                write(conn, seq)
            for recipient, message in owes:
                owe(conn, recipient, message)
            mark_applied(conn, opened.sender, opened.event_id, seq)

        def existing(conn: Connection) -> int | None:
            seq = applied_seq(conn, opened.sender, opened.event_id)
            return seq if seq is not None or done is None else done(conn)

        # nothing but the applied id and the outbox (both held for the poll's commit): no SAVEPOINT needed
        return self.store.sequencer.append(existing, apply, held=write is None)

    def _registration(self, opened: Opened) -> None:
        # register() is idempotent: a hub that dies before marking it applied binds the same again
        registration = Registration.sent_by(opened.sender, opened.payload)
        person = register(self.store.codes, self.person_ids or self.keys.secret, registration)
        # a municipality a protected person moved to, filing them: the handover it is owed (ledger.hub.moves)
        owes: Owed = []
        write: Write | None = None
        if opened.sender != PORTAL:
            owes, write = self.moves.registered(opened.sender, registration.code, person)
            waiting, deliver = self.bodies.registered(opened.sender, registration.code, person)
            owes = [*owes, *waiting]
            write = _and(write, [], deliver) if write is not None or deliver is not None else None
        if self.heads is None or opened.sender == PORTAL:
            self._commit(opened, owes, write)
            return
        # the map key is the VRF of the number, answered with its proof: the agency derives the key itself
        pi, key, keep = self.heads.registered(person, registration.number)
        owes = [self._seal(opened.sender, Registered(registration.code, pi.hex())), *owes]
        self._commit(opened, owes, _and(keep, [], write))
        self.heads.keys.setdefault(person, key)

    def _seal(self, recipient: str, message: Message) -> tuple[str, bytes]:
        key = self.directory.sealing_key(recipient)
        payload = message.encode()
        if recipient != PORTAL and recipient not in self.witnesses and self.directory.understands(recipient, HUB_SEQ):
            # an agency stamps the records it makes with the highest it has seen (ledger.linkage.hub_seq): in a
            # poll, the number handed out so far — the message is sent only if the poll commits. Only to an
            # agency whose entry says it understands it: an older release parks a message with the unknown field
            # (its records then come unstamped, filed at their arrival as before)
            payload = with_seq(payload, self.store.sequencer.current())
        # every message to an inbox is at least an answer's size: a consultation, a routed query and an
        # answer look alike on the broker
        sealed = seal(self.keys.signer, key, recipient, uuid.uuid4().hex, message.kind, payload, ANSWER_SIZE)
        return recipient, sealed

    # -- the flag map (issue #20, ledger.hub.heads) ----------------------------------------------------------
    def _agencies(self) -> list[str]:
        return sorted(p for p in self.directory.sealing if p not in (HUB, PORTAL))

    def _settle_map(self) -> None:
        if self.heads is not None:
            self.heads.settle(self.store, self._seal, self._agencies(), self.now())

    def _filed(self, opened: Opened, m: FlagChangeMessage) -> Callable[[Connection, int], None]:
        """Mark the change applied and owe its holder the number it was filed at, in one transaction."""

        def also(conn: Connection, seq: int) -> None:
            mark_applied(conn, opened.sender, opened.event_id, seq)
            owe(conn, *self._seal(opened.sender, FlagFiled(m.change_id, m.code, m.flag, m.action, seq)))

        return also


def _and(
    first: Callable[[Connection, int], object] | None,
    owes: Owed,
    then: Write | None,
) -> Callable[[Connection, int], None]:
    """``first``, then the messages ``owes`` written to the outbox, then ``then``: one write in the transaction
    that files the message."""

    def write(conn: Connection, seq: int) -> None:
        if first is not None:
            first(conn, seq)
        for recipient, message in owes:
            owe(conn, recipient, message)
        if then is not None:
            then(conn, seq)

    return write
