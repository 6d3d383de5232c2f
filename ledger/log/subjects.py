"""Which events are a person's, for per-subject encryption (issue 22; :mod:`ledger.log.datakeys`).

An event listed here is encrypted under its person's data key before it is signed: the payload field that names the
person (``victim``, ``subject``) picks the key for a stream's first event, and the stream's later events
(``STREAM``: a case's checklist, perpetrators added, its closing note) stay under the key its first event used.
Everything else keeps today's at-rest cipher only.

Only local events (they never leave the node) are listed: a shared event encrypted here would reach peers that
hold no copy of the key. Shared events about a person (their protection, provision records) need the key to
travel sealed with them; that is left (docs/erasure.md).
"""

from __future__ import annotations

__all__ = ["STREAM", "binds_stream", "subject_rule"]

STREAM = ""  # the stream's key, bound by its first event

_D = "ledger.domain."
_RULES: dict[str, str | None] = {
    _D + "cases:ProtectionCase.Opened": "victim",
    _D + "cases:ProtectionCase.PerpetratorAdded": STREAM,
    _D + "cases:ProtectionCase.ChecklistUpdated": STREAM,
    _D + "cases:ProtectionCase.Closed": STREAM,
    _D + "cases:ProtectionCase.CompanionProposed": STREAM,  # a companion (同伴者) proposed, then attached
    _D + "cases:ProtectionCase.CompanionAttached": STREAM,
    _D + "identity:AccessRecord.ProtectedDetailsRead": "subject",
    # the request names the person and why: erased with them; its approval (the erasure record) is not personal
    _D + "erasure:ErasureRequest.Requested": "subject",
}

# first events of streams that continue under the same key (the others are single events, or continue in plain)
_BINDS = frozenset({_D + "cases:ProtectionCase.Opened"})


def binds_stream(topic: str) -> bool:
    return topic in _BINDS


def subject_rule(topic: str) -> str | None:
    """The payload field naming the event's person, ``STREAM`` for the stream's key, None: not per subject."""
    return _RULES.get(topic)
