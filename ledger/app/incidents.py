"""Raising, reading and acknowledging security incidents (:mod:`ledger.domain.incidents`).

**Raised where messages are parked** (``consumers/parked.py``): ingest decides, the parking site records the
parked message and then calls :func:`raise_incidents`, which raises nothing for a parking code that is a fault
rather than an attack (:data:`ledger.domain.incidents.INCIDENT_CODES`).

**Who is alerted**: the owner of the targeted stream — the agency that originated its first event in this
node's own (verified) log, e.g. the holder of a protection, whose protected person may need to move — if that
agency is hosted here; otherwise (a stream of another node's agency, or one this node has never seen) every
agency hosted here, since any of them may be the target. Each gets its own :class:`Incident`, signed by its own
key, listed in its own work queue and acknowledged by its own staff.

**Once per parked message**: an incident's id follows from the agency and the message's *fingerprint*, an
HMAC of the message's SHA-256 under this node's own secret (``incident-id.key`` in the key store, made on first use;
never shared). A redelivered or republished message maps to the same id, finds the incident in the log and
raises nothing; two processes racing to raise it meet the store's unique key. The id reveals nothing to whoever
lacks the secret (it is not derived from public inputs).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from ledger import clock
from ledger.domain.incidents import Incident, incident_kind
from ledger.domain.types import Action
from ledger.errors import (
    Code,
    FlagLedgerError,
    InputError,
    NotFoundError,
    PermissionDenied,
    StateConflict,
    StorageError,
)
from ledger.log.envelope import Envelope
from ledger.log.pseudonym import is_pseudonym

if TYPE_CHECKING:
    from ledger.app import Actor, FlagLedger


class _Secrets(Protocol):
    def incident_secret(self) -> bytes: ...


class Node(Protocol):
    """What raising incidents takes of a running node (``ledger.runtime.bootstrap.Node``, a layer above,
    satisfies it): its ledger, its secrets and its per-process cache."""

    @property
    def app(self) -> FlagLedger: ...

    @property
    def keys(self) -> _Secrets: ...

    @property
    def extra(self) -> dict[str, object]: ...


__all__ = [
    "ACKNOWLEDGE_ACTIONS",
    "READ_ACTIONS",
    "REPORT_ACTIONS",
    "ParkedMessage",
    "acknowledge",
    "authorise_any",
    "fingerprint",
    "incident_id",
    "incidents_of",
    "raise_incidents",
    "scrub",
]

alarm = logging.getLogger("flagledger.alarm")

RAISED = "ledger.domain.incidents:Incident.Raised"
NOTE_MAX = 2000
# who sees incidents in the work queue, who acknowledges them, who drafts the breach report: the staff who
# act on a protected person's safety (deciders of held requests) and on the node's security (administrators);
# auditors read and report but do not acknowledge
READ_ACTIONS = (Action.ADMINISTER, Action.AUDIT, Action.REVIEW_HELD, Action.APPROVE_HELD)
ACKNOWLEDGE_ACTIONS = (Action.ADMINISTER, Action.REVIEW_HELD, Action.APPROVE_HELD)
REPORT_ACTIONS = (Action.ADMINISTER, Action.AUDIT)
# payload fields that name a person (as a pseudonym) in some shared event
_PERSON_FIELDS = ("subject", "old", "new", "proxy")
# a run of 12 or more digits (any script's, e.g. full-width), possibly grouped with a dash, dot or space: what
# an individual number looks like in text. An identifier that happens to hold such a run loses it too.
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[\s.\-‐－・]?\d){11,}(?!\d)")


@dataclass(frozen=True)
class ParkedMessage:
    """A message as the parking site recorded it (``parked_messages``)."""

    id: int
    code: str
    reason: str
    source: str
    raw: bytes


def scrub(text: str, limit: int) -> str:
    """``text`` from an untrusted message, fit to record and show: digit runs an individual number could hide
    in are removed, control characters replaced, the length bounded."""
    cleaned = _DIGIT_RUN.sub("[digits removed]", text)
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in cleaned)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _secret(node: Node) -> bytes:
    cached = node.extra.get("incident_secret")
    if isinstance(cached, bytes):
        return cached
    secret = node.keys.incident_secret()
    node.extra["incident_secret"] = secret
    return secret


def fingerprint(secret: bytes, message: str) -> str:
    """The keyed fingerprint of the message whose SHA-256 (hex) is ``message``."""
    return hmac.new(secret, f"flagledger incident\x00{message}".encode(), hashlib.sha256).hexdigest()


def incident_id(secret: bytes, agency: str, message: str) -> UUID:
    """The id of the incident raised for ``agency`` about the message whose SHA-256 (hex) is ``message``."""
    return Incident.create_id(agency, fingerprint(secret, message))


def _stream_origin(app: FlagLedger, stream: str) -> tuple[str, Any] | None:
    """(originating agency, decoded event) of the stream's first event in the local log, verified; None if the
    stream is unknown here or its first event does not verify (then nobody is presumed its owner)."""
    try:
        rows = app.recorder.select_events(UUID(stream), lte=1, limit=1)
        if not rows:
            return None
        env = app.signed_mapper.open(rows[0].state)
        app.signed_mapper.verify(env)
        return env.header.origin, app.signed_mapper.decode(env)
    except (FlagLedgerError, ValueError) as exc:
        alarm.error(
            "incident: the first event of stream %s does not verify here [%s]",
            stream,
            getattr(exc, "code", Code.MALFORMED),
        )
        return None


def _persons(values: dict[str, Any]) -> list[str]:
    return sorted({v for f in _PERSON_FIELDS if isinstance(v := values.get(f), str) and is_pseudonym(v)})


def _claimed_persons(env: Envelope) -> list[str]:
    """Pseudonyms the message's own payload names (unverified: the message may be forged); never anything else."""
    try:
        payload = json.loads(env.payload)
    except (ValueError, UnicodeDecodeError):
        return []
    return _persons(payload) if isinstance(payload, dict) else []


