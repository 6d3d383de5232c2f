"""An agency's end of the linkage: it files people under its own code, sends its flag changes, provision records,
queries and answers to the hub, and reads its own inbox.

Nothing here needs a database: the agency's code is computed from the number at its counter under its own
secret, and every message is sealed to the hub. What comes back is opened, checked to be the hub's, and
returned as one of the hub's kinds — a routed query (as provider), an answer (as querier), a consultation (as
holder). A message seen before (by event id) is skipped; one that does not open or is not the hub's is counted
in :attr:`AgencyEnd.refused` and skipped. The seen ids are kept in memory here (a node keeps them durably).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ledger import clock
from ledger.errors import Code, FlagLedgerError, PermissionDenied
from ledger.linkage.body_requests import BodyOutcomeMessage, RoutedBodyRequest
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.checks import MapChecks
from ledger.linkage.codes import Registration, agency_code
from ledger.linkage.consultation import AdviceMessage, AdviceRelay, Escalation, StaffAnswer
from ledger.linkage.delivery_keys import DeliveryKeyNotice, WireKeyRequest
from ledger.linkage.digests import DIGEST_SIZE, expand, room, seal_digest
from ledger.linkage.directory import Directory
from ledger.linkage.hub_seq import split_seq
from ledger.linkage.keys import PartyKeys
from ledger.linkage.map_messages import MAP_KINDS
from ledger.linkage.messages import (
    AnswerMessage,
    Consultation,
    FlagChangeMessage,
    LinkMessage,
    Message,
    QueryMessage,
    RoutedQuery,
    decode,
)
from ledger.linkage.moves import (
    HandedOn,
    HandedOver,
    HandoverMessage,
    HandoverWithdrawn,
    LastHolderWarned,
    MoveRefused,
)
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.proxy_approvals import ProxyApproval
from ledger.linkage.proxy_registrations import ProxyCancelled, ProxyRegistrationMessage
from ledger.linkage.record_contents import RecordContents, SealedRecordMessage, StampedRecordMessage, seal_contents
from ledger.linkage.sealing import SenderKeys, seal, unseal
from ledger.linkage.staff_rosters import MAX_EVENTS, RosterEvent, StaffRosterMessage
from ledger.linkage.transport import Transport
from ledger.linkage.tree_heads import (
    Cosignature,
    RelayMessage,
    TreeHead,
    TreeHeadMessage,
    WitnessIncident,
    encode_tree_head,
    relayed,
)
from ledger.linkage.wire_keys import STATIC, WIRE_BUCKET, SubjectKey, WireErasure, erasures_of, seal_key
from ledger.log.keyed_hash import KeyedHash

__all__ = ["AgencyEnd", "Inbound", "open_from_hub", "resend_id"]

_INBOUND: dict[str, type[Message]] = {
    m.kind: m
    for m in (
        RoutedQuery,
        Consultation,
        AnswerMessage,
        AdviceRelay,
        Escalation,
        HandoverMessage,
        HandedOver,
        HandedOn,
        HandoverWithdrawn,
        LastHolderWarned,
        MoveRefused,  # a move this municipality reported, refused (not_residence): no handover under way
        RoutedBodyRequest,
        BodyOutcomeMessage,
        DeliveryKeyNotice,  # the portal's, signed by it: checked by the node (consumers.linkage_delivery)
        WireKeyRequest,
        ProxyCancelled,  # another agency holding the person cancelled this agency's proxy registration
    )
} | MAP_KINDS
# relayed from a witness (issue #20): its cosignature of this agency's head, or a fork or rollback it found
_FROM_WITNESS: dict[str, type[Message]] = {m.kind: m for m in (Cosignature, WitnessIncident)}


@dataclass(frozen=True)
class Inbound:
    """One message from the hub, opened: its event id and its content; ``hub_seq``: the hub's sequence number
    when it sealed it (``ledger.linkage.hub_seq``), None from an older hub or a witness."""

    event_id: str
    message: Message
    hub_seq: int | None = None


# a roster message's payload at most: inside ANSWER_SIZE's bucket with the framing, so three fit a default digest
# and a roster change looks like any other tick on the broker (a larger one would go alone, in a bigger bucket)
ROSTER_ROOM = ANSWER_SIZE - 300


class WireKeys(Protocol):
    """The sender's wire keys (``ledger.log.datakeys.DataKeys``: in its ``datakeys.sqlite``, wrapped by its KEK)."""

    def wire_key(self, subject: str, recipient: str) -> tuple[bytes, bytes, bool]: ...

    def wire_delivered(self, ref: bytes) -> None: ...

    def wire_key_of(self, ref: bytes, recipient: str) -> bytes | None: ...


