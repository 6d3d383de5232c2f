"""A malicious peer agency: its own node, its own valid key, and a patched flagledger that signs whatever it likes.

A peer controls its own code, so nothing on its node stops it: :func:`forge` seals an arbitrary event under the
peer's real key with the local authority checks switched off (the patch stands for the attacker's modified build),
chained to whatever stream head its node knows. The result is exactly what such a peer would publish: a validly
signed, correctly chained envelope. Only the receiving side's checks may stop it.

:func:`forgeries` builds, from an honest agency's published events, every kind of forgery a peer can try on
that agency: an event of each shared type appended to one of its streams (in its name, or in the peer's own
name), and new streams opened in its name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from unittest import mock
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, resolve_topic

import ledger.domain
from ledger.app import FlagLedger
from ledger.domain.base import LedgerAggregate
from ledger.log.envelope import GENESIS

__all__ = [
    "ANY_AGENCY_TOPICS",
    "KINDS",
    "SHARED_TOPICS",
    "Forgery",
    "Template",
    "TemplateIndex",
    "forge",
    "forge_kind",
    "forgeries",
    "templates",
]


def _shared_topics() -> list[str]:
    """Every event type of ledger/domain that travels between agencies (read from the domain, not the table)."""
    out: list[str] = []
    for info in pkgutil.iter_modules(ledger.domain.__path__):
        module = importlib.import_module(f"ledger.domain.{info.name}")
        for agg in vars(module).values():
            if not (
                isinstance(agg, type)
                and issubclass(agg, LedgerAggregate)
                and agg.__module__ == module.__name__
                and agg.SHARED
            ):
                continue
            for name, ev in vars(agg).items():
                if isinstance(ev, type) and issubclass(ev, Aggregate.Event) and name not in ("Event", "Created"):
                    out.append(get_topic(ev))
    return sorted(out)


SHARED_TOPICS = _shared_topics()
_SHARED = frozenset(SHARED_TOPICS)
# the one shared event another agency may append (docs/authority.md): a proxy cancellation only takes access away
ANY_AGENCY_TOPICS = frozenset({"ledger.domain.identity:ProxyRegistration.Cancelled"})


@dataclass(frozen=True)
class Template:
    """An honest agency's real event: the shape a forgery copies."""

    origin: str
    topic: str
    stream: UUID
    version: int
    fields: dict[str, Any]  # the event's own fields (its payload), without stream and version


@dataclass(frozen=True)
class Forgery:
    kind: str  # "their_stream" | "own_name" | "new_stream"
    victim: str  # the agency whose stream or name is abused
    topic: str
    stream: UUID
    version: int
    raw: bytes  # the envelope as the peer publishes it

    @property
    def label(self) -> str:
        return f"{self.topic.split(':')[1]}/{self.kind}"


class TemplateIndex:
    """(origin, topic) → the latest shared event of that topic each agency originated, as ``app``'s log holds it;
    :meth:`update` reads only what the log gained since (the leak-freedom model forges at every step)."""

    def __init__(self, app: FlagLedger) -> None:
        self.app = app
        self.position = 0
        self.latest: dict[tuple[str, str], Template] = {}
        self.positions: dict[tuple[str, str], int] = {}  # where each template is in the log (recent = larger)

    def update(self) -> dict[tuple[str, str], Template]:
        shared = _SHARED
        decode = self.app.signed_mapper.decode
        for position, row, env in self.app.envelopes(start=self.position + 1):
            h = env.header
            self.position = position
            if h.topic in shared:
                state = dict(vars(decode(env)))
                state.pop("originator_id")
                state.pop("originator_version")
                self.latest[(h.origin, h.topic)] = Template(h.origin, h.topic, row.originator_id, h.version, state)
                self.positions[(h.origin, h.topic)] = position
        return self.latest


def templates(app: FlagLedger, victims: Iterable[str]) -> dict[tuple[str, str], Template]:
    """(victim, topic) → the latest shared event of that topic the victim originated, as ``app``'s log holds it."""
    wanted = set(victims)
    return {k: t for k, t in TemplateIndex(app).update().items() if k[0] in wanted}


