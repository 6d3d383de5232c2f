"""The hub's sequence number carried to the agencies, and back on their records (issue #19, docs/linkage.md,
"A record late to the hub").

A provision record made while a person was protected, that reaches the hub only after the release (its provider
cut off, its messages queued), would get a number after the release and show. No clock may decide it: the hub
puts its current sequence number in every message it seals to an agency (``hub_seq``, a key of the signed,
sealed JSON payload beside the kind's own fields — never in the routing header), the agency keeps the highest it
has seen, and stamps each record with the highest it had seen *when it made the record* (``stamped_record``).
The hub files the record's hiding position at the lower of the stamp and its arrival: a provider can only hide
more by lying, never less.

An agency strips ``hub_seq`` before the kind's strict decoding (``ledger.linkage.agency.open_from_hub``), so a
payload without it (an older hub) decodes as before. An older agency would park a payload with it: agencies are
upgraded before the hub (docs/linkage.md).
"""

from __future__ import annotations

import json
from typing import Any

from ledger.errors import Code, InputError

__all__ = ["HUB_SEQ", "MAX_SEQ", "check_seq", "split_seq", "with_seq"]

HUB_SEQ = "hub_seq"
MAX_SEQ = 2**63 - 1  # a BIGINT: a larger number is no sequence number of any hub


def check_seq(value: object, field: str = HUB_SEQ) -> int:
    """``value`` as a hub sequence number (a whole number, 0 … ``MAX_SEQ``); ``malformed`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQ:
        raise InputError(f"{field} must be a hub sequence number (a whole number, 0 or more)", code=Code.MALFORMED)
    return value


def with_seq(payload: bytes, seq: int) -> bytes:
    """A message's JSON payload with the hub's sequence number beside its fields."""
    data: Any = json.loads(payload)
    if not isinstance(data, dict) or HUB_SEQ in data:
        raise InputError("only a JSON object without hub_seq carries the hub's sequence", code=Code.MALFORMED)
    data[HUB_SEQ] = check_seq(seq)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def split_seq(payload: bytes) -> tuple[bytes, int | None]:
    """The payload without ``hub_seq`` (for the kind's strict decoding) and the number, None if it carries none;
    ``malformed`` if it carries one that is no sequence number. A payload that is not a JSON object is returned
    as it is: the kind's decoding refuses it with its own reason."""
    if f'"{HUB_SEQ}"'.encode() not in payload:
        return payload, None
    try:
        data: Any = json.loads(payload)
    except (ValueError, RecursionError):
        return payload, None
    if not isinstance(data, dict) or HUB_SEQ not in data:
        return payload, None
    seq = check_seq(data.pop(HUB_SEQ))
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(), seq
