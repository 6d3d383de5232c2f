"""The auditors' subject timeline: every event about a person, in log order, with who did it.

An event is "about" a pseudonym when its creation event names it (``subject``, ``victim``, ``perpetrators``,
``old``/``new``, ``proxy``) or when it belongs to a stream whose creation event did (approvals, decisions,
cancellations carry only their own fields). Probe notices are about the subject of the request they report.
Rows are per pseudonym; :mod:`projections.views` gathers all pseudonyms of the person when reading.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import BigInteger, Column, String, Table, Text, select

from ledger.domain import bounds
from ledger.log.envelope import Envelope
from ledger.log.subject_payload import ENC_DK1, ref_of
from projections.base import BatchedProjection, PageWriter, metadata
from projections.portal import canonical_time

__all__ = ["DETAIL", "TimelineProjection", "timeline_events", "timeline_streams"]

DETAIL = "timeline_events.detail"  # the sealed column's name, its cells' associated data

timeline_streams = Table(
    "timeline_streams",
    metadata,
    Column("stream", String(36), primary_key=True),
    Column("subject", String(bounds.SUBJECT.max), primary_key=True),
)

timeline_events = Table(
    "timeline_events",
    metadata,
    Column("position", BigInteger, primary_key=True),
    Column("subject", String(bounds.SUBJECT.max), primary_key=True, index=True),
    Column("stream", String(36), nullable=False),
    Column("event", String(80), nullable=False),  # e.g. FlagRequest.Approved
    Column("at", String(32), nullable=False),
    Column("agency", String(bounds.AGENCY_CODE.max), nullable=False),  # originating agency
    Column("actor", String(bounds.STAFF_ID.max)),  # staff id, when the event names one
    Column("detail", Text, nullable=False),  # the event's own fields, JSON, sealed (ledger.log.view_cipher)
)

# event class → its topics (module:Class.Event)
_TOPICS = {
    "ledger.domain.cases:ProtectionCase": ("Opened", "PerpetratorAdded", "ChecklistUpdated", "Closed"),
    "ledger.domain.flags:FlagRequest": ("Requested", "Approved", "Rejected", "Executed"),
    "ledger.domain.flags:Protection": ("Opened", "FlagsSet", "FlagsReleased", "FlagsRenewed"),
    "ledger.domain.flags:BodyRequest": ("Sent",),
    "ledger.domain.provision:ProvisionRequest": (
        "Received",
        "AutoProvided",
        "Held",
        "DecisionProposed",
        "ManuallyProvided",
        "Refused",
    ),
    "ledger.domain.provision:ProbeNotice": ("Sent",),
    "ledger.domain.identity:PseudonymLink": ("Linked", "Unlinked", "Relinked"),
    "ledger.domain.identity:LinkRequest": ("Requested", "Approved", "Rejected"),
    # CancelledThroughHub: hub mode, another agency holding the person cancelled this one's registration
    "ledger.domain.identity:ProxyRegistration": ("Registered", "Cancelled", "CancelledThroughHub"),
    # hub mode: this agency's cancellation of a proxy another agency registered (sent to the hub)
    "ledger.domain.identity:PeerProxyCancellation": ("Cancelled",),
    "ledger.domain.identity:AccessRecord": ("ProtectedDetailsRead",),
    # an agency erased a person (issue 22): its rows about them go, on every node (docs/erasure.md)
    "ledger.domain.erasure:ErasureNotice": ("Published",),
}
_ACTOR_FIELDS = ("by", "requested_by", "opened_by", "sent_by", "approved_by", "staff")
_SUBJECT_FIELDS = ("subject", "victim", "old", "new", "proxy")
_SHORT: dict[str, str] = {}  # topic → "Class.Event"
_SKIP = frozenset({"timestamp", "originator_id", "originator_version", "originator_topic"})
# fields an upcast adds as None to events signed before them: left out, so the detail shows the event as it was
# signed (and a timeline rebuilt after an upgrade equals the one the old code wrote: tests/integration/test_upgrade.py)
_UPCAST_NONE = frozenset({"residence_move"})  # PseudonymLink v1 → v2 (issue 21)
# one encoder for every detail (``json.dumps`` with options builds one per call); sort_keys orders the keys
_DETAIL = json.JSONEncoder(ensure_ascii=False, default=str, sort_keys=True)


# event class → whether ``getattr(event, f, None)`` is exactly ``vars(event).get(f)`` for the fields read here
_PLAIN: dict[type, bool] = {}


def _fields(event: Any) -> dict[str, Any] | None:
    """The event's ``__dict__`` when reading a field from it is exactly ``getattr``; else None.

    The two agree whenever the class has no attribute of that name and no ``__getattr__`` (attribute lookup
    then finds the instance dict or nothing). Checked once per event class, so a class that ever defines
    one (a property, a default) keeps ``getattr``. Reading the dict made the timeline cheaper per event
    (figure "projection rebuild").
    """
    kind = type(event)
    plain = _PLAIN.get(kind)
    if plain is None:
        plain = _PLAIN[kind] = not hasattr(kind, "__getattr__") and not any(
            hasattr(kind, f) for f in (*_SUBJECT_FIELDS, "perpetrators", *_ACTOR_FIELDS)
        )
    return vars(event) if plain else None


def _named_subjects(event: Any, fields: dict[str, Any] | None = None) -> list[str]:
    names: list[str] = []
    get = fields.get if fields is not None else lambda f: getattr(event, f, None)
    for field in _SUBJECT_FIELDS:
        value = get(field)
        if isinstance(value, str) and value:
            names.append(value)
    perpetrators = get("perpetrators")
    if perpetrators:
        names.extend(str(p) for p in perpetrators)
        return list(dict.fromkeys(names))
    return names if len(names) < 2 else list(dict.fromkeys(names))


class TimelineProjection(BatchedProjection):
    name = "timeline"
    schema_version = 2  # 2: detail sealed under the person's data key
    tables = (timeline_events, timeline_streams)
    topics = frozenset(f"{cls}.{e}" for cls, events in _TOPICS.items() for e in events)
    build_indexes = frozenset({"ix_timeline_events_subject"})  # an erasure notice deletes a person's rows (_drop)

    def apply(self, w: PageWriter, event: Any, env: Envelope, position: int) -> None:
        h = env.header
        stream = h.stream
        short = _SHORT.get(h.topic) or _SHORT.setdefault(h.topic, h.topic.split(":", 1)[1])
        fields = _fields(event)
        if short == "ErasureNotice.Published":
            self._drop(w, str(event.subject), h.origin)
            return
        if short == "ProbeNotice.Sent":
            subjects = self._stream_subjects(w, str(event.request_id))
        else:
            named = _named_subjects(event, fields)
            if h.version == 1:
                # a stream's first event precedes the rest of it in the log: nothing of it is stored yet
                subjects = self._remember(w, stream, named)
            else:
                subjects = self._stream_subjects(w, stream)
                if named and not set(named) <= set(subjects):
                    subjects = self._remember(w, stream, [*subjects, *named])
            for s in named:
                w.upsert(timeline_streams, {"stream": stream, "subject": s})
        if not subjects:
            return
        actor = None
        for f in _ACTOR_FIELDS:
            v = fields.get(f) if fields is not None else getattr(event, f, None)
            if v:
                actor = str(v)
                break
        detail = _DETAIL.encode(
            {k: v for k, v in vars(event).items() if k not in _SKIP and not (v is None and k in _UPCAST_NONE)}
        )
        at = canonical_time(h.time)
        # the detail is personal: sealed under the event's own data key (a personal event: every row of it goes
        # with that person's erasure), else under each row's person's key (docs/erasure.md)
        sealed = None
        if h.enc == ENC_DK1:
            sealed = w.cipher.seal_under(ref_of(env.payload), DETAIL, detail)
            if sealed is None:  # erased since it was read: projected as erased, not at all
                return
        for s in subjects:
            w.upsert(
                timeline_events,
                {
                    "position": position,
                    "subject": s,
                    "stream": stream,
                    "event": short,
                    "at": at,
                    "agency": h.origin,
                    "actor": actor,
                    "detail": sealed if sealed is not None else w.cipher.seal(s, DETAIL, detail),
                },
            )

    @staticmethod
    def _drop(w: PageWriter, subject: str, agency: str) -> None:
        """What the erasing agency's events said about the person (earlier in the log, so on a rebuild too)."""
        t = timeline_events.c
        w.conn.execute(timeline_events.delete().where(t.subject == subject, t.agency == agency))

    @staticmethod
    def _remember(w: PageWriter, stream: str, subjects: list[str]) -> list[str]:
        known = sorted(set(subjects)) if len(subjects) > 1 else list(subjects)
        w.memo[("timeline_streams", stream)] = known
        return known

    @classmethod
    def _stream_subjects(cls, w: PageWriter, stream: str) -> list[str]:
        known: list[str] | None = w.memo.get(("timeline_streams", stream))
        if known is not None:
            return known
        rows = (
            w.conn.execute(
                select(timeline_streams.c.subject)
                .where(timeline_streams.c.stream == stream)
                .order_by(timeline_streams.c.subject)
            )
            .scalars()
            .all()
        )
        return cls._remember(w, stream, [str(s) for s in rows])