def open_from_hub(keys: PartyKeys, message: bytes, sender_keys: SenderKeys) -> Inbound:
    """A message to this agency opened, checked to be the hub's and of a kind the hub sends an agency;
    a ledger error otherwise."""
    opened = unseal(keys.sealing, keys.name, message, sender_keys)
    if opened.sender not in (HUB, keys.name) and opened.kind in _FROM_WITNESS:  # relayed by the hub, signed
        return Inbound(opened.event_id, decode(_FROM_WITNESS[opened.kind], opened.payload))
    if opened.sender != HUB or opened.kind not in _INBOUND:
        raise PermissionDenied(
            f"an agency reads only the hub's messages, not {opened.kind!r} from {opened.sender}", code=Code.WRONG_ROUTE
        )
    payload, hub_seq = split_seq(opened.payload)  # signed with the rest: the hub's, checked above
    return Inbound(opened.event_id, decode(_INBOUND[opened.kind], payload), hub_seq)


def resend_id(secret: bytes | KeyedHash, kind: str, payload: bytes) -> str:
    """An event id that is the same whenever the same message is sent again: keyed by the agency's own secret
    (HMAC-SHA256, computed where the secret lives), so the broker, which sees the header's id, learns only that
    a message was sent twice, nothing of what."""
    keyed = KeyedHash.of(secret, minimum=16, what="agency secret")
    return keyed(b"linkage-event-id\0" + kind.encode() + b"\0" + payload).hex()[:32]


