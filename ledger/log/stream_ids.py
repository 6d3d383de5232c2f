"""Ids of the streams about a person: keyed by the owning agency's own secret, so they name nobody.

A stream id is stored in the clear beside every event (the database's key, the broker's routing, a backup's
index). Derived from public inputs — ``uuid5("protection/<agency>/<pseudonym>")`` — it let anyone holding a copy
of the encrypted log, and a pseudonym shown at any counter, try the ~1,800 local government codes (or every
6-digit one) and learn which agency protects the person, without any key. Here the id is an HMAC-SHA256 under a
secret of the *owning* agency (``<AGENCY>-id.key`` in the key store, ledger.runtime.keystore: with the file backend
``DATA_DIR/secrets/<AGENCY>-id.key``; made at ``init`` / ``agency add``, never shared, never published): without
that secret the id is indistinguishable from a random one.

Only the owner ever computes these ids. Peers store and chain another agency's events under the id its
envelope names, and every view is keyed by the events' fields, so no node needs another agency's key. Ids
derived from an agency code alone (an agency's registry, key registry, checkpoint log, a node's hold on an
agency) name no person and stay public: peers must find them (see their ``create_id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from ledger.errors import ConfigurationError
from ledger.log.keyed_hash import KeyedHash

__all__ = ["ID_KEY_BYTES", "StreamIds"]

ID_KEY_BYTES = 32
_DOMAIN = b"flagledger stream id v1"


class StreamIds:
    """The keyed stream ids of the agencies hosted here (agency code → that agency's id key, or its
    :class:`KeyedHash` when the key store computes the HMAC inside a device)."""

    def __init__(self, keys: Mapping[str, bytes | KeyedHash]) -> None:
        for code, key in keys.items():
            if isinstance(key, bytes) and len(key) < ID_KEY_BYTES:
                raise ConfigurationError(f"the stream id key of agency {code} must be at least {ID_KEY_BYTES} bytes")
        self._keys = {code: KeyedHash.of(key, ID_KEY_BYTES) for code, key in keys.items()}

    def _id(self, agency: str, kind: str, *parts: str) -> UUID:
        key = self._keys.get(agency)
        if key is None:
            # a peer's id cannot be computed here, by design: its events carry their ids
            raise ConfigurationError("stream ids are computed only for agencies hosted on this node")
        message = b"\x00".join((_DOMAIN, kind.encode(), agency.encode(), *(p.encode() for p in parts)))
        return UUID(bytes=key(message)[:16], version=4)

    def hosts(self, agency: str) -> bool:
        return agency in self._keys

    def protection(self, agency: str, subject: str) -> UUID:
        """The flags ``agency`` holds on the pseudonym ``subject``."""
        return self._id(agency, "protection", subject)

    def term(self, agency: str, subject: str) -> UUID:
        """``agency``'s support-measure term (DV等支援措置) for the pseudonym ``subject``."""
        return self._id(agency, "term", subject)

    def link(self, agency: str, old: str) -> UUID:
        """``agency``'s record that the pseudonym ``old`` now also names another."""
        return self._id(agency, "link", old)

    def proxy(self, agency: str, subject: str, proxy: str) -> UUID:
        """``agency``'s registration of ``proxy`` as the Mynaportal proxy of ``subject``."""
        return self._id(agency, "proxy", subject, proxy)

    def copy_note(self, agency: str, subject: str, info_kind: str) -> UUID:
        """``agency``'s note on its copy of ``info_kind`` about ``subject`` (none held, or under check)."""
        return self._id(agency, "copy", subject, info_kind)

    def staff(self, agency: str, staff_id: str) -> UUID:
        """A staff member of ``agency`` (a person too: their id says nothing of who works where)."""
        return self._id(agency, "staff", staff_id)

    def system_account(self, agency: str, account: str) -> UUID:
        """A system account of ``agency`` (the portal, the linkage gateway): another name space than staff."""
        return self._id(agency, "system", account)
