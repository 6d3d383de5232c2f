"""The operational tables: state a node cannot rebuild from its log (relay progress, parked and held messages,
command-line sessions).

They live on their own :data:`metadata`, apart from the projections' (``projections.base.metadata``), because
they are never dropped and rebuilt: their schema changes only through the migrations in
:mod:`ledger.runtime.migrations`. (The projections' own bookkeeping, ``projection_tracking`` and
``projection_schema``, stays in ``projections/base.py`` for the projections to reach without importing this
package, and is migrated here too.)
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, Text

__all__ = [
    "agency_hub_incidents",
    "agency_map_flags",
    "agency_map_heads",
    "agency_map_keys",
    "agency_map_unfiled",
    "cli_sessions",
    "metadata",
    "parked_messages",
    "pending_events",
    "reference_numbers",
    "relay_marks",
    "relay_position",
]

metadata = MetaData()

relay_position = Table(
    "relay_position",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# Where the relay's last record landed in each partition, and its digest: if the broker no longer holds it
# there, the broker lost data (a memory broker restarted, a topic was deleted) and everything is republished.
relay_marks = Table(
    "relay_marks",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
)

parked_messages = Table(
    "parked_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("code", String(40), nullable=False),
    Column("reason", Text, nullable=False),  # it may quote a peer's header fields: never too long to park
    Column("source", String(200), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, default="parked"),
)

# Events that arrived ahead of a gap in their stream (consumers.ingest.PendingStore).
pending_events = Table(
    "ingest_pending",
    metadata,
    Column("stream", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    # several events may wait for one place: until the stream's v1 arrives nobody can tell the owner's event
    # from a peer's forgery of it, so neither may push the other out; each is decided when released
    Column("leaf", String(64), primary_key=True),
    Column("envelope", LargeBinary, nullable=False),
    # when it was first held (the node's clock, ISO): a flag change waiting for its agency's roster waits this
    # long at most (consumers.pending.ROSTER_HOLD); rows held before 0004 have none
    Column("held_at", String(40), nullable=True),
)

# Command-line sessions (``flagledger login``, ledger/cli/session.py): one row per session, keyed by its token
# id. ``sealed`` is the person's staff key wrapped under a random secret that only their 0600 session file
# holds, so this row alone (with every secret of the node) opens nothing. Never published, never in the log:
# ``logout`` deletes the sealed key and marks the row ended (a copied token is then refused by the command
# line), and rows past their expiry are deleted at the next sign-in.
cli_sessions = Table(
    "cli_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("agency", String(32), nullable=False),
    Column("staff", String(64), nullable=False),
    Column("expires_at", String(40), nullable=False),
    Column("sealed", Text, nullable=True),  # None: signed in with a token (no key to seal)
    Column("ended_at", String(40), nullable=True),
)

# issue 20: what an agency's checks of the hub's flag map keep across restarts (ledger.runtime.map_keep): the
# map key beside each of its codes, the hub's heads it saw (its witness; pruned to a window), the flags the hub
# acknowledged filing per code, its flag changes not yet acknowledged, and the evidence against the hub
agency_map_keys = Table(
    "agency_map_keys",
    metadata,
    Column("agency", String(32), primary_key=True),
    Column("code", String(33), primary_key=True),
    Column("map_key", LargeBinary, nullable=False),
)
agency_map_heads = Table(
    "agency_map_heads",
    metadata,
    Column("agency", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("head", LargeBinary, nullable=False),
)
agency_map_flags = Table(
    "agency_map_flags",
    metadata,
    Column("agency", String(32), primary_key=True),
    Column("code", String(33), primary_key=True),
    Column("flags", String(200), nullable=False),  # sorted, comma-separated
    Column("filed_at", BigInteger, nullable=False),
)
agency_map_unfiled = Table(
    "agency_map_unfiled",
    metadata,
    Column("agency", String(32), primary_key=True),
    Column("change_id", String(32), primary_key=True),
    Column("code", String(33), nullable=False),
    Column("flag", String(24), nullable=False),
    Column("action", String(24), nullable=False),
)
agency_hub_incidents = Table(
    "agency_hub_incidents",
    metadata,
    Column("agency", String(32), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("code", String(24), nullable=False),
    Column("note", String(200), nullable=False),
    Column("request_id", String(32), nullable=False),
    Column("evidence", LargeBinary, nullable=False),  # ledger.linkage.hub_wire.encode_evidence
)

# issue 21: the agency's own reference number (宛名番号) for a person, recorded at intake, so console pages name
# persons as the agency's staff know them — never by pseudonym or individual number. Local to the agency's node:
# never in the log, never sent to the hub or another agency (ledger.runtime.reference_numbers).
reference_numbers = Table(
    "reference_numbers",
    metadata,
    Column("agency", String(32), primary_key=True),
    Column("subject", String(40), primary_key=True),  # the person's pseudonym p<32 hex>
    Column("reference", String(20), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("recorded_at", String(40), nullable=False),
)
