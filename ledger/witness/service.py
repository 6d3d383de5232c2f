"""The witness's loop: one :meth:`WitnessService.step` reads the witness's inbox and answers what it finds.

The witness is a party of the linkage with its own inbox and keys; routes are a star, so everything it sends
goes through the hub — to the hub itself, or as a ``relay`` the hub forwards unopened. It reads:

* from the hub: ``map_head`` (the hub announces every head to every party it knows) — answered, when it is the
  next link of the chain held here and consistent with it, with a ``cosignature`` to the hub, which keeps it and
  passes it on to providers and holders (heads cosigned before use); and ``tree_head`` (what an agency showed
  the hub, forwarded with the agency's signature inside);
* relayed from an agency: ``tree_head`` (what the agency shows this witness) — answered with a ``cosignature``;
* relayed from a peer witness: ``gossip`` (its view) — cross-checked and answered with a ``cosignature`` of the
  hub head it holds, when it is consistent; ``cosignature`` (kept in :attr:`WitnessService.cosigned`);
  ``witness_incident`` (kept among its findings once the evidence checks with the accused's keys).

A fork or rollback becomes a :class:`~ledger.witness.book.Finding`, kept, and a signed ``witness_incident``
owed to the accused (the hub directly, an agency relayed) and to every peer; the hub's, also to every agency
whose heads this witness holds. A message applied before (by
sender and event id) is dropped; one that does not open or proves nothing is counted in ``refused``. The
inbox is committed after the database commit, as in the hub's loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import clock
from ledger.errors import Code, FlagLedgerError, IntegrityError, PermissionDenied, StorageError
from ledger.linkage.digests import expand
from ledger.linkage.directory import Directory
from ledger.linkage.hub_seq import split_seq
from ledger.linkage.hub_wire import decode_head
from ledger.linkage.keys import PartyKeys
from ledger.linkage.map_messages import MapHeadMessage, hashes_from_hex
from ledger.linkage.messages import Message, decode
from ledger.linkage.names import HUB
from ledger.linkage.sealing import Opened, SenderKeys, seal, unseal
from ledger.linkage.transport import Transport
from ledger.linkage.tree_heads import (
    MAX_GOSSIP,
    Cosignature,
    GossipMessage,
    TreeHeadMessage,
    WitnessIncident,
    relayed,
)
from ledger.witness.book import Finding, WitnessBook, check_finding
from ledger.witness.store import WitnessStore

__all__ = ["WitnessService", "WitnessStep"]


@dataclass
class WitnessStep:
    applied: int = 0
    replays: int = 0
    found: int = 0
    sent: int = 0
    refused: list[str] = field(default_factory=list)


class WitnessService:
    def __init__(
        self,
        store: WitnessStore,
        transport: Transport,
        keys: PartyKeys,
        directory: Directory,
        hub_key: Ed25519PublicKey,
        peers: Sequence[str] = (),
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        """``peers``: the other witnesses this one gossips with (parties in ``directory``)."""
        if transport.party != keys.name or keys.name == HUB:
            raise PermissionDenied("a witness runs on its own transport with its own keys", code=Code.CONFIGURATION)
        self.store, self.transport, self.keys, self.directory = store, transport, keys, directory
        self.peers = tuple(p for p in peers if p != keys.name)
        self.now = now
        self.book = WitnessBook(hub_key, store)
        self.cosigned: list[tuple[str, bytes]] = []  # (peer, the head it cosigned), checked

    # -- the loop --------------------------------------------------------------------------------------------
    def step(self, timeout_ms: int = 200, max_records: int = 100) -> WitnessStep:
        done = WitnessStep()
        done.sent += self._send_owed()
        keys = self.directory.sender_keys(self.now())
        for delivery in self.transport.poll(timeout_ms, max_records):
            try:
                carried = expand(self.keys, delivery.value, keys)  # a hub on a digest schedule: its messages
            except FlagLedgerError as exc:
                done.refused.append(exc.code)
                continue
            for value in carried:
                self._handle(value, keys, done)
        done.sent += self._send_owed()
        self.transport.commit()
        return done

    def gossip(self) -> int:
        """Owe every peer this witness's view (its newest hub head, each agency's newest head, in messages of
        ``MAX_GOSSIP`` heads); returns the messages owed."""
        hub, heads = self.book.view()
        chunks = [heads[at : at + MAX_GOSSIP] for at in range(0, len(heads), MAX_GOSSIP)] or [[]]
        owed = [self._relay(peer, GossipMessage.of(hub, chunk)) for peer in self.peers for chunk in chunks]
        self.store.owe(owed)
        return len(owed)

    def _handle(self, value: bytes, keys: SenderKeys, done: WitnessStep) -> None:
        try:
            opened = unseal(self.keys.sealing, self.keys.name, value, keys)
            if self.store.was_seen(opened.sender, opened.event_id):
                done.replays += 1
                return
            found = self._apply(opened, keys)
            if found is not None:
                done.found += int(self._raise(found))
            self.store.seen(opened.sender, opened.event_id)
            done.applied += 1
        except StorageError:
            raise  # not the message's fault: nothing committed, read again
        except FlagLedgerError as exc:
            done.refused.append(exc.code)
        except (ValueError, TypeError) as exc:
            done.refused.append(f"{Code.MALFORMED}: {type(exc).__name__}")

    def _apply(self, opened: Opened, keys: SenderKeys) -> Finding | None:
        kind, sender = opened.kind, opened.sender
        if sender == HUB and kind == MapHeadMessage.kind:
            # a hub not told this party is a witness seals it as to an agency: with its sequence (linkage.hub_seq)
            m = decode(MapHeadMessage, split_seq(opened.payload)[0])
            head = decode_head(bytes.fromhex(m.head))
            found = self.book.hub_announced(head, hashes_from_hex(m.consistency))
            if found is None and self.book.hub.latest == head:  # the next link of the one chain it holds
                self.store.owe([self._to_hub(Cosignature.of(self.keys.signer, bytes.fromhex(m.head)))])
            return found
        if kind == TreeHeadMessage.kind:
            t = decode(TreeHeadMessage, opened.payload)
            tree = t.tree_head()
            if sender != HUB and tree.origin != sender:
                raise PermissionDenied(f"{sender} sent a head of {tree.origin}", code=Code.WRONG_AGENCY)
            found = self.book.tree_shown(tree, keys, t.prev_size, hashes_from_hex(t.consistency))
            if found is None and sender != HUB:
                self.store.owe([self._relay(sender, Cosignature.of(self.keys.signer, bytes.fromhex(t.head)))])
            return found
        if sender in self.peers and kind == GossipMessage.kind:
            return self._gossiped(sender, decode(GossipMessage, opened.payload), keys)
        if sender in self.peers and kind == Cosignature.kind:
            cosig = decode(Cosignature, opened.payload)
            subject = cosig.verify(keys, sender)
            self.store.cosignature(sender, subject, cosig.key_id, bytes.fromhex(cosig.signature))  # kept: evidence
            self.cosigned.append((sender, subject))
            return None
        if sender in self.peers and kind == WitnessIncident.kind:  # a peer's finding: kept once its evidence checks
            told = Finding.of(decode(WitnessIncident, opened.payload))
            if not check_finding(told, self.book.hub_key, keys):
                raise IntegrityError(f"{sender} reports a {told.code} its evidence does not show", code=Code.MALFORMED)
            self.store.finding(told, [])  # not told on: its finder told everyone
            return None
        raise PermissionDenied(f"a witness takes no {kind!r} from {sender}", code=Code.WRONG_ROUTE)

    def _gossiped(self, peer: str, m: GossipMessage, keys: SenderKeys) -> Finding | None:
        found: Finding | None = None
        if m.hub_head:
            found = self.book.hub_gossiped(decode_head(bytes.fromhex(m.hub_head)))
        for head in m.heads():
            found = found or self.book.tree_gossiped(head, keys)
        if found is None and m.hub_head:
            self.store.owe([self._relay(peer, Cosignature.of(self.keys.signer, bytes.fromhex(m.hub_head)))])
        return found

    def _raise(self, found: Finding) -> bool:
        """Keep the finding and owe its incident to the accused and every peer; False if it was kept before."""
        incident = found.incident()
        owes = [self._to_hub(incident) if found.accused == HUB else self._relay(found.accused, incident)]
        # the hub's fork concerns everyone it shows heads to: every agency this witness holds heads of hears it
        told = [*self.peers, *(sorted(self.book.latest) if found.accused == HUB else ())]
        owes += [self._relay(party, incident) for party in told if party != found.accused]
        return self.store.finding(found, owes)

    # -- sending ---------------------------------------------------------------------------------------------
    def _to_hub(self, message: Message) -> bytes:
        hub = self.directory.sealing_key(HUB)
        return seal(self.keys.signer, hub, HUB, uuid.uuid4().hex, message.kind, message.encode())

    def _relay(self, to: str, message: Message) -> bytes:
        return self._to_hub(relayed(self.keys.signer, self.directory.sealing_key(to), to, message))

    def _send_owed(self) -> int:
        rows = self.store.owed()
        for _, message in rows:
            self.transport.send(HUB, message)
        if rows:
            self.transport.flush()
            self.store.paid([i for i, _ in rows])
        return len(rows)
