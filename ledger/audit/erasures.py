"""What ``audit verify`` says of erased events (issue 22, docs/erasure.md): when, and by which approval.

An event whose data key is gone still verifies (signature, chain, tree head cover its ciphertext); the audit then
names the erasure the log itself records for that key — ``ErasureRequest.Erased``, sealed with its approval by a
second administrator — and never the node's key file, which an insider could edit. A key that is gone with no
erasure in the log (deleted outside ``flagledger erase``: one person, no approval) is named as the first bad
event, code ``erased``.
"""

from __future__ import annotations

from typing import Any

from ledger.app import FlagLedger
from ledger.errors import Code
from ledger.log.findings import Finding, VerifyReport

__all__ = ["ERASED_TOPIC", "explain_erasures", "recorded_erasures"]

ERASED_TOPIC = "ledger.domain.erasure:ErasureRequest.Erased"


def recorded_erasures(app: FlagLedger, page: int = 1000) -> dict[str, dict[str, object]]:
    """Data key ref → the erasure that destroyed it: position, time, request (stream id), approver, agency."""
    mapper = app.signed_mapper
    out: dict[str, dict[str, object]] = {}
    start = 1
    while True:
        rows = app.recorder.select_notifications(start=start, limit=page, topics=[ERASED_TOPIC])
        for n in rows:
            env = mapper.open(n.state)
            mapper.check_row(n, env)
            mapper.verify(env)
            ev: Any = mapper.decode(env)
            h = env.header
            for ref in ev.key_refs:
                out[str(ref)] = {
                    "position": n.id,
                    "erased_at": h.time,
                    "request": h.stream,
                    "approved_by": ev.approved_by,
                    "agency": h.origin,
                }
        if len(rows) < page:
            return out
        start = rows[-1].id + 1


def explain_erasures(app: FlagLedger, report: VerifyReport) -> None:
    """Fill ``report.erasures`` for the erased events found; a key gone without a recorded erasure is a finding."""
    if not report.erased:
        return
    recorded = recorded_erasures(app)
    for position, stream, version, topic, ref in report.erased:
        erasure = recorded.get(ref)
        # (any recorded erasure of the key counts, before or after the event: an event saved by another process
        # with the key in hand just before it was destroyed is erased by that same act)
        if erasure is None:
            if report.first_bad is None:
                report.first_bad = Finding(
                    position,
                    stream,
                    version,
                    topic,
                    f"its data key {ref} is gone, but no erasure in the log destroyed it (a key deleted "
                    "outside `flagledger erase`, without a second administrator's approval)",
                    Code.ERASED,
                )
            continue
        report.erasures[ref] = erasure
