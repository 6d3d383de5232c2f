"""Padding to fixed size buckets, so that the length of a sealed message tells the broker operator nothing but
its bucket.

The bucket table (bytes of the sealed plaintext: the signed inner message and its padding):

=========  ==================================================================
 bucket     what typically lands there
=========  ==================================================================
   1 024    registrations, links, a query, an answer "no data", a notice
   4 096    an answer with data (every answer is sealed at least here:
            ``ANSWER_SIZE``), a provision record
  16 384    a batch of provision records for the portal
  65 536    a large answer
 262 144    the largest message the linkage carries (Kafka's default
            ``message.max.bytes`` is 1 MiB)
=========  ==================================================================

On the wire a message is ``8 + header + 32 + bucket + 16`` bytes (magic and lengths, the routing header, the
HPKE encapsulated key, the padded plaintext, the AES-GCM tag): docs/linkage.md.
"""

from __future__ import annotations

from ledger.errors import Code, InputError, IntegrityError

__all__ = ["ANSWER_SIZE", "BUCKETS", "bucket_for", "pad", "unpad"]

BUCKETS: tuple[int, ...] = (1024, 4096, 16384, 65536, 262144)
# an answer is padded at least to this, so "no data", "held for staff" and an answer with data look alike
ANSWER_SIZE = 4096


def bucket_for(size: int, at_least: int = 0) -> int:
    """The smallest bucket holding ``size`` bytes and not smaller than ``at_least``."""
    for bucket in BUCKETS:
        if bucket >= size and bucket >= at_least:
            return bucket
    raise InputError(f"a sealed message holds at most {BUCKETS[-1]} bytes (this one needs {size})", code=Code.OVERSIZE)


def pad(inner: bytes, at_least: int = 0) -> bytes:
    """``inner`` followed by zero bytes up to its bucket (``inner`` carries its own lengths)."""
    return inner + bytes(bucket_for(len(inner), at_least) - len(inner))


def unpad(padded: bytes, used: int) -> bytes:
    """The first ``used`` bytes of ``padded``, after checking it is a bucket's size and the rest is zeros:
    a sender that hid data in its padding (a covert channel past the recipient's checks) is refused."""
    if len(padded) not in BUCKETS:
        raise IntegrityError(f"a sealed plaintext of {len(padded)} bytes is no bucket", code=Code.SEALED_MESSAGE)
    if used > len(padded) or padded[used:].count(0) != len(padded) - used:
        raise IntegrityError("a sealed message's padding is not all zeros", code=Code.SEALED_MESSAGE)
    return padded[:used]
