"""The mapper's two steps of per-subject encryption (issue 22): which data key an event goes under, and opening it.

Kept apart from :mod:`ledger.log.mapper` (the signing and reading path every event takes); only the events
:mod:`ledger.log.subjects` lists come here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import get_topic

from ledger.log.datakeys import DataKeys
from ledger.log.envelope import Envelope
from ledger.log.subject_payload import ENC_DK1, open_payload, ref_of, seal_payload
from ledger.log.subjects import STREAM, binds_stream, subject_rule

__all__ = ["batch_keys", "open_subject_payload", "seal_subject_payload"]


def batch_keys(dk: DataKeys, domain_events: Sequence[DomainEventProtocol[UUID]]) -> dict[str, tuple[bytes, bytes]]:
    """The data keys of the persons ``domain_events`` name (person → (ref, key)), those who have none made and
    each stream a first event opens bound to its person's key — in one transaction of the key file, before
    anything is signed (issue 23: a synced commit per new person cost the append path ~15×). Its commit returns
    before the batch is written to the log, so no event is committed before its key is durable."""
    names: set[str] = set()
    bind: dict[str, str] = {}
    rules: dict[type, tuple[str, str | None]] = {}
    for e in domain_events:
        cls = type(e)
        got = rules.get(cls)
        if got is None:
            topic = get_topic(cls)
            got = rules[cls] = (topic, subject_rule(topic))
        topic, rule = got
        if not rule:  # (None: not a person's event; STREAM: under the key its stream's first event bound)
            continue
        subject = vars(e).get(rule)
        if isinstance(subject, str) and subject:
            names.add(subject)
            if e.originator_version == 1 and binds_stream(topic):
                bind[str(e.originator_id)] = subject
    return dk.for_subjects(names, bind) if names else {}


def seal_subject_payload(
    dk: DataKeys | None,
    rule: str,
    state: dict[str, Any],
    originator_id: UUID,
    version: int,
    payload: bytes,
    keys: dict[str, tuple[bytes, bytes]],
) -> tuple[bytes, str | None]:
    """(payload, ``enc``): under its person's data key (``rule``: the field naming them, or ``STREAM``; ``keys``:
    the batch's, from :func:`batch_keys`), or as it is — and ``enc`` None — when the stream began before
    per-subject keys (its later events stay as its first)."""
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
        ref, key = keys[subject]
    return seal_payload(ref, key, payload, stream, version), ENC_DK1


def open_subject_payload(dk: DataKeys | None, env: Envelope) -> bytes:
    """The payload bytes to decode: as stored, or opened under its data key (``ErasedPayload`` when it is gone)."""
    h = env.header
    if h.enc != ENC_DK1:
        return env.payload
    key = dk.key(ref_of(env.payload)) if dk is not None else None
    return open_payload(env.payload, key, h.stream, h.version)
