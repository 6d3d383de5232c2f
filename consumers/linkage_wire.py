"""The node's bridge and the wire keys (issue 22, ``ledger.linkage.wire_keys``): a person's wire key for the portal
goes out once, relayed by the hub ahead of the first record under it; an approved erasure tells the portal which
of the person's wire keys this agency destroyed, so it destroys its copies too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from uuid import UUID

from ledger.app import FlagLedger
from ledger.audit.erasures import recorded_erasures
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.messages import Message
from ledger.linkage.names import PORTAL

__all__ = ["erased", "key_first"]

Act = tuple[tuple[str, ...], Message]


def key_first(end: AgencyEnd, subject: str, mark: Callable[[Callable[[], None]], None]) -> Iterator[Act]:
    """The person's ``subject_key`` for the portal until it was sent; recorded sent once the broker took it
    (``mark``: the bridge resumes this after sending). Sent again after a crash between: the portal keeps it once."""
    wire_key, delivery = end.wire_for(subject)
    if delivery is not None and wire_key is not None:
        yield (subject,), delivery
        mark(partial(end.delivered, wire_key[0]))


def erased(app: FlagLedger, end: AgencyEnd, subject: str, request_id: str) -> Iterator[Act]:
    """The ``wire_erasure`` of the portal's wire keys among the keys the erasure destroyed — as its ``Erased``
    event in the node's own log names them (the key file destroys them right after the batch is stored) — and of
    any the person got since."""
    dk = app.signed_mapper.data_keys
    if dk is None:
        return
    refs = [ref for ref, e in recorded_erasures(app).items() if str(e["request"]) == request_id]
    # a key made after the erasure, for a record of the person the bridge pushed late (its act came before the
    # erasure's in the log, the push after it): destroyed too, with the same request, and named to the portal
    late = dk.wire_refs(dk.refs_of(subject), PORTAL)
    if late:
        dk.destroy(late, app.clock().isoformat(), request_id, "bridge")
    wired = sorted(set(dk.wire_refs(refs, PORTAL)) | set(late))
    if wired:
        for message in end.wire_erasures(UUID(request_id).hex, wired):
            yield (subject,), message
