"""Signing and verification hooked into eventsourcing's mapping, so nothing reaches the store unsigned.

:class:`SignedMapper` refuses the library's one-event-at-a-time ``to_stored_event``: the only way to
produce a stored event is :meth:`SignedMapper.seal`, which the store
(:class:`ledger.log.store.SignedEventStore`) calls for every ``save``. Reading always verifies
(signature, key validity, row/header agreement) and a full stream read also checks the hash chain.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import TopicError, get_topic, resolve_topic

from ledger.domain.authority import Owner, append_violation, foreign_writer_reason, payload_violation
from ledger.errors import (
    ChainError,
    Code,
    ConfigurationError,
    IntegrityError,
    PermissionDenied,
    SignatureError,
    UntrustedKeyError,
)
from ledger.log.batch_writer import HeaderTemplate, check_log_head, envelope_bytes, merkle_paths
from ledger.log.cipher import reuse_key_schedule
from ledger.log.datakeys import DataKeys
from ledger.log.envelope import GENESIS, Envelope, RootMemo, batch_message
from ledger.log.header import Header
from ledger.log.signing import KeyRing, Signer
from ledger.log.subject_payload import ENC_DK1
from ledger.log.subject_seal import batch_keys, open_subject_payload, seal_subject_payload
from ledger.log.subjects import subject_rule
from ledger.merkle import EMPTY_ROOT

__all__ = ["Head", "PreparedBatch", "SignedMapper"]

import hashlib

_sha256 = hashlib.sha256
_new_object = object.__new__
_set_attr = object.__setattr__

Head = tuple[int, str]  # (version, leaf hash hex) of a stream's latest event


class PreparedBatch:
    """A batch enveloped, chained and hashed, waiting for the log head it signs (:class:`ledger.log.head.PendingBatch`).

    The recorder calls :meth:`seal` inside its insert transaction, holding the store's write lock, with the
    size and root of the log just before the batch; what costs most per event (encoding, hashing, the Merkle
    paths) is done before the lock is taken, the signature and the envelope bytes under it.
    """

    __slots__ = ("headers", "key_id", "leaves", "paths", "payloads", "protect", "root", "rows", "sealed", "signer")

    def __init__(
        self,
        rows: list[tuple[UUID, int, str]],
        headers: list[bytes],
        payloads: list[bytes],
        leaves: list[bytes],
        signer: Signer,
        protect: Callable[[bytes], bytes],
    ) -> None:
        self.rows, self.headers, self.payloads, self.leaves = rows, headers, payloads, leaves
        self.signer, self.key_id, self.protect = signer, signer.key_id, protect
        self.root, self.paths = merkle_paths(leaves)
        self.sealed: list[StoredEvent] = []

    def seal(self, log_size: int, log_root: bytes) -> list[StoredEvent]:
        check_log_head(log_size, log_root)
        size = len(self.leaves)
        signature = self.signer.sign(batch_message(self.key_id, self.root, size, log_size, log_root))
        protect = self.protect
        rows = zip(self.rows, self.headers, self.payloads, self.paths, strict=True)
        self.sealed = [
            StoredEvent(oid, v, topic, protect(envelope_bytes(h, p, i, size, path, signature, log_size, log_root)))
            for i, ((oid, v, topic), h, p, path) in enumerate(rows)
        ]
        return self.sealed


class SignedMapper(Mapper[UUID]):
    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
        *,
        keyring: KeyRing | None = None,
        signers: dict[str, Signer] | None = None,
    ) -> None:
        super().__init__(transcoder=transcoder, compressor=compressor, cipher=reuse_key_schedule(cipher))
        self.keyring = keyring if keyring is not None else KeyRing()
        self.signers: dict[str, Signer] = signers if signers is not None else {}
        # the last batch root computed on reading (see Envelope.batch_root)
        self._roots = RootMemo()
        # envelope v1 (no log head) is read only by `audit verify`, which sets this; everything else refuses it
        self.read_v1 = False
        # per-subject data keys (issue 22): a person's events are encrypted under theirs before signing; None
        # (tests, tools reading a copy of the log): such events are written under the at-rest cipher only
        # and read as erased
        self.data_keys: DataKeys | None = None
        # the library's JSON transcoder's own scanner (its object hook decodes the transcoded values)
        self._scan: Callable[[str, int], tuple[Any, int]] | None = (
            cast(Any, self.transcoder.decoder).scan_once if type(self.transcoder) is JSONTranscoder else None
        )

    # -- writing -------------------------------------------------------------------------------
    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        raise IntegrityError("events are only stored sealed: save them through the SignedEventStore")

    def seal(
        self,
        domain_events: Sequence[DomainEventProtocol[UUID]],
        origin: str,
        heads: dict[UUID, Head],
        log_size: int = 0,
        log_root: bytes = EMPTY_ROOT,
        owners: dict[UUID, Owner] | None = None,
    ) -> list[StoredEvent]:
        """:meth:`prepare` and seal at once, over the given log head (tests; the store seals in the recorder)."""
        batch = self.prepare(domain_events, origin, heads, owners)
        return [] if batch is None else batch.seal(log_size, log_root)

    def prepare(
        self,
        domain_events: Sequence[DomainEventProtocol[UUID]],
        origin: str,
        heads: dict[UUID, Head],
        owners: dict[UUID, Owner] | None = None,
    ) -> PreparedBatch | None:
        """Envelope, chain and hash ``domain_events`` as one batch for agency ``origin`` (None: no events).

        ``heads`` gives the latest stored (version, hash) of each stream that already has events;
        it is updated in place so consecutive events of one stream chain within the batch. ``owners`` gives
        the owner of each of those streams (the signer of its v1 and its aggregate); the streams this batch opens
        are added to it. An event ``origin`` may not write (:mod:`ledger.domain.authority`: another agency's stream, a
        payload in another agency's name) is refused with ``PermissionDenied`` (code ``foreign_writer``)
        before anything is signed — e.g. agency A releasing B's ``Protection`` it holds a replica of.
        The bytes are those of ``seal_batch`` over ``Header``s, built by :mod:`ledger.log.batch_writer`;
        the signature is made by :meth:`PreparedBatch.seal` once the log head is known.
        """
        if owners is None:
            owners = {}
        signer = self.signers.get(origin)
        if signer is None:
            raise ConfigurationError(f"this node holds no signing key for agency {origin}")
        if not domain_events:
            return None
        key_id = signer.key_id
        template = HeaderTemplate(origin, key_id)
        encode = self.transcoder.encode
        headers: list[bytes] = []
        payloads: list[bytes] = []
        leaves: list[bytes] = []
        rows: list[tuple[UUID, int, str]] = []
        kinds: dict[type, tuple[str, int]] = {}  # event class → (topic, class_version)
        earliest = latest = None
        # random event ids (32 hex digits like uuid4().hex) from one read of the OS generator per batch
        ids = os.urandom(16 * len(domain_events)).hex()
        dk = self.data_keys
        keys = batch_keys(dk, domain_events) if dk is not None else {}  # (one key-file commit a batch, at most)
        for i, e in enumerate(domain_events):
            state = dict(vars(e))
            originator_id = state.pop("originator_id")
            version = state.pop("originator_version")
            cls = type(e)
            kind = kinds.get(cls)
            if kind is None:
                kind = kinds[cls] = (get_topic(cls), getattr(cls, "class_version", 1))
            topic, class_version = kind
            if class_version > 1:
                state["class_version"] = class_version
            bad = payload_violation(topic, origin, state, originator_id, version)
            if version == 1:
                owners[originator_id] = (origin, topic.rpartition(".")[0])
            elif bad is None:
                bad = append_violation(topic, origin, owners.get(originator_id))
            if bad is not None:
                raise PermissionDenied(
                    foreign_writer_reason(str(originator_id), version, topic, origin, bad) + "; nothing was recorded",
                    code=Code.FOREIGN_WRITER,
                )
            payload = encode(state)
            enc = None
            if dk is not None and (rule := subject_rule(topic)) is not None:
                payload, enc = seal_subject_payload(dk, rule, state, originator_id, version, payload, keys)
            if version == 1:
                prev = GENESIS
            else:
                head = heads.get(originator_id)
                if head is None or head[0] != version - 1:
                    raise ChainError(
                        f"cannot chain {topic} v{version} of stream {originator_id}: previous event not found"
                    )
                prev = head[1]
            ts = cast(datetime, state.get("timestamp"))
            if earliest is None or ts < earliest:
                earliest = ts
            if latest is None or ts > latest:
                latest = ts
            if enc is None:
                header = template.build(
                    ids[32 * i : 32 * (i + 1)], originator_id, version, prev, topic, ts, _sha256(payload).hexdigest()
                )
            else:  # (rare: the general path, with its enc)
                header = Header(
                    event_id=ids[32 * i : 32 * (i + 1)],
                    origin=origin,
                    key_id=key_id,
                    stream=str(originator_id),
                    version=version,
                    prev=prev,
                    topic=topic,
                    time=ts.isoformat(),
                    digest=_sha256(payload).hexdigest(),
                    enc=enc,
                ).to_bytes()
            leaf = _sha256(b"\x00" + header).digest()
            headers.append(header)
            payloads.append(payload)
            leaves.append(leaf)
            rows.append((originator_id, version, topic))
            heads[originator_id] = (version, leaf.hex())
        # key validity is one interval [valid_from, min(retired, revoked)): if the batch's earliest and
        # latest times are inside it, every event's time is, so two checks stand for one per event
        assert earliest is not None and latest is not None
        self._check_signable(origin, key_id, earliest)
        self._check_signable(origin, key_id, latest)
        return PreparedBatch(rows, headers, payloads, leaves, signer, self.protect)

    def plaintext(self, env: Envelope) -> bytes:
        """The payload bytes to decode: as stored, or opened under its data key (``ErasedPayload`` when destroyed)."""
        return open_subject_payload(self.data_keys, env)

    def _check_signable(self, origin: str, key_id: str, at: datetime) -> None:
        """Refuse to sign what no verifier would accept: an event stamped outside the key's validity.

        Happens when this node's clock moved back past its key's ``valid_from`` (the key was made while
        the clock ran ahead) or the key was retired or revoked; signing anyway would write events that
        ``audit verify`` and every peer reject. A key not in the registry yet is the agency's genesis key,
        being registered by this very batch.
        """
        try:
            self.keyring.check_key(origin, key_id, at)
        except UntrustedKeyError as exc:
            if exc.code in ("unknown_key", "unknown_agency"):
                return
            raise UntrustedKeyError(
                f"refusing to sign at {at.isoformat()}: {exc}. Nothing was recorded. If this node's clock is "
                "wrong, correct it; if the key is retired or revoked, rotate to a new one (`flagledger key rotate`)",
                code=exc.code,
            ) from exc

    def protect(self, envelope_bytes: bytes) -> bytes:
        """At-rest encryption (the signature inside stays checkable after decryption)."""
        return self.cipher.encrypt(envelope_bytes) if self.cipher else envelope_bytes

    # -- reading -------------------------------------------------------------------------------
    def open(self, stored_state: bytes) -> Envelope:
        """Decrypt and parse (no verification)."""
        raw = stored_state
        if self.cipher:
            try:
                raw = self.cipher.decrypt(stored_state)
            except Exception as exc:  # the library raises ValueError or InvalidTag
                raise SignatureError(f"stored event cannot be decrypted: {exc}", code=Code.UNDECRYPTABLE) from exc
        return Envelope.from_bytes(raw)

    def leaf_of_state(self, stored_state: bytes) -> bytes:
        """The log leaf of a stored row (the recorders' ``leaf_of``: an ingested event advances the log head)."""
        return self.open(stored_state).leaf_hash

    def verify(self, env: Envelope) -> None:
        """Signature, key validity and payload digest of one envelope, standing alone."""
        h = env.header
        if _sha256(env.payload).hexdigest() != h.digest:  # Envelope.check_digest, inlined (once per event read)
            raise SignatureError("payload does not match the signed digest")
        seal = env.seal
        if seal.log_size < 0 and not self.read_v1:
            raise IntegrityError(
                "envelope format v1 (no log head) is read only by `flagledger audit verify`: this node writes and "
                "accepts v2 (see docs/tamper-evidence.md)",
                code=Code.OLD_ENVELOPE,
            )
        root = env.batch_root(self._roots)
        self.keyring.verify_root(h.origin, h.key_id, h.timestamp, root, seal)

    def check_row(self, stored: StoredEvent, env: Envelope) -> None:
        self.check_fields(env, str(stored.originator_id), stored.originator_version, stored.topic)

    @staticmethod
    def check_fields(env: Envelope, stream: str | None, version: int, topic: str) -> None:
        """The row's columns (stream as ``str(UUID)``; None: the stored id is no UUID) must be its signed header's."""
        h = env.header
        if h.version != version or h.topic != topic or h.stream != stream:
            raise ChainError(f"row ({stream}, v{version}) does not match its signed header ({h.stream}, v{h.version})")

    def decode(self, env: Envelope, originator_id: UUID | None = None) -> DomainEventProtocol[UUID]:
        """The domain event of ``env``. ``originator_id``: the row's id, given by a caller whose
        :meth:`check_row` passed (the header names exactly ``str(originator_id)``), saves parsing it again."""
        h = env.header
        try:  # only ever our own errors, even for an envelope nobody verified (tests/adversarial)
            cls = resolve_topic(h.topic)
            stream = UUID(h.stream) if originator_id is None else originator_id
        except (TopicError, ValueError) as exc:
            raise IntegrityError(f"unknown event topic or stream: {exc}", code=Code.MALFORMED) from exc
        if not isinstance(cls, type) or not isinstance(state := self._payload(env), dict):
            raise IntegrityError(f"{h.topic} is not an event with a mapping payload", code=Code.MALFORMED)
        state["originator_id"] = stream
        state["originator_version"] = h.version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        if type(from_version) is not int or from_version != class_version:  # (1.0 == 1: type first)
            self._upcast(h.topic, cls, state, from_version, class_version)
        event: Any = _new_object(cls)
        _set_attr(event, "__dict__", state)
        return cast(DomainEventProtocol[UUID], event)

    def check_decodes(self, env: Envelope) -> dict[str, Any]:
        """Raise what :meth:`decode` raises, without building the event (``audit verify``, ``ingest_many``);
        returns the event's fields (its payload, upcast), for the authority check.

        Only for an envelope whose stream the caller knows to be a UUID's text (``UUID(header.stream)``
        parsed, or :meth:`check_fields` matched it to a row's ``str(UUID)``): the one check of decode left out.
        """
        h = env.header
        try:
            cls = resolve_topic(h.topic)
        except (TopicError, ValueError) as exc:
            raise IntegrityError(f"unknown event topic or stream: {exc}", code=Code.MALFORMED) from exc
        if not isinstance(cls, type) or not isinstance(state := self._payload(env), dict):
            raise IntegrityError(f"{h.topic} is not an event with a mapping payload", code=Code.MALFORMED)
        from_version = state.get("class_version", 1)
        if type(from_version) is not int or from_version != getattr(cls, "class_version", 1):
            # upcast (which may fail) or refuse, exactly as decode does
            return vars(self.decode(env))
        return state

    @staticmethod
    def _upcast(topic: str, cls: type, state: dict[str, Any], from_version: Any, class_version: int) -> None:
        if not isinstance(from_version, int) or from_version < 1:
            raise IntegrityError(f"{topic} has a bad class_version {from_version!r}", code=Code.MALFORMED)
        if from_version > class_version:
            # written by a newer release: decoding it with our older class could silently drop fields
            raise IntegrityError(
                f"{topic} v{from_version} was written by a newer flagledger (this node knows up to "
                f"v{class_version}); upgrade this node, then replay the message (`flagledger consumers replay`)",
                code=Code.NEWER_SCHEMA,
            )
        try:
            while from_version < class_version:
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                from_version += 1
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{topic} cannot be upcast from v{from_version}: {exc}", code=Code.MALFORMED) from exc

    def _payload(self, env: Envelope) -> Any:
        raw = self.plaintext(env) if env.header.enc == ENC_DK1 else env.payload
        scan = self._scan
        if scan is not None:
            # JSONDecoder.decode without its two Python frames and whitespace matching: a payload that
            # scans whole from its first character is decoded, hooks and all, exactly as decode() would
            # (~0.6 µs of ~3 per event read); anything else goes to the transcoder, which decides as before
            try:
                text = raw.decode()
                value, end = scan(text, 0)
                if end == len(text):
                    return value
            except Exception:  # decode() below raises (or not) exactly as it always did
                pass
        try:
            return self.transcoder.decode(raw)
        except Exception as exc:
            raise IntegrityError(
                f"payload of {env.header.topic} cannot be decoded: {exc}", code=Code.MALFORMED
            ) from exc

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        env = self.open(stored_event.state)
        self.check_row(stored_event, env)
        self.verify(env)
        return self.decode(env)
