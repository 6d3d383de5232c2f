"""An agency's checks of the hub's flag map, run on everything the hub sends it (issue #20).

:class:`MapChecks` sits in :class:`ledger.linkage.agency.AgencyEnd` and keeps, per agency:

* **map keys beside codes**: at registration the hub answers with its VRF proof for the number; the agency
  checks it against the number it sent (kept in memory only until then) — or, at an agency node, which keeps
  no number, against the keyed check it kept when the number was typed (``registrations``,
  :func:`~ledger.linkage.person_keys.person_key_check`) — and keeps what it derives itself, as its own held
  value (``held_key``: agency-specific, never the key, which is one value at every agency). A proof that does
  not check is the incident ``bad_person_key`` and the key is not kept;
* **its flags as filed**: each flag change is acknowledged with the hub sequence it was filed at; from the next
  head on, the holder expects the hub's map to show it;
* **what it saw of the hub's heads**: a :class:`~ledger.linkage.witness.Witness` (each announced head with the
  log's consistency proof: forks, rollbacks) and a :class:`~ledger.linkage.routing.Freshness` (no decision under
  a head older than the newest seen), both in memory.

Under every head it sees, a holder runs ``check_own_flags`` for each code it holds a flag under; a provider runs
``verify_routing`` on each routed query before answering automatically, and answers by staff — never
automatically — when the proof is missing or bad, the head is older than ``max_age`` by the agency's clock (a hub
that stopped signing heads, or an old decision replayed), or the hub lied. What the hub signed that shows it
lied becomes a :class:`HubIncident` (with the evidence's bytes' digest) for the node to record; a refusal that
proves nothing against the hub is kept in :attr:`MapChecks.refusals` by its code.

With ``witnesses`` named (the agency's own list, keys from its own directory), a provider answers automatically
only under a head it was itself announced (so it checked the head's place in the chain) and that at least
``quorum`` of them cosigned (default 1); otherwise by staff (refusal ``head_uncosigned``). A holder expects each
flag change it sends to be acknowledged and shown under a head — cosigned, with witnesses — within
``deadline``; past it, a ``change_unseen`` incident (the hub's silence: nothing signed to show).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ledger import clock
from ledger.errors import Code, FlagLedgerError, HubMisbehaviour, IntegrityError
from ledger.linkage.cosigned_heads import count_cosigned, decode_cosigs
from ledger.linkage.hub_wire import decode_head, decode_routing, evidence_digest
from ledger.linkage.map_heads import AUTO, STAFF, MapHead
from ledger.linkage.map_messages import (
    MAX_HOLDINGS,
    FlagFiled,
    MapHeadMessage,
    ProvenQuery,
    Registered,
    decode_holdings,
    hashes_from_hex,
)
from ledger.linkage.messages import FlagChangeMessage, Message, RoutedQuery
from ledger.linkage.person_keys import check_person_key, held_key, verify_person_key
from ledger.linkage.routing import Freshness, check_own_flags, verify_routing
from ledger.linkage.sealing import SenderKeys
from ledger.linkage.witness import Evidence, Witness

__all__ = ["HubIncident", "Kept", "MapChecks", "MapKeep"]

_RECENT = 1024  # heads whose cosigned state and shown codes are kept in memory


@dataclass(frozen=True)
class HubIncident:
    """The hub caught lying: ``code`` (``hub_fork``, ``hub_rollback``, ``flag_ignored``, ``flag_dropped``,
    ``head_skipped``; ``change_unseen`` and ``head_uncosigned`` with no evidence: the hub's silence;
    ``bad_person_key`` with none a third party could check without the number; its
    incident kind is ``ledger.domain.incidents.incident_kind(code)``), the evidence and its digest (what an
    incident records as its message), and the routed request it concerned, if any."""

    code: str
    note: str
    evidence: Evidence | None
    digest: str
    request_id: str = ""


@dataclass
class Kept:
    """What a :class:`MapKeep` gives back at start: every head kept, in sequence order, and the rest."""

    keys: dict[str, bytes] = field(default_factory=dict)
    heads: list[MapHead] = field(default_factory=list)
    held: dict[str, tuple[set[str], int]] = field(default_factory=dict)  # code → flags, filed at
    unfiled: list[FlagChangeMessage] = field(default_factory=list)
    incidents: list[HubIncident] = field(default_factory=list)
    unseen: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # code → (filed at, deadline)


class MapKeep(Protocol):
    """Where an agency keeps its checks' state across restarts (``ledger.runtime.map_keep.SqlMapKeep``): no
    number is ever handed to it — a registration not yet answered is registered again after a restart."""

    def load(self) -> Kept: ...

    def key(self, code: str, key: bytes) -> None: ...

    def head(self, head: MapHead) -> None: ...

    def held(self, code: str, flags: frozenset[str], filed_at: int) -> None: ...

    def unfiled(self, change: FlagChangeMessage, filed: bool) -> None: ...

    def incident(self, incident: HubIncident) -> None: ...

    def unseen(self, code: str, due: tuple[int, datetime] | None) -> None: ...


@dataclass
class MapChecks:
    name: str
    hub_key: Ed25519PublicKey  # the hub's Ed25519 key: heads and decisions
    vrf_key: RSAPublicKey  # the hub's VRF key: map keys
    max_age: timedelta = timedelta(seconds=60)
    now: Callable[[], datetime] = clock.now  # aware, as the hub's head times are
    keys: dict[str, bytes] = field(default_factory=dict)  # code → held_key(agency, map key): never the key
    held: dict[str, set[str]] = field(default_factory=dict)  # code → flags the hub acknowledged filing
    filed_at: dict[str, int] = field(default_factory=dict)  # code → sequence of its last acknowledged change
    unfiled: dict[str, FlagChangeMessage] = field(default_factory=dict)  # change id → sent, not yet acknowledged
    freshness: Freshness = field(default_factory=Freshness)
    witness: Witness = field(init=False)
    incidents: list[HubIncident] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    checked: int = 0  # holder checks passed (one per code and head)
    keep: MapKeep | None = None
    witnesses: tuple[str, ...] = ()  # the witnesses this agency names; their keys from its own directory
    witness_keys: SenderKeys | None = None
    quorum: int | None = None  # cosignatures a head needs before an automatic answer (None: 1 with witnesses)
    deadline: timedelta = timedelta(minutes=5)  # a change sent must be shown in a (cosigned) head within it
    cosigned: set[int] = field(default_factory=set)  # sequences of heads with a quorum of cosignatures
    sent_at: dict[str, datetime] = field(default_factory=dict)  # change id → when sent (or seen at a restart)
    unseen: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # code → (filed at, deadline)
    shown: dict[int, set[str]] = field(default_factory=dict)  # head sequence → codes whose flags checked under it
    witnessed_at: datetime | None = None  # when a head was last learned cosigned (or the first head seen)
    _numbers: dict[str, str] = field(default_factory=dict, repr=False)  # code → number until the hub answers
    # an agency node, which keeps no number: the check kept when the number was typed (person_key_check), and
    # the keyed hash it was made with (the agency's code secret)
    registrations: Callable[[str], bytes | None] | None = None
    mac: Callable[[bytes], bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.witness = Witness(self.hub_key)
        if self.keep is not None:
            self._restore(self.keep.load())

    def _restore(self, kept: Kept) -> None:
        """The state kept before a restart; the heads were checked when first seen and are taken as they are."""
        self.keys.update(kept.keys)
        for code, (flags, filed_at) in kept.held.items():
            self.held[code], self.filed_at[code] = set(flags), filed_at
        self.unfiled.update({c.change_id: c for c in kept.unfiled})
        self.sent_at.update({c.change_id: self.now() for c in kept.unfiled})  # the deadline runs again
        self.incidents.extend(kept.incidents)
        self.unseen.update(kept.unseen)  # acknowledged, not yet shown: the deadline set before the restart
        for head in kept.heads:
            self.witness.restore(head)
            self.freshness.seen.setdefault(head.seq, head)
        if kept.heads:
            self.witness.latest = self.freshness.newest = max(kept.heads, key=lambda h: h.seq)

    # -- what the agency sends ---------------------------------------------------------------------------
    def registering(self, code: str, number: str) -> None:
        if code not in self.keys:
            self._numbers[code] = number

    @property
    def needed(self) -> int:
        """Cosignatures a head needs before a provider answers automatically under it."""
        if self.quorum is not None:
            return self.quorum
        return 1 if self.witnesses else 0

    def flag_sent(self, change: FlagChangeMessage) -> None:
        self.unfiled[change.change_id] = change
        self.sent_at.setdefault(change.change_id, self.now())
        if self.keep is not None:
            self.keep.unfiled(change, filed=False)

    # -- what the hub sends ------------------------------------------------------------------------------
    def take(self, message: Message) -> Message | None:
        """Check one message from the hub: None if it was the map's own (consumed here), else the message to
        act on — a proven query as a plain routed query, answered ``staff`` unless every check passed."""
        self.overdue()
        try:
            if isinstance(message, Registered):
                self._registered(message)
            elif isinstance(message, FlagFiled):
                self._filed(message)
            elif isinstance(message, MapHeadMessage):
                self._head(message)
            elif isinstance(message, ProvenQuery):
                return message.plain(self._route(message))
            elif isinstance(message, RoutedQuery):
                return self._unproven(message)
            else:
                return message
        except FlagLedgerError as exc:
            self._raise(exc)
            if isinstance(message, RoutedQuery):
                return RoutedQuery(*_fields(message), STAFF)
        return None

    def overdue(self) -> list[HubIncident]:
        """Raise ``change_unseen`` for each change sent that the hub has not acknowledged, or not shown under a
        head (cosigned, with witnesses), within ``deadline``; each once. Returns the incidents raised."""
        now, raised = self.now(), []
        for change_id, at in sorted(self.sent_at.items()):
            if change_id in self.unfiled and now - at > self.deadline:
                del self.sent_at[change_id]
                change = self.unfiled[change_id]
                raised.append(self._silence(f"flag change {change_id} ({change.flag} {change.action}) "
                                            f"not acknowledged by the hub within {self.deadline}"))  # fmt: skip
        for code, (filed_at, due) in sorted(self.unseen.items()):
            if now > due:
                self._unseen(code, None)
                which = "cosigned head" if self.needed else "head"
                note = f"the flags filed at hub sequence {filed_at} are shown under no {which} within {self.deadline}"
                raised.append(self._silence(note))
        since = self.witnessed_at
        if self.needed and since is not None and now - since > self.deadline:
            self.witnessed_at = now  # raised once per deadline of silence
            note = f"no head announced here was cosigned by {self.needed} witness(es) since {since.isoformat()}"
            raised.append(self._silence(note, Code.HEAD_UNCOSIGNED))
        return raised

    def _silence(self, note: str, code: str = Code.CHANGE_UNSEEN) -> HubIncident:
        digest = hashlib.sha256(f"{code}\x00{self.name}\x00{note}".encode()).hexdigest()
        incident = HubIncident(code, note, None, digest)
        self.incidents.append(incident)
        if self.keep is not None:
            self.keep.incident(incident)
        return incident

    def _seen_under(self, seq: int) -> None:
        """Head ``seq`` is witnessed (or no witnesses are needed): the codes shown under it are seen."""
        for code in self.shown.get(seq, set()):
            filed_at, _ = self.unseen.get(code, (seq, None))
            if filed_at < seq:
                self._unseen(code, None)
        for old in [s for s in self.shown if s <= seq]:
            del self.shown[old]

    def _unseen(self, code: str, due: tuple[int, datetime] | None) -> None:
        """Set (or, with None, end) ``code``'s deadline to be shown, here and in the keep."""
        if due is None:
            if self.unseen.pop(code, None) is None:
                return
        else:
            self.unseen[code] = due
        if self.keep is not None:
            self.keep.unseen(code, due)

    def _raise(self, exc: FlagLedgerError, request_id: str = "") -> None:
        evidence = exc.evidence if isinstance(exc, HubMisbehaviour) else None
        if isinstance(evidence, Evidence):
            incident = HubIncident(exc.code, str(exc), evidence, evidence_digest(evidence), request_id)
            self.incidents.append(incident)
            if self.keep is not None:
                self.keep.incident(incident)
        else:
            self.refusals.append(exc.code)

    def gossip(self, head: MapHead, consistency: tuple[bytes, ...] | None = None) -> HubIncident | None:
        """Compare a head another witness was shown (a peer agency, a prefecture node) with the heads seen here:
        a split view — one story per audience — is found as two signed heads for one sequence, or, with the
        hub's consistency proof between the two, two logs that are not one. Returns the incident raised."""
        try:
            found = self.witness.cross_check(head.verify(self.hub_key), consistency)
        except FlagLedgerError as exc:
            self._raise(exc)
            return None
        if found is None:
            return None
        self._raise(HubMisbehaviour(found.note, code=found.code, evidence=found))
        return self.incidents[-1]

    def _registered(self, m: Registered) -> None:
        """The map key kept only once the hub's VRF proof checks against the number registered — in hand (an
        agency's end) or as the check kept when it was typed (``registrations``: a node, which keeps no number).
        Threat: a malicious or compromised hub bending the key (another number's proof, a bent one, another key
        pair's) so this agency checks a leaf the hub chose. Failing: ``bad_person_key`` raised (no evidence a
        third party could check without the number), no key kept: the person's queries go to staff."""
        number = self._numbers.pop(m.code, None)
        if number is None and m.code in self.keys:
            return  # the answer to a registration sent again
        try:
            pi = bytes.fromhex(m.proof)
            if number is not None:
                key = verify_person_key(self.vrf_key, number, pi)
            else:
                kept = None if self.registrations is None else self.registrations(m.code)
                if kept is None or self.mac is None:
                    raise IntegrityError(
                        "the hub answered a registration this agency did not send, or sent before it kept a "
                        "check of the hub's VRF proof",
                        code=Code.BAD_PROOF,
                    )
                key = check_person_key(self.vrf_key, self.mac, self.name, kept, pi)
        except IntegrityError as exc:
            if exc.code == Code.BAD_PROOF and number is None:
                raise  # nothing to check it against: refused, the key not kept, no claim against the hub
            note = f"the hub's answer to the registration of {m.code}: {exc}; its map key is not relied on"
            self._silence(note, Code.BAD_PERSON_KEY)
            return
        self.keep_key(m.code, key)

    def keep_key(self, code: str, person_key: bytes) -> None:
        """Keep the person's map key as this agency's own held value (in memory and in the keep): the key itself
        stays in no table and no attribute, so an insider's copy of this agency's data holds no national join
        key."""
        self.keys[code] = held_key(self.name, person_key)
        if self.keep is not None:
            self.keep.key(code, self.keys[code])

    def _named_key(self, code: str, named: bytes) -> bytes:
        """The key a hub message names for ``code``, once it hashes to the value held here; ``bad_proof`` if not."""
        if len(named) != 32 or held_key(self.name, named) != self.keys.get(code):
            raise IntegrityError("the hub names another map key than the one registered here", code=Code.BAD_PROOF)
        return named

    def _filed(self, m: FlagFiled) -> None:
        sent = self.unfiled.pop(m.change_id, None)
        if sent is None or (sent.code, sent.flag, sent.action) != (m.code, m.flag, m.action):
            if sent is not None:
                self.unfiled[m.change_id] = sent
            raise IntegrityError("the hub acknowledged a flag change this agency did not send", code=Code.BAD_PROOF)
        flags = self.held.setdefault(m.code, set())
        (flags.add if m.action == "set" else flags.discard)(m.flag)
        self.filed_at[m.code] = max(self.filed_at.get(m.code, 0), m.seq)
        self.sent_at.pop(m.change_id, None)
        self._unseen(m.code, (self.filed_at[m.code], self.now() + self.deadline))
        if self.keep is not None:
            self.keep.held(m.code, frozenset(flags), self.filed_at[m.code])
            self.keep.unfiled(sent, filed=True)

    def _see(self, head: MapHead, consistency: tuple[bytes, ...] = ()) -> None:
        found = self.witness.observe(head, consistency)
        if found is not None:
            raise HubMisbehaviour(found.note, code=found.code, evidence=found)
        self.freshness.see(head, self.hub_key)
        if self.keep is not None:
            self.keep.head(head)

    def _head(self, m: MapHeadMessage) -> None:
        head = decode_head(bytes.fromhex(m.head)).verify(self.hub_key)
        self._see(head, hashes_from_hex(m.consistency))
        before = self.witness.by_index.get(head.index - 1)
        if self.witnessed_at is None:
            self.witnessed_at = self.now()
        if before is not None and self._count(before, m.cosigned) >= max(self.needed, 1):
            self.witnessed_at = self.now()
            self.cosigned.add(before.seq)
            if len(self.cosigned) > _RECENT:  # the recent ones only: the state stays bounded
                self.cosigned.discard(min(self.cosigned))
            self._seen_under(before.seq)
        proofs = {code: (person, holding) for code, person, holding in decode_holdings(m.holdings)}
        pending = {c.code for c in self.unfiled.values()}
        for code, flags in sorted(self.held.items()):
            if (not flags or code not in self.keys) and code not in pending and self.filed_at.get(code, 0) < head.seq:
                self.shown.setdefault(head.seq, set()).add(code)  # released to nothing: no leaf to show
            if not flags or code in pending or self.filed_at.get(code, 0) >= head.seq or code not in self.keys:
                continue  # nothing to expect yet: the change is not filed, or filed after this head
            if code not in proofs:
                if len(proofs) < MAX_HOLDINGS:  # not a full window: the hub shows no leaf for the flag at all
                    # nothing signed to show, so no evidence: refused, and the flag counts as not shown
                    self.refusals.append(Code.FLAG_DROPPED)
                continue
            try:
                person_key = self._named_key(code, proofs[code][0].key)
                check_own_flags(
                    head, *proofs[code], self.hub_key, holder=self.name, code=code, person_key=person_key,
                    expected=frozenset(flags),
                )  # fmt: skip
            except FlagLedgerError as exc:
                self._raise(exc)
            else:
                self.checked += 1
                self.shown.setdefault(head.seq, set()).add(code)
        if self.needed == 0:
            self._seen_under(head.seq)  # no witnesses: shown is enough
        for stale in sorted(self.shown)[:-_RECENT]:  # heads never learned cosigned: their deadline tells
            del self.shown[stale]

    def _route(self, m: ProvenQuery) -> str:
        """``auto`` only if the hub's decision checks and says so, under a head no older than ``max_age``."""
        key = self.keys.get(m.code)
        if key is None:
            raise IntegrityError("a routed query about a person with no map key here", code=Code.BAD_PROOF)
        decision, head, proof = decode_routing(bytes.fromhex(m.routing))
        if decision.request != m.request_id or decision.action != m.answer:
            raise IntegrityError("the routing decision is for another request", code=Code.BAD_PROOF)
        found = self.witness.cross_check(head)
        if found is not None:
            raise HubMisbehaviour(found.note, code=found.code, evidence=found)
        named = self._named_key(m.code, decision.person_key)  # the key registered here, by its held value
        try:
            verify_routing(
                decision, head, proof, self.hub_key, provider=self.name, person_key=named, freshness=self.freshness
            )
        except HubMisbehaviour as exc:
            self._raise(exc, m.request_id)
            return STAFF
        if decision.action == AUTO and self._too_old(head):
            raise IntegrityError(f"map head {head.seq} is older than {self.max_age}", code=Code.STALE_MAP)
        if decision.action == AUTO and self.witness.by_seq.get(head.seq) != head:
            # not announced here: its place in the chain unchecked by this provider
            raise IntegrityError(f"map head {head.seq} was not announced to {self.name}", code=Code.STALE_MAP)
        if decision.action == AUTO and self._count(head, m.cosigned) < self.needed:
            raise IntegrityError(
                f"map head {head.seq} has fewer than {self.needed} witnesses' cosignatures", code=Code.HEAD_UNCOSIGNED
            )
        return decision.action

    def _count(self, head: MapHead, cosigs: str) -> int:
        if self.witness_keys is None or not cosigs:
            return 0
        try:
            return count_cosigned(head, decode_cosigs(cosigs), self.witnesses, self.witness_keys)
        except FlagLedgerError:
            return 0

    def _too_old(self, head: MapHead) -> bool:
        try:
            return self.now() - datetime.fromisoformat(head.time) > self.max_age
        except (ValueError, TypeError):
            return True  # a time that does not read (or compare) is no proof of freshness

    def _unproven(self, m: RoutedQuery) -> RoutedQuery:
        if m.answer == AUTO and m.code:
            self.refusals.append(Code.BAD_PROOF)  # no proof: nothing automatic on the hub's word alone
            return RoutedQuery(*_fields(m), STAFF)
        return m


def _fields(m: RoutedQuery) -> tuple[str, str, str, str, int, str]:
    return m.request_id, m.querier, m.code, m.procedure, m.legal_item, m.info_kind