def raise_incidents(node: Node, parked: ParkedMessage) -> list[Incident]:
    """Raise the incidents one parked message calls for (none for a fault, none already raised); returns the
    incidents raised now. Each is saved on its own, signed by the alerted agency."""
    from ledger.app.holds import hold_reason

    kind = incident_kind(parked.code)
    if kind is None:
        return []
    app = node.app
    message = hashlib.sha256(parked.raw).hexdigest()
    try:
        env: Envelope | None = Envelope.from_bytes(parked.raw)
    except (FlagLedgerError, ValueError):
        env = None  # every incident code is decided after the envelope parsed; kept alerting if that changes
    h = env.header if env is not None else None
    stream = ""
    if h is not None:
        try:
            stream = str(UUID(h.stream)) if str(UUID(h.stream)) == h.stream else ""
        except ValueError:
            stream = ""
    found = _stream_origin(app, stream) if stream else None
    if found is None and stream:
        stream = scrub(stream, 36)  # verbatim only if this node holds the stream (not the message's choice)
    owner = found[0] if found is not None else ""
    subjects = _persons(vars(found[1])) if found is not None else []
    concerned = [owner] if owner in app.hosted else sorted(app.hosted)
    origin = scrub(h.origin, 40) if h is not None else ""
    known = h is not None and any(r.key_id == h.key_id for r in app.keyring.records())
    key_id = "" if h is None else h.key_id if known else scrub(h.key_id, 120)
    fields: dict[str, Any] = {
        "kind": kind.value,
        "code": parked.code,
        "message": message,
        "fingerprint": fingerprint(_secret(node), message),
        "origin": origin,
        "key_id": key_id,  # verbatim only if it names a key this node knows (not the message's choice)
        "stream": stream,
        "stream_version": h.version if h is not None else 0,
        "topic": scrub(h.topic, 200) if h is not None else "",
        "event_id": scrub(h.event_id, 64) if h is not None else "",
        "stamped": scrub(h.time, 40) if h is not None else "",
        "owner": owner,
        "subjects": subjects,
        "claimed_subjects": [s for s in (_claimed_persons(env) if env is not None else []) if s not in subjects],
        "parked_id": int(parked.id),
        "source": scrub(parked.source, 200),
        "reason": scrub(parked.reason, 1000),
        "origin_held": bool(origin) and hold_reason(app, origin) is not None,
    }
    secret = _secret(node)
    raised: list[Incident] = []
    for agency in concerned:
        iid = incident_id(secret, agency, message)
        if app.find(Incident, iid) is not None:
            continue  # a redelivery of a message already alerted
        incident = Incident(agency=agency, **fields)
        assert incident.id == iid
        try:
            app.save_as(agency, incident)
        except StateConflict:
            continue  # another process raised it first
        except StorageError:
            raise  # the database is away: the caller retries (the parked row is kept; nothing is raised twice)
        except FlagLedgerError as exc:  # e.g. the agency's key is not yet valid on a clock set back
            alarm.error(
                "ALARM: incident for agency %s about parked message %s could not be recorded [%s]; "
                "the message stays parked: `flagledger consumers replay %s` raises it once fixed",
                agency,
                parked.id,
                exc.code,
                parked.id,
            )
            continue
        alarm.error(
            "ALARM: incident %s (%s) for agency %s: parked message %s [%s] on stream %s v%s claiming agency %s",
            iid,
            kind.value,
            agency,
            parked.id,
            parked.code,
            stream or "-",
            fields["stream_version"],
            origin or "-",
        )
        raised.append(incident)
    return raised


