"""Messages a hostile peer, a thief of an agency's key or the broker operator would put on the topic."""

from __future__ import annotations

import hashlib
import uuid

from consumers.outbox import publishable
from ledger.log.envelope import Envelope, seal_batch
from ledger.log.signing import Signer
from ledger.runtime.bootstrap import Node

__all__ = ["published", "resigned", "tampered"]


def published(node: Node, origin: str, topic_suffix: str) -> bytes:
    """The last event ``origin`` published on ``node`` whose topic ends with ``topic_suffix`` (as sent)."""
    found = [
        raw
        for _, o, raw in publishable(node.app)
        if o == origin and Envelope.from_bytes(raw).header.topic.endswith(topic_suffix)
    ]
    assert found, f"{origin} published no {topic_suffix}"
    return found[-1]


def _other(payload: bytes) -> bytes:
    # drop the non-disclosure flag (a partial release) where it is named, else change the JSON's spacing
    changed = payload.replace(b'"NON_DISCLOSURE"', b'"NO_AUTO_RESPONSE"', 1)
    return changed if changed != payload else payload + b" "


def tampered(raw: bytes) -> bytes:
    """The same signed header and seal around another payload: the signature no longer covers it."""
    env = Envelope.from_bytes(raw)
    return Envelope(env.header_bytes, _other(env.payload), env.seal).to_bytes()


def resigned(raw: bytes, signer: Signer, *, skip: int = 0) -> bytes:
    """Another event at the same stream position (same version and chain link; ``skip`` versions further on),
    properly signed by ``signer``: with the stream owner's key, a second history of that stream (a fork)."""
    env = Envelope.from_bytes(raw)
    payload = _other(env.payload)
    header = env.header._replace(
        event_id=uuid.uuid4().hex,
        digest=hashlib.sha256(payload).hexdigest(),
        key_id=signer.key_id,
        version=env.header.version + skip,
    )
    return seal_batch([header.to_bytes()], [payload], signer.key_id, signer.sign)[0].to_bytes()
