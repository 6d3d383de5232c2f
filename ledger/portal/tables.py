"""The portal's own tables, in the portal's own database (nothing of the hub's or an agency's).

No column holds an individual number: a card is known by the portal's code for its number (``m…``, an HMAC under
the portal's secret), and a registration waiting to be sent is sealed to the hub (only the hub opens it).

They change through their own migration chain (:mod:`ledger.portal.migrations`, version table
``portal_alembic_version``), run when the store is opened: a change here needs a revision there too (a test
compares what the revisions make with these tables).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table

__all__ = [
    "metadata",
    "portal_card_revocations",
    "portal_cards",
    "portal_challenges",
    "portal_erasures",
    "portal_outbox",
    "portal_pages",
    "portal_seen",
    "portal_sessions",
    "portal_waiting",
]

metadata = MetaData()

CODE = 33

# the cards signed in at least once: their registration was written to the outbox (and sent from there)
portal_cards = Table("portal_cards", metadata, Column("code", String(CODE), primary_key=True))

# the newest page the hub fed for each code (the sealed message's payload, decoded again when read)
portal_pages = Table(
    "portal_pages",
    metadata,
    Column("code", String(CODE), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("page", LargeBinary, nullable=False),
)

# the hub's messages applied, by event id: a message handed over again, or re-injected, is applied once
portal_seen = Table("portal_seen", metadata, Column("event_id", String(32), primary_key=True))

# sealed registrations owed to the hub, sent by the portal's loop and deleted once the broker stored them
portal_outbox = Table(
    "portal_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message", LargeBinary, nullable=False),
)

# erasures the hub told the portal of (issue 22, ledger.linkage.erasure_messages): the card's code, the hub's
# sequence of the erasure; the portal's record of them (no agency, no record, no count: the hub sends none)
portal_erasures = Table(
    "portal_erasures",
    metadata,
    Column("code", String(CODE), primary_key=True),
    Column("version", BigInteger, primary_key=True),
)

# pages that did not open because a provider's wire key never arrived (its key message parked at the hub, or
# sealed to a delivery key retired here): the hub's sealed message as it came, the ref and the provider asked
# for the key again (ledger.linkage.delivery_keys.WireKeyRequest); opened again when the key arrives, dropped
# when that provider erases the key.
# ``last_asked``: when the key was last asked for (the re-ask timer, linkage.delivery_keys.resend_after_seconds);
# NULL in a row kept before it existed (migration p0002) until the next ask.
portal_waiting = Table(
    "portal_waiting",
    metadata,
    Column("event_id", String(32), primary_key=True),
    Column("ref", String(32), nullable=False, index=True),
    Column("provider", String(32), nullable=False),
    Column("message", LargeBinary, nullable=False),
    Column("asked_at", String(40), nullable=False),
    Column("last_asked", String(40), nullable=True),
)

# card sign-in over HTTP (ledger.portal.sign_ins, migration p0003). Times are UTC milliseconds since the epoch.
# A challenge handed out, by the SHA-256 of its bytes: taken (deleted) by the one sign-in that uses it.
portal_challenges = Table(
    "portal_challenges",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("expires_ms", BigInteger, nullable=False),
)

# a signed-in session, by the SHA-256 of its bearer token (the token itself is never kept): the card's code, the
# certificate's issuer and serial (a revocation ends the session at its next use), when it ends
portal_sessions = Table(
    "portal_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("code", String(CODE), nullable=False),
    Column("issuer", String(64), nullable=False),
    Column("serial", String(64), nullable=False),
    Column("expires_ms", BigInteger, nullable=False, index=True),
)

# card serials their issuer revoked (a number change revokes the old card; a lost card), from its signed lists
portal_card_revocations = Table(
    "portal_card_revocations",
    metadata,
    Column("issuer", String(64), primary_key=True),
    Column("serial", String(64), primary_key=True),
    Column("listed_at", String(40), nullable=False),
)