def forge(peer: FlagLedger, signer: str, topic: str, stream: UUID, version: int, fields: dict[str, Any]) -> bytes:
    """``topic`` at ``version`` of ``stream``, chained to the version before it in ``peer``'s log, sealed and signed
    by ``signer``'s key on ``peer``'s node with the local authority checks patched out."""
    event: Any = object.__new__(resolve_topic(topic))
    state = dict(fields, originator_id=stream, originator_version=version, timestamp=peer.clock())
    event.__dict__.update(state)
    heads: dict[UUID, tuple[int, str]] = {}
    if version > 1:
        rows = peer.recorder.select_events(stream, lte=version - 1, desc=True, limit=1)
        prev = peer.signed_mapper.open(rows[0].state).hash_hex if rows else GENESIS
        heads[stream] = (version - 1, prev)
    # the peer's patched build: no payload check, and it calls every stream its own
    with mock.patch("ledger.log.mapper.payload_violation", lambda *_: None, create=True):
        (stored,) = peer.signed_mapper.seal([event], signer, heads, owners={stream: (signer, topic.rpartition(".")[0])})
    return peer.signed_mapper.open(stored.state).to_bytes()


def _in_own_name(fields: dict[str, Any], victim: str, signer: str, signer_key: str) -> dict[str, Any]:
    """The payload with every value naming the victim (its code, one of its key ids) naming the signer instead."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value == victim:
            value = signer
        elif isinstance(value, str) and value.startswith(victim + ":"):
            value = signer_key
        out[name] = value
    return out


KINDS = ("their_stream", "own_name", "new_stream", "cancel_elsewhere")
CANCEL = "ledger.domain.identity:ProxyRegistration.Cancelled"


def forge_kind(peer: FlagLedger, signer: str, t: Template, kind: str) -> Forgery | None:
    """One forgery of ``kind`` by ``signer`` (hosted on ``peer``) copying the victim's event ``t``: appended at the
    next version of ``peer``'s copy of its stream, in the victim's name (``their_stream``) or the signer's own
    (``own_name``), or opening a new stream in the victim's name (``new_stream``). None: the event names nobody,
    so the last two kinds would be the signer's own business. ``cancel_elsewhere``: the one event any agency may
    append (a proxy cancellation) appended to the victim's stream of another aggregate instead (None on a proxy
    registration's own stream)."""
    victim, topic = t.origin, t.topic
    if kind == "cancel_elsewhere":
        if topic.rpartition(".")[0] == CANCEL.rpartition(".")[0]:
            return None
        head = peer.signed_store.head(t.stream)
        version = (head[0] if head is not None else t.version) + 1
        raw = forge(peer, signer, CANCEL, t.stream, version, {"by": "req", "reason": "intake advice"})
        return Forgery(kind, victim, CANCEL, t.stream, version, raw)
    own = _in_own_name(t.fields, victim, signer, peer.signers[signer].key_id)
    if kind != "their_stream" and own == t.fields:
        return None
    if kind == "new_stream":
        stream = uuid4()
        return Forgery(kind, victim, topic, stream, 1, forge(peer, signer, topic, stream, 1, t.fields))
    head = peer.signed_store.head(t.stream)
    version = (head[0] if head is not None else t.version) + 1
    fields = t.fields if kind == "their_stream" else own
    return Forgery(kind, victim, topic, t.stream, version, forge(peer, signer, topic, t.stream, version, fields))


def forgeries(peer: FlagLedger, signer: str, victims: Iterable[str], kinds: Iterable[str] = KINDS) -> list[Forgery]:
    """Every forgery ``signer`` (hosted on ``peer``) can try on ``victims``' streams and names, one per (event type,
    kind) the victims' published events show; the proxy cancellation any agency may append is tried only where it
    does not belong (``cancel_elsewhere``, once per stream)."""
    out: list[Forgery] = []
    cancelled: set[UUID] = set()
    for (_, topic), t in sorted(templates(peer, victims).items()):
        for kind in kinds if topic not in ANY_AGENCY_TOPICS else ():
            if kind == "cancel_elsewhere" and t.stream in cancelled:
                continue
            f = forge_kind(peer, signer, t, kind)
            if f is not None:
                out.append(f)
                if kind == "cancel_elsewhere":
                    cancelled.add(t.stream)
    return out