class AgencyEnd:
    def __init__(
        self,
        keys: PartyKeys,
        transport: Transport,
        directory: Directory,
        now: Callable[[], datetime] = clock.now,
        checks: MapChecks | None = None,
        resend_ids: bool = False,
        wires: WireKeys | None = None,
    ) -> None:
        """``checks``: the agency's checks of the hub's flag map (issue #20, ledger.linkage.checks); with them,
        no routed query is answered automatically on the hub's word alone. ``resend_ids``: each message's event
        id derived from what it says (:func:`resend_id`), so that the same message sent again — a node that
        died after the broker took it, before its database recorded it sent — is the same event, dropped by the
        hub as a replay (a node's bridge); else a fresh id each time. ``wires``: the records' contents travel
        under a per-person wire key for the portal (ledger.linkage.wire_keys), delivered once."""
        self.resend_ids = resend_ids
        self.wires = wires
        self.keys = keys
        self.name = keys.name
        self.transport = transport
        self.directory = directory
        self.now = now
        self.checks = checks
        self.filed: set[str] = set()
        self.seen: set[str] = set()
        self.refused: list[str] = []  # the codes of messages that did not open or were not the hub's
        # on a digest schedule (:meth:`schedule`): sealed messages waiting for the next tick, and the digest's size
        self.outgoing: list[bytes] | None = None
        self.digest_size = DIGEST_SIZE
        # the highest hub sequence number seen (ledger.linkage.hub_seq): each record is stamped with it; None
        # until the hub sends one (an older hub: records unstamped, filed at their arrival). A node keeps it durably
        self.hub_seq: int | None = None

    def code(self, number: str) -> str:
        return agency_code(self.keys.secret, self.name, number)

    def _send(self, kind: str, payload: bytes, at_least: int = 0, flush: bool = True) -> None:
        hub = self.directory.sealing_key(HUB)
        event_id = resend_id(self.keys.secret, kind, payload) if self.resend_ids else uuid.uuid4().hex
        sealed = seal(self.keys.signer, hub, HUB, event_id, kind, payload, at_least)
        if self.outgoing is not None:
            self.outgoing.append(sealed)  # sent inside the next tick's digest
            return
        self.transport.send(HUB, sealed)
        if flush:
            self.transport.flush()

    def send(self, message: Message, at_least: int = 0, flush: bool = True) -> None:
        """Send the hub one message already made (a node's bridge names people by its codes, not numbers).
        ``flush=False``: handed to the transport only; the caller flushes before it records anything sent."""
        self._send(message.kind, message.encode(), at_least, flush)

    def schedule(self, size: int = DIGEST_SIZE) -> None:
        """From now on send the hub one digest of ``size`` bytes per :meth:`tick` and nothing else, so the hub's
        topic shows every agency alike, whatever it does (docs/accountable-hub.md)."""
        room(size, self.keys.signer.key_id)  # a bucket, or ConfigurationError
        self.outgoing, self.digest_size = [] if self.outgoing is None else self.outgoing, size

    def tick(self) -> int:
        """On a digest schedule: one digest to the hub with what waits (oldest first, what fits), or with
        nothing; returns how many messages it carried."""
        if self.outgoing is None:
            return 0
        hub = self.directory.sealing_key(HUB)
        digest, taken = seal_digest(self.keys.signer, hub, HUB, self.outgoing, self.digest_size)
        self.transport.send(HUB, digest)
        self.transport.flush()
        del self.outgoing[:taken]
        return taken

    def file_person(self, number: str) -> str:
        """Register the person at the hub under this agency's code (once); returns the code."""
        code = self.code(number)
        if code not in self.filed:
            if self.checks is not None:
                self.checks.registering(code, number)
            self._send("registration", Registration(self.name, code, number).encode())
            self.filed.add(code)
        return code

    def flag(self, number: str, flag: str, action: str) -> str:
        """Tell the hub this agency sets or releases ``flag`` on the person; returns the change id."""
        m = FlagChangeMessage(uuid.uuid4().hex, self.file_person(number), flag, action)
        if self.checks is not None:
            self.checks.flag_sent(m)
        self._send(m.kind, m.encode())
        return m.change_id

    def approve_proxy(self, number: str, proxy_number: str, action: str = "approve") -> str:
        """Tell the hub this holder approves (or revokes) the proxy for the person; returns the approval id. The
        four eyes are the holder's, before this is sent (docs/linkage.md: not yet wired to the node's log)."""
        m = ProxyApproval(uuid.uuid4().hex, self.file_person(number), self.file_person(proxy_number), action)
        self._send(m.kind, m.encode(), ANSWER_SIZE)  # on the broker it looks like an answer
        return m.approval_id

    def register_proxy(self, number: str, proxy_number: str, action: str = "register") -> str:
        """Tell the hub this agency registers (or cancels) the proxy for the person; returns the message's id (a
        node's bridge sends its log's registrations: ``consumers.linkage_proxy_registrations``)."""
        code, proxy_code = self.file_person(number), self.file_person(proxy_number)
        m = ProxyRegistrationMessage(uuid.uuid4().hex, code, proxy_code, action)
        self._send(m.kind, m.encode(), ANSWER_SIZE)  # on the broker it looks like an answer
        return m.registration_id

    def link(self, old_number: str, new_number: str) -> None:
        """Tell the hub the person's number changed (both filed first): one person from now on."""
        m = LinkMessage(self.file_person(old_number), self.file_person(new_number))
        self._send(m.kind, m.encode())

    def record(
        self, number: str, querier: str, procedure: str, legal_item: int, info_kind: str, outcome: str, made_at: str
    ) -> str:
        """Send the hub a provision record of this agency (as provider), its contents sealed to the portal: the
        hub files it and cannot read it (docs/accountable-hub.md, the bounded hub insider); returns its id."""
        code = self.file_person(number)
        wire_key, delivery = self.wire_for(code)
        if delivery is not None and wire_key is not None:
            self.send(delivery)  # before the record: the hub relays it to the portal ahead of the page
            self.delivered(wire_key[0])
        m = self.sealed_record(
            code, uuid.uuid4().hex, querier, procedure, legal_item, info_kind, outcome, made_at, wire_key, self.hub_seq
        )
        self._send(m.kind, m.encode())
        return m.record_id

    def wire_for(self, subject: str) -> tuple[tuple[bytes, bytes] | None, RelayMessage | None]:
        """The person's wire key for the portal (ref, key) and, until it was delivered, its ``subject_key`` sealed
        to the portal for the hub to relay; (None, None) without wire keys."""
        if self.wires is None:
            return None, None
        ref, key, delivered = self.wires.wire_key(subject, PORTAL)
        if delivered:
            return (ref, key), None
        published = self.directory.delivery_key(PORTAL)
        key_id, to = published if published is not None else (STATIC, self.directory.sealing_key(PORTAL))
        message = SubjectKey(ref.hex(), key_id, seal_key(to, ref, key))
        return (ref, key), self._to_portal(message)

    def delivered(self, ref: bytes) -> None:
        if self.wires is not None:
            self.wires.wire_delivered(ref)

    def resend(self, ref: bytes) -> RelayMessage | None:
        """The wire key ``ref`` names sent again to the portal (``subject_key``, sealed to the newest delivery
        key this end holds), if this agency still holds it for the portal; None otherwise — an erased person's
        keys are destroyed with their data keys, and stay gone."""
        if self.wires is None:
            return None
        key = self.wires.wire_key_of(ref, PORTAL)
        if key is None:
            return None
        published = self.directory.delivery_key(PORTAL)
        key_id, to = published if published is not None else (STATIC, self.directory.sealing_key(PORTAL))
        message = SubjectKey(ref.hex(), key_id, seal_key(to, ref, key))
        return self._to_portal(message)

    def wire_erasure(self, erasure_id: str, refs: list[str]) -> RelayMessage:
        """The refs of the portal's wire keys this agency destroyed (``REFS_PER_MESSAGE`` at most: more are
        ``wire_erasures``), sealed to the portal for the hub to relay."""
        return self._to_portal(WireErasure(erasure_id, " ".join(refs)))

    def wire_erasures(self, erasure_id: str, refs: list[str]) -> list[RelayMessage]:
        """As many ``wire_erasure`` messages as ``refs`` need, each of one size (``erasures_of``)."""
        return [self._to_portal(m) for m in erasures_of(erasure_id, refs)]

    def _to_portal(self, message: Message) -> RelayMessage:
        """A key or erasure message sealed to the portal in ``WIRE_BUCKET``: every one the same size on the hub's
        topic and the portal's inbox, so its size does not tell the broker operator which it is (docs/erasure.md)."""
        return relayed(self.keys.signer, self.directory.sealing_key(PORTAL), PORTAL, message, WIRE_BUCKET)

    record_sealed = record  # the name it had while the hub also took records in the clear

    def sealed_record(
        self,
        code: str,
        record_id: str,
        querier: str,
        procedure: str,
        legal_item: int,
        info_kind: str,
        outcome: str,
        made_at: str,
        wire_key: tuple[bytes, bytes] | None = None,
        stamp: int | None = None,
    ) -> SealedRecordMessage:
        """The ``sealed_record`` for a person this agency knows by ``code`` (a node's bridge names people by its
        codes), its contents sealed to the portal under this agency's signature (under ``wire_key`` first);
        ``stamp``: the highest hub sequence number this agency had seen when it made the record, as a
        ``stamped_record`` (None: none seen, filed at its arrival)."""
        contents = RecordContents(querier, procedure, legal_item, info_kind, outcome, made_at)
        sealed = seal_contents(self.keys.signer, self.directory.sealing_key(PORTAL), record_id, contents, wire_key)
        if stamp is not None:
            return StampedRecordMessage(record_id, code, sealed, stamp)
        return SealedRecordMessage(record_id, code, sealed)

    def query(self, number: str, provider: str, procedure: str, legal_item: int, info_kind: str) -> str:
        """Ask ``provider`` through the hub about the person; returns this agency's request id."""
        m = QueryMessage(uuid.uuid4().hex, self.file_person(number), provider, procedure, legal_item, info_kind)
        self._send(m.kind, m.encode())
        return m.request_id

    def answer(self, request_id: str, status: str, data: str = "") -> None:
        """Answer a routed query (the hub's request id); every answer is sealed at the answer size."""
        m = AnswerMessage(request_id, status, data)
        self._send(m.kind, m.encode(), ANSWER_SIZE)

    def advise(self, request_id: str, advice: str) -> None:
        """As holder: this agency's advice on a consultation (the provider's request id), sealed to the hub."""
        m = AdviceMessage(request_id, advice)
        self._send(m.kind, m.encode())

    def answer_decided(self, answer: StaffAnswer) -> None:
        """As provider: an answer its staff decided with four eyes (``StaffDesk.decide``), at the answer size."""
        self._send(answer.kind, answer.encode(), ANSWER_SIZE)

    def send_roster(self, events: list[RosterEvent], position: int = 0) -> None:
        """Send the hub this agency's staff roster events from ``position`` on, in batches (the hub checks its
        staff's four-eyes decisions against them: ledger.linkage.staff_rosters)."""
        at = 0
        while at < len(events):
            n = 1  # as many events as keep the message in an answer's bucket, so it travels inside a digest
            while (
                at + n < len(events)
                and n < MAX_EVENTS
                and len(StaffRosterMessage.of(position + at, events[at : at + n + 1]).encode()) <= ROSTER_ROOM
            ):
                n += 1
            m = StaffRosterMessage.of(position + at, events[at : at + n])
            self._send(m.kind, m.encode())
            at += n

    def relay(self, to: str, message: Message) -> None:
        """Send ``message`` sealed to ``to`` (a witness), through the hub, which forwards it unopened."""
        self.send(relayed(self.keys.signer, self.directory.sealing_key(to), to, message))

    def publish_head(
        self, head: TreeHead, prev_size: int = 0, consistency: tuple[bytes, ...] = (), witnesses: tuple[str, ...] = ()
    ) -> None:
        """Show this agency's own signed tree head (a checkpoint) to the hub, with its consistency proof (the
        hub forwards both to the witnesses), and the head alone to each witness, small enough for a digest: a
        log shown one way to the hub and another to a witness is caught (ledger.witness)."""
        m = TreeHeadMessage(encode_tree_head(head).hex(), prev_size, b"".join(consistency).hex())
        self.send(m)
        for witness in witnesses:
            self.relay(witness, TreeHeadMessage(m.head, 0, ""))

    def read_inbox(self, timeout_ms: int = 200, max_records: int = 100) -> list[Inbound]:
        """The hub's new messages to this agency, opened; the inbox is committed past them."""
        got: list[Inbound] = []
        keys = self.directory.sender_keys(self.now())
        for delivery in self.transport.poll(timeout_ms, max_records):
            try:
                carried = expand(self.keys, delivery.value, keys)  # a digest's messages, or the message alone
            except FlagLedgerError as exc:
                self.refused.append(exc.code)
                continue
            for value in carried:
                try:
                    inbound = open_from_hub(self.keys, value, keys)
                    if inbound.event_id in self.seen:
                        continue  # the hub sent it again (its outbox, after an outage): applied once
                    self.seen.add(inbound.event_id)
                    if inbound.hub_seq is not None:
                        self.hub_seq = max(self.hub_seq or 0, inbound.hub_seq)
                    if self.checks is not None:
                        checked = self.checks.take(inbound.message)
                        if checked is None:
                            continue  # the flag map's own message, checked
                        inbound = Inbound(inbound.event_id, checked)
                    got.append(inbound)
                except FlagLedgerError as exc:
                    self.refused.append(exc.code)
        self.transport.commit()
        return got