# -- reading and acknowledging -------------------------------------------------------------------------------
def authorise_any(app: FlagLedger, actor: Actor, actions: Sequence[Action]) -> None:
    """Passes if the actor may do any one of ``actions``; else the last refusal."""
    denied: PermissionDenied | None = None
    for action in actions:
        try:
            app.authorise(actor, action)
            return
        except PermissionDenied as exc:
            denied = exc
    raise denied or PermissionDenied(f"{actor} may not handle incidents", code=Code.ROLE_NOT_PERMITTED)


def _raised_rows(app: FlagLedger) -> Iterator[Any]:
    start = 1
    while True:
        rows = app.recorder.select_notifications(start=start, limit=1000, topics=[RAISED])
        yield from rows
        if len(rows) < 1000:
            return
        start = rows[-1].id + 1


def incidents_of(app: FlagLedger, agency: str) -> list[Incident]:
    """Every incident raised for ``agency``, oldest first, read from the log (each verified as it is loaded),
    not from a view: what a breach report states must not depend on rows anyone with the views database can
    edit."""
    out: list[Incident] = []
    for n in _raised_rows(app):
        if app.signed_mapper.open(n.state).header.origin != agency:
            continue
        out.append(app.load(Incident, n.originator_id, "incident"))
    return out


def acknowledge(app: FlagLedger, actor: Actor, incident: UUID, note: str) -> Incident:
    """A staff member of the alerted agency acknowledges an open incident, saying what was done."""
    authorise_any(app, actor, ACKNOWLEDGE_ACTIONS)
    if len(note) > NOTE_MAX:
        raise InputError(f"note is longer than {NOTE_MAX} characters")
    if _DIGIT_RUN.search(note):
        raise InputError("note must not contain an individual number (12 digits): name the person by pseudonym")
    found = app.find(Incident, incident)
    if found is None or found.agency != actor.agency:
        raise NotFoundError(f"no incident {incident} at agency {actor.agency}")
    found.acknowledge(actor.staff, note, clock.now().isoformat())
    app.save_as(actor.agency, found)
    return found
