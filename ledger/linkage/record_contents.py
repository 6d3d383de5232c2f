"""A provision record's contents sealed by the provider to the portal: the hub files it and cannot read it.

The portal shows a person their provision records (情報提供等記録表示): who asked, for which procedure, which
information, with what outcome. The hub needs none of that to file and hide a record — hiding is by the
hub's sequence and the person's flags (``ledger.linkage.hiding``) — so the provider seals the contents to the
portal's key, signed under its own, and the hub keeps them as an opaque blob beside the routing metadata it
needs (record id, person, provider, sequence). An insider with the hub's database and the hub's keys reads no
procedure text (docs/accountable-hub.md, the hub insider).

``sealed_record`` (provider → hub) replaces the clear ``provision_record`` on the hub's loop::

    {"record_id": 32 hex, "code": the provider's code, "contents": base64 of a sealed message}
    contents = seal(provider → portal, event id = record id, kind "record_contents",
                    RecordContents as JSON, at least 1 024 bytes)

The portal opens the contents with :func:`open_contents`, which checks that they are the provider's (its
signature: the hub cannot forge or alter them) and that they were sealed for this record id (the hub cannot
show one record's contents as another's).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from ledger.domain import bounds
from ledger.errors import Code, InputError, IntegrityError
from ledger.linkage.codes import check_code
from ledger.linkage.hub_seq import check_seq
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import Message, decode
from ledger.linkage.names import PORTAL, check_event_id, check_party
from ledger.linkage.sealing import SenderKeys, seal, unseal
from ledger.linkage.wire_keys import WireLookup, is_wired, unwire, wire
from ledger.log.signing import Signer

__all__ = [
    "CONTENTS_SIZE",
    "RecordContents",
    "RecordOutcomeMessage",
    "SealedRecordMessage",
    "StampedRecordMessage",
    "open_contents",
    "seal_contents",
]

CONTENTS_SIZE = 1024  # the contents' bucket: a usual procedure and information kind fit; longer ones take 4 096
_CONTENTS = bounds.Bound(8192, 1)  # base64 of a 4 096 contents message with its envelope, and room


@dataclass(frozen=True)
class RecordContents(Message):
    """What the portal shows of a record and the hub never reads."""

    kind: ClassVar[str] = "record_contents"
    querier: str
    procedure: str
    legal_item: int
    info_kind: str
    outcome: str
    made_at: str

    def check(self) -> None:
        check_party(self.querier, "querier")
        bounds.check_text("procedure", self.procedure, bounds.PROCEDURE)
        bounds.check_text("info_kind", self.info_kind, bounds.INFO_KIND)
        if not isinstance(self.legal_item, int) or isinstance(self.legal_item, bool) or not 1 <= self.legal_item <= 200:
            raise InputError("legal_item must be the item number of table 2 (別表第二), 1-200", field="legal_item")
        bounds.check_text("outcome", self.outcome, bounds.ENUM)
        bounds.check_text("made_at", self.made_at, bounds.TIME)


@dataclass(frozen=True)
class SealedRecordMessage(Message):
    """A provision record as the provider sends it to the hub: routing metadata and the sealed contents."""

    kind: ClassVar[str] = "sealed_record"
    record_id: str
    code: str
    contents: str  # base64 of the contents sealed to the portal

    def check(self) -> None:
        check_event_id(self.record_id)
        check_code(self.code)
        bounds.check_text("contents", self.contents, _CONTENTS)
        self.sealed()

    def sealed(self) -> bytes:
        try:
            return base64.b64decode(self.contents, validate=True)
        except (binascii.Error, ValueError):
            raise InputError("a sealed record's contents are not base64", code=Code.MALFORMED) from None


@dataclass(frozen=True)
class StampedRecordMessage(SealedRecordMessage):
    """A ``sealed_record`` with the highest hub sequence number its provider had seen when it made the record
    (``ledger.linkage.hub_seq``): the hub hides it from the lower of that and its arrival. A kind of its own, so
    the strict decoding of each stays exact and an older provider's records decode as before."""

    kind: ClassVar[str] = "stamped_record"
    stamp: int

    def check(self) -> None:
        super().check()
        check_seq(self.stamp, "stamp")


@dataclass(frozen=True)
class RecordOutcomeMessage(Message):
    """A later outcome of a record the provider sent before (held, then provided or refused): its contents anew,
    ``version`` the request's event version that decided it. The hub keeps the record where it was filed and
    hidden from — an update never moves a record later — and keeps the newest version only."""

    kind: ClassVar[str] = "record_outcome"
    record_id: str
    code: str
    contents: str  # base64 of the contents sealed to the portal, as a sealed_record's
    version: int

    def check(self) -> None:
        SealedRecordMessage(self.record_id, self.code, self.contents).check()
        if not isinstance(self.version, int) or isinstance(self.version, bool) or not 1 <= self.version <= 2**31:
            raise InputError("an outcome's version is the request's event version (1 or more)", code=Code.MALFORMED)

    def sealed(self) -> bytes:
        return SealedRecordMessage(self.record_id, self.code, self.contents).sealed()


def seal_contents(
    signer: Signer,
    portal_key: X25519PublicKey,
    record_id: str,
    contents: RecordContents,
    wire_key: tuple[bytes, bytes] | None = None,
) -> str:
    """The contents sealed by the provider (``signer``) to the portal, as the base64 a ``sealed_record`` carries;
    with ``wire_key`` (ref, key) under the person's wire key first (``ledger.linkage.wire_keys``)."""
    payload = contents.encode()
    if wire_key is not None:
        payload = wire(wire_key[0], wire_key[1], record_id, payload)
    sealed = seal(signer, portal_key, PORTAL, record_id, RecordContents.kind, payload, CONTENTS_SIZE)
    return base64.b64encode(sealed).decode()


def open_contents(
    portal: PartyKeys,
    sealed: bytes,
    sender_keys: SenderKeys,
    record_id: str,
    provider: str,
    wires: WireLookup | None = None,
) -> RecordContents:
    """The portal's opening of one record's contents: sealed to the portal, signed by ``provider`` (the one the
    hub filed the record for), for ``record_id``, and under ``provider``'s wire key if it was sent under one
    (``erased`` once that key was destroyed); a ledger error otherwise."""
    opened = unseal(portal.sealing, PORTAL, sealed, sender_keys)
    if opened.sender != provider or opened.event_id != record_id or opened.kind != RecordContents.kind:
        raise IntegrityError(
            "a record's contents were sealed by another provider or for another record", code=Code.SEALED_MESSAGE
        )
    payload = opened.payload
    if is_wired(payload):
        payload = unwire(payload, record_id, provider, wires)
    return decode(RecordContents, payload)
