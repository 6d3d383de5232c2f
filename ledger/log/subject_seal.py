"""The mapper's two steps of per-subject encryption (issue 22): which data key an event goes under, and opening it.

Kept apart from :mod:`ledger.log.mapper` (the signing and reading path every event takes); only the events
:mod:`ledger.log.subjects` lists come here.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.log.datakeys import DataKeys
from ledger.log.envelope import Envelope
from ledger.log.subject_payload import ENC_DK1, open_payload, ref_of, seal_payload
from ledger.log.subjects import STREAM, binds_stream

__all__ = ["open_subject_payload", "seal_subject_payload"]


def seal_subject_payload(
    dk: DataKeys | None, rule: str, topic: str, state: dict[str, Any], originator_id: UUID, version: int, payload: bytes
) -> tuple[bytes, str | None]:
    """(payload, ``enc``): under its person's data key (``rule``: the field naming them, or ``STREAM``), or as it
    is — and ``enc`` None — when the stream began before per-subject keys (its later events stay as its first)."""
    if dk is None:
        return payload, None
    stream = str(originator_id)
    if rule == STREAM:
        got = dk.for_stream(stream)
        if got is None:
            return payload, None
        ref, key = got
    else:
        subject = state.get(rule)
        if not isinstance(subject, str) or not subject:
            return payload, None
        ref, key = dk.for_subject(subject)
        if version == 1 and binds_stream(topic):
            dk.bind_stream(stream, ref)
    return seal_payload(ref, key, payload, stream, version), ENC_DK1


def open_subject_payload(dk: DataKeys | None, env: Envelope) -> bytes:
    """The payload bytes to decode: as stored, or opened under its data key (``ErasedPayload`` when it is gone)."""
    h = env.header
    if h.enc != ENC_DK1:
        return env.payload
    key = dk.key(ref_of(env.payload)) if dk is not None else None
    return open_payload(env.payload, key, h.stream, h.version)
