"""What Mynaportal can show: provision records, flag intervals and proxy registrations.

The rows are stored raw (per pseudonym, per agency, with canonical UTC times); whether a record is hidden is
decided when it is read (see :mod:`projections.views`), from the *intervals* during which any agency held
``NON_DISCLOSURE`` on any pseudonym of the person. Deciding at read time, not at write time, is what makes
late-arriving flag events (replicated from another node, stamped earlier than records already projected)
and later number changes re-hide records without rewriting them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from ledger.domain import bounds
from ledger.log.envelope import Envelope
from projections.base import BatchedProjection, PageWriter, metadata

__all__ = [
    "OPEN_END",
    "RECORD_APPLICANT",
    "RECORD_INFO_KIND",
    "RECORD_PROCEDURE",
    "RECORD_PROVIDER",
    "PortalProjection",
    "canonical_time",
    "flag_intervals",
    "portal_proxies",
    "portal_records",
]

PROVISION = "ledger.domain.provision:ProvisionRequest."
PROTECTION = "ledger.domain.flags:Protection."
PROXY = "ledger.domain.identity:ProxyRegistration."

# An interval still open ends "never": later than any canonical time (they all start with a 4-digit year).
OPEN_END = "9999-12-31T23:59:59.999999Z"


# three projections ask for the same event's time in a row (figure "projection rebuild"): a few entries serve
# that. 8192 held every time of the last 8192 events, so a replay's memory grew with the log up to ~2 MB
# (tests/integration/test_audit_replay_memory.py: 1.6× on a 5× log).
@lru_cache(maxsize=64)
def canonical_time(value: str) -> str:
    """One spelling per instant (UTC, microseconds, ``Z``), so times from any node compare as strings."""
    at = datetime.fromisoformat(value).astimezone(UTC)
    if at.year >= 1000:
        # the same characters as the strftime below, at a tenth of its cost (figure "projection rebuild");
        # strftime's %Y does not pad years before 1000, isoformat does, so those keep the strftime
        return at.isoformat(timespec="microseconds")[:-6] + "Z"
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


portal_records = Table(
    "portal_records",
    metadata,
    Column("request_id", String(36), primary_key=True),
    # provider, procedure, info_kind, applicant: sealed under the person's data key (ledger.log.view_cipher; no
    # reader needs them: the portal shows each record from its signed event); querier: the querying agency's own
    # listing selects by it
    Column("provider", Text, nullable=False),
    Column("querier", String(bounds.AGENCY_CODE.max), nullable=False, index=True),
    Column("subject", String(bounds.SUBJECT.max), nullable=False),
    Column("legal_item", Integer, nullable=False),
    Column("procedure", Text, nullable=False),
    Column("info_kind", Text, nullable=False),
    Column("applicant", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("status", String(24), nullable=False),
    Column("decided_at", String(32)),
    Index("ix_portal_records_subject_created", "subject", "created_at"),
)

flag_intervals = Table(
    "portal_flag_intervals",
    metadata,
    Column("agency", String(bounds.AGENCY_CODE.max), primary_key=True),
    Column("subject", String(bounds.SUBJECT.max), primary_key=True),
    Column("flag", String(bounds.ENUM.max), primary_key=True),
    Column("started", String(32), primary_key=True),
    Column("ended", String(32)),  # NULL while the agency still holds the flag
    Column("request_id", String(36), nullable=False),
    Index("ix_portal_flag_intervals_subject", "subject", "flag"),
)

portal_proxies = Table(
    "portal_proxies",
    metadata,
    Column("subject", String(bounds.SUBJECT.max), primary_key=True),
    Column("proxy", String(bounds.SUBJECT.max), primary_key=True),
    Column("active", Boolean, nullable=False),
    Column("registered_at", String(32), nullable=False),
    Column("cancelled_at", String(32)),
    Column("registration_id", String(36), nullable=False, unique=True),
    Index("ix_portal_proxies_proxy", "proxy"),
)

_OUTCOME = {
    "AutoProvided": "provided",
    "Held": "held",
    "ManuallyProvided": "provided_manually",
    "Refused": "refused",
}


# the sealed columns' names (their cells' associated data)
RECORD_PROVIDER = "portal_records.provider"
RECORD_PROCEDURE = "portal_records.procedure"
RECORD_INFO_KIND = "portal_records.info_kind"
RECORD_APPLICANT = "portal_records.applicant"


class PortalProjection(BatchedProjection):
    name = "portal"
    schema_version = 2  # 2: the records' personal columns sealed under the person's data key
    tables = (portal_records, flag_intervals, portal_proxies)
    topics = frozenset(
        {PROVISION + e for e in ("Received", *_OUTCOME)}
        | {PROTECTION + "FlagsSet", PROTECTION + "FlagsReleased"}
        | {PROXY + "Registered", PROXY + "Cancelled", PROXY + "CancelledThroughHub"}
    )

    def apply(self, w: PageWriter, event: Any, env: Envelope, position: int) -> None:
        h = env.header
        kind = h.topic.rsplit(".", 1)[1]
        at = canonical_time(h.time)
        if h.topic.startswith(PROVISION):
            self._provision(w, kind, event, h.stream, at, position)
        elif h.topic.startswith(PROTECTION):
            self._flags(w, kind, event, h.origin, at)  # the holder: the verified signer, not the payload
        elif kind == "Registered":
            w.upsert(
                portal_proxies,
                {
                    "subject": event.subject,
                    "proxy": event.proxy,
                    "active": True,
                    "registered_at": at,
                    "cancelled_at": None,
                    "registration_id": h.stream,
                },
            )
        else:
            # Cancelled (or, in hub mode, CancelledThroughHub) carries only its own fields: its stream names it
            w.conn.execute(
                portal_proxies.update()
                .where(portal_proxies.c.registration_id == h.stream)
                .values(active=False, cancelled_at=at)
            )

    @staticmethod
    def _provision(w: PageWriter, kind: str, event: Any, stream: str, at: str, position: int) -> None:
        if kind == "Received":
            subject, seal = event.subject, w.cipher.seal
            w.upsert(
                portal_records,
                {
                    "request_id": stream,
                    "provider": seal(subject, RECORD_PROVIDER, event.agency),
                    "querier": event.querier,
                    "subject": subject,
                    "legal_item": int(event.legal_item),
                    "procedure": seal(subject, RECORD_PROCEDURE, event.procedure),
                    "info_kind": seal(subject, RECORD_INFO_KIND, event.info_kind),
                    "applicant": seal(subject, RECORD_APPLICANT, event.applicant),
                    "created_at": at,
                    "position": position,
                    "status": "received",
                    "decided_at": None,
                },
            )
            return
        values: dict[str, Any] = {"status": _OUTCOME[kind]}
        if kind != "Held":
            values["decided_at"] = at
        w.update(portal_records, {"request_id": stream}, values)

    @staticmethod
    def _flags(w: PageWriter, kind: str, event: Any, agency: str, at: str) -> None:
        """``agency``: the event's signer (the holder), never the payload's ``agency`` field."""
        for flag in event.flags:
            if kind == "FlagsSet":
                # an upsert by the whole primary key: batched with the page's other writes
                w.upsert(
                    flag_intervals,
                    {
                        "agency": agency,
                        "subject": event.subject,
                        "flag": flag,
                        "started": at,
                        "ended": None,
                        "request_id": str(event.request_id),
                    },
                )
            else:
                # events of one Protection stream arrive in stream order, so the open interval is its own
                w.conn.execute(
                    flag_intervals.update()
                    .where(
                        (flag_intervals.c.agency == agency)
                        & (flag_intervals.c.subject == event.subject)
                        & (flag_intervals.c.flag == flag)
                        & flag_intervals.c.ended.is_(None)
                    )
                    .values(ended=at)
                )
