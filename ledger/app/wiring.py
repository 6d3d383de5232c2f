"""Wiring FlagLedger: the event store with its signed mapper and log-head recorder, and the key ring folded
from the key-registry events of the log."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    OperationalError,
    PersistenceError,
    StoredEvent,
)

from ledger import clock
from ledger.app.values import FlagStateReader, ProxyIndex, YearRowsReader
from ledger.domain.types import (
    Action,
)
from ledger.errors import (
    ConfigurationError,
    FlagLedgerError,
    KeyEventError,
    KeyProblem,
    PermissionDenied,
    StorageError,
)
from ledger.log.envelope import Envelope
from ledger.log.mapper import SignedMapper
from ledger.log.pseudonym import Pseudonymizer
from ledger.log.signing import KeyRecord, KeyRing, Signer
from ledger.log.store import SignedEventStore
from ledger.log.stream_ids import StreamIds

log = logging.getLogger("flagledger.ledger")

_LOG_HEAD_RECORDERS = {
    "eventsourcing.sqlite": "ledger.log.sqlite_recorder:LogHeadSQLiteRecorder",
    "eventsourcing.postgres": "ledger.log.pg_recorder:BinaryInsertRecorder",
}


def _now() -> datetime:
    return clock.now()


class LedgerWiring(Application[UUID]):
    """The store, its signed mapper and the key registry folded from the log (every key event, in order)."""

    name = "flagledger"
    log_section_size = 1000
    is_snapshotting_enabled = False

    def __init__(
        self,
        env: dict[str, str],
        *,
        signers: dict[str, Signer],
        anchors: Sequence[KeyRecord],
        pseudonymizer: Pseudonymizer,
        ids: StreamIds,
        clock: Callable[[], datetime] = _now,
        audit: bool = False,
    ) -> None:
        """``audit``: opened for ``audit verify`` — envelope v1 is read, and a key event that fails is recorded
        in :attr:`key_problem` (for the audit to name) instead of refusing to open."""
        self.keyring = KeyRing()
        self.key_problem: KeyProblem | None = None
        self._audit = audit
        self.signers = dict(signers)
        self._anchors = {a.key_id: a for a in anchors}
        self.pseudonymize = pseudonymizer
        self.clock = clock
        self.flag_state: FlagStateReader | None = None
        # from when a peer's number link must name its move (ledger.runtime.link_settings); None: no cut-over
        self.old_links_refused_from: datetime | None = None
        self.proxy_index: ProxyIndex | None = None
        # the year's derived rows (projections.year_rows): the candidates of the year's, the guardian bars' and
        # the protection bodies' listings; the guards read the verified log, never the views
        self.year_rows: YearRowsReader | None = None
        self.ids = ids  # keyed ids of the hosted agencies' streams about people (ledger.log.stream_ids)
        self.hosted = frozenset(self.signers)
        # a hosted agency's kind, once read from its verified registration (ProvisionCommands.hosted_kind)
        self._hosted_kinds: dict[str, str] = {}
        self._vouched: set[str] = set()
        # agency → its first administrator's enrolment code, issued at set-up in this process (shown once)
        self.first_codes: dict[str, str] = {}
        # read paths' permission decisions, valid only at one log position (see permit)
        self._permits: tuple[int, dict[tuple[str, str, Action | None], PermissionDenied | None]] = (-1, {})
        env = dict(env)
        # the recorders that advance the log head in every insert transaction (ledger.log.head)
        recorder = _LOG_HEAD_RECORDERS.get(env.get("PERSISTENCE_MODULE", ""))
        if recorder is not None:
            env.setdefault("APPLICATION_RECORDER_TOPIC", recorder)
        try:
            super().__init__(env=env)
        except (PersistenceError, OperationalError) as exc:
            raise StorageError(f"cannot open the event store: {exc}") from exc
        events = self.events
        assert isinstance(events, SignedEventStore)
        self.signed_store: SignedEventStore = events
        self.signed_store.default_origin = self._single_origin
        self.signed_store.door.fold_keys = self.apply_key_events  # every stored key event, saved or received
        if hasattr(self.recorder, "leaf_of"):
            self.recorder.leaf_of = self.signed_mapper.leaf_of_state
        self.signed_mapper.read_v1 = audit
        self.load_keyring()

    # -- wiring --------------------------------------------------------------------------------
    def construct_mapper(self) -> SignedMapper:
        return SignedMapper(
            transcoder=self.construct_transcoder(),
            cipher=self.factory.cipher(),
            compressor=None,
            keyring=self.keyring,
            signers=self.signers,
        )

    def construct_event_store(self) -> SignedEventStore:
        mapper = self.mapper
        assert isinstance(mapper, SignedMapper)
        return SignedEventStore(mapper, self.recorder)

    @property
    def signed_mapper(self) -> SignedMapper:
        m = self.mapper
        assert isinstance(m, SignedMapper)
        return m

    def _single_origin(self) -> str:
        if len(self.hosted) == 1:
            return next(iter(self.hosted))
        raise ConfigurationError("several agencies are hosted here: say which one originates the events")

    # -- the key registry ----------------------------------------------------------------------
    def load_keyring(self) -> None:
        """Rebuild the key registry from the log's key events, verifying each as it is applied."""
        try:
            self._load_keys()
        except KeyEventError as exc:
            if not self._audit:
                raise
            # the audit names this event as the first bad one (or an earlier one); keys after it stay unknown
            self.key_problem = exc.problem
        if self._audit:
            # this node's own keys, as its config.json lists them, even where the log lost their registration:
            # its events still verify, and the audit names the missing key event itself (ledger.log.check)
            known = {r.key_id for r in self.keyring.records()}
            for anchor in self._anchors.values():
                if anchor.key_id not in known:
                    self.keyring.add(anchor)

    def _load_keys(self) -> None:
        start = 1
        batch: list[tuple[Envelope, StoredEvent]] = []
        while True:
            page = self.recorder.select_notifications(start=start, limit=1000, topics=self._key_topics())
            for n in page:
                try:
                    env = self.signed_mapper.open(n.state)
                except FlagLedgerError as exc:
                    raise KeyEventError.at(n, exc) from exc
                if batch and batch[-1][0].seal.signature != env.seal.signature:
                    self.apply_key_events(batch)
                    batch = []
                batch.append((env, n))
            if len(page) < 1000:
                break
            start = page[-1].id + 1
        if batch:
            self.apply_key_events(batch)

    @staticmethod
    def _key_topics() -> list[str]:
        prefix = "ledger.domain.keys:KeyRegistry."
        return [prefix + e for e in ("Opened", "KeyAdded", "KeyRetired", "KeyRevoked", "RemoteKeyTrusted")]

    def apply_key_events(self, batch: Sequence[tuple[Envelope, StoredEvent]]) -> None:
        """Verify one sealed batch of key events and fold it into the registry.

        A KeyAdded is trusted if signed by a key of the same agency valid at the time (rotation), or
        self-signed by a key anchored for this node (a hosted agency's genesis) or vouched for by a local
        administrator (RemoteKeyTrusted).
        """
        mapper = self.signed_mapper
        tentative: list[str] = []
        row: StoredEvent | None = None
        try:
            for env, row in batch:
                mapper.check_row(row, env)
                h = env.header
                if h.topic.endswith(".KeyAdded"):
                    ev: Any = mapper.decode(env)
                    vouched = ev.key_id in self._anchors or ev.key_id in self._vouched
                    if (
                        h.key_id == ev.key_id
                        and vouched
                        and ev.key_id not in {r.key_id for r in self.keyring.records()}
                    ):
                        self.keyring.add(
                            KeyRecord(h.origin, ev.key_id, ev.public_hex, datetime.fromisoformat(ev.valid_from))
                        )
                        tentative.append(ev.key_id)
            for env, stored in batch:
                row = stored  # (named in the error below)
                mapper.verify(env)
                self._fold_key_event(env)
        except (FlagLedgerError, AttributeError, TypeError, ValueError) as exc:
            # (a payload missing a field, or a malformed date, raises the latter three)
            for key_id in tentative:
                self.keyring.discard(key_id)
            if row is None or isinstance(exc, KeyEventError):
                raise
            raise KeyEventError.at(row, exc) from exc

    def _fold_key_event(self, env: Envelope) -> None:
        h = env.header
        ev: Any = self.signed_mapper.decode(env)
        if not self._may_write_key_event(env, vars(ev)):
            return
        kind = h.topic.rsplit(".", 1)[1]
        if kind == "KeyAdded":
            self.keyring.add(KeyRecord(h.origin, ev.key_id, ev.public_hex, datetime.fromisoformat(ev.valid_from)))
        elif kind == "KeyRetired":
            self.keyring.retire(ev.key_id, datetime.fromisoformat(ev.valid_until))
        elif kind == "KeyRevoked":
            self.keyring.revoke(ev.key_id, datetime.fromisoformat(ev.effective_from), ev.reason)
        elif kind == "RemoteKeyTrusted" and h.origin in self.hosted:
            self._vouched.add(ev.key_id)
            if ev.key_id not in {r.key_id for r in self.keyring.records()}:
                self.keyring.add(
                    KeyRecord(ev.remote_agency, ev.key_id, ev.public_hex, datetime.fromisoformat(ev.valid_from))
                )

    def _may_write_key_event(self, env: Envelope, payload: dict[str, Any]) -> bool:
        """A key event its signer may not write (another agency's registry or key) is never folded in.

        Ingest parks such events and sealing refuses them, so only one written straight into the store gets
        here: the registry ignores it (another agency's key stays usable, this node still opens) and
        ``audit verify`` names it."""
        from ledger.domain.authority import append_violation, payload_violation

        h = env.header
        bad = payload_violation(h.topic, h.origin, payload, h.stream, h.version)
        if bad is None and h.version > 1:
            bad = append_violation(h.topic, h.origin, self.signed_store.owner(UUID(h.stream)))
        if bad is not None:
            log.error(
                "key event v%s of stream %s (%s) by agency %s is ignored: %s; run `flagledger audit verify`",
                h.version,
                h.stream,
                h.topic,
                h.origin,
                bad,
            )
        return bad is None
