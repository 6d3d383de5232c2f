"""The messages that carry the hub's flag map between the hub and the agencies (issue #20), beside the kinds of
:mod:`ledger.linkage.messages` and decoded by its strict ``decode`` (binary parts travel as lowercase hex).

=================  ===============  ==============================================================================
kind               from → to        holds
=================  ===============  ==============================================================================
``registered``     hub → agency     its code and the hub's VRF proof for the number it registered: the agency
                                    derives the person's map key itself (``ledger.linkage.person_keys``)
``flag_filed``     hub → holder     its flag change and the hub sequence it was filed at: from the next head on,
                                    the holder expects its flag in the map
``map_head``       hub → agency     a signed map head, the log's consistency proof from the head announced
                                    before it, and the holder's own proofs (person leaf, holding leaf) per code
``proven_query``   hub → provider   a routed query with the hub's signed decision, the head it cites and the
                                    person's map proof (``ledger.linkage.hub_wire.encode_routing``)
=================  ===============  ==============================================================================
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import ClassVar

from ledger.errors import Code, InputError, IntegrityError
from ledger.linkage.codes import check_code
from ledger.linkage.flag_map import MapProof
from ledger.linkage.hub_wire import decode_proof, encode_proof
from ledger.linkage.messages import FLAGS, Message, RoutedQuery
from ledger.linkage.names import check_event_id

__all__ = [
    "MAP_KINDS",
    "MAX_HOLDINGS",
    "FlagFiled",
    "Holding",
    "MapHeadMessage",
    "ProvenQuery",
    "Registered",
    "decode_holdings",
    "encode_holdings",
    "hashes_from_hex",
]

_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")
Holding = tuple[str, MapProof, MapProof]  # the holder's code, the person's proof, the holding's proof
# holdings per map head to one holder: two proofs of ~0.7 KB each, hex, stay well inside the largest bucket
# (262 144); a holder with more is shown a window that moves with each head (ledger.hub.heads)
MAX_HOLDINGS = 48


def _hex(value: str, what: str, limit: int = 200_000) -> str:
    if not isinstance(value, str) or len(value) > limit or not _HEX.match(value):
        raise InputError(f"{what} must be lowercase hex", code=Code.MALFORMED, field=what)
    return value


@dataclass(frozen=True)
class Registered(Message):
    kind: ClassVar[str] = "registered"
    code: str
    proof: str  # hex of the hub's RSA-FDH-VRF proof for the number registered under ``code``

    def check(self) -> None:
        check_code(self.code)
        _hex(self.proof, "proof", 2048)


@dataclass(frozen=True)
class FlagFiled(Message):
    kind: ClassVar[str] = "flag_filed"
    change_id: str
    code: str
    flag: str
    action: str
    seq: int

    def check(self) -> None:
        check_event_id(self.change_id)
        check_code(self.code)
        if self.flag not in FLAGS or self.action not in ("set", "release"):
            raise InputError("a filed flag change sets or releases a known flag", field="flag")
        if not isinstance(self.seq, int) or not 0 < self.seq < 1 << 63:
            raise InputError("a filed flag change has a hub sequence number", field="seq")


@dataclass(frozen=True)
class MapHeadMessage(Message):
    kind: ClassVar[str] = "map_head"
    head: str  # hex of ledger.linkage.hub_wire.encode_head
    consistency: str  # hex of the 32-byte hashes of the log's consistency proof from the head announced before
    holdings: str  # hex of encode_holdings: the recipient's own proofs, one entry per code it holds a flag under
    cosigned: str = ""  # the witnesses' cosignatures of the head before this one (ledger.linkage.cosigned_heads)

    def check(self) -> None:
        _hex(self.head, "head", 2048)
        _hex(self.cosigned, "cosigned", 4_096)
        if len(_hex(self.consistency, "consistency", 64 * 64)) % 64:
            raise InputError("a consistency proof is whole 32-byte hashes", code=Code.MALFORMED, field="consistency")
        _hex(self.holdings, "holdings")


@dataclass(frozen=True)
class ProvenQuery(RoutedQuery):
    kind: ClassVar[str] = "proven_query"
    routing: str = ""  # hex of ledger.linkage.hub_wire.encode_routing
    cosigned: str = ""  # the witnesses' cosignatures of the head it cites (ledger.linkage.cosigned_heads)

    def check(self) -> None:
        super().check()
        _hex(self.routing, "routing", 16_384)
        _hex(self.cosigned, "cosigned", 4_096)

    def plain(self, answer: str) -> RoutedQuery:
        """The routed query as the provider's staff see it, answered ``answer`` (its own check's outcome)."""
        return RoutedQuery(
            self.request_id, self.querier, self.code, self.procedure, self.legal_item, self.info_kind, answer
        )


MAP_KINDS: dict[str, type[Message]] = {m.kind: m for m in (Registered, FlagFiled, MapHeadMessage, ProvenQuery)}


def hashes_from_hex(value: str) -> tuple[bytes, ...]:
    raw = bytes.fromhex(value)
    return tuple(raw[i : i + 32] for i in range(0, len(raw), 32))


def _sized(raw: bytes) -> bytes:
    return struct.pack(">H", len(raw)) + raw


def encode_holdings(holdings: list[Holding]) -> str:
    out = [struct.pack(">H", len(holdings))]
    for code, person, holding in holdings:
        out += [_sized(check_code(code).encode()), _sized(encode_proof(person)), _sized(encode_proof(holding))]
    return b"".join(out).hex()


def decode_holdings(value: str) -> list[Holding]:
    """The entries of a ``map_head``'s holdings; ``malformed`` on anything else (the bytes are the hub's)."""
    raw, at = bytes.fromhex(value), 0

    def take(n: int) -> bytes:
        nonlocal at
        if at + n > len(raw):
            raise IntegrityError("a map head's holdings end early", code=Code.MALFORMED)
        at += n
        return raw[at - n : at]

    def sized() -> bytes:
        return take(int.from_bytes(take(2), "big"))

    out: list[Holding] = []
    for _ in range(int.from_bytes(take(2), "big")):
        try:
            code = check_code(sized().decode())
        except (UnicodeDecodeError, InputError):
            raise IntegrityError("a map head's holding names no code", code=Code.MALFORMED) from None
        out.append((code, decode_proof(sized()), decode_proof(sized())))
    if at != len(raw):
        raise IntegrityError("a map head's holdings have bytes after their end", code=Code.MALFORMED)
    return out
