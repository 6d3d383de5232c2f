"""The operational tables: state a node cannot rebuild from its log (relay progress, parked and held messages,
command-line sessions).

They live on their own :data:`metadata`, apart from the projections' (``projections.base.metadata``), because
they are never dropped and rebuilt: their schema changes only through the migrations in
:mod:`ledger.runtime.migrations`. (The projections' own bookkeeping, ``projection_tracking`` and
``projection_schema``, stays in ``projections/base.py`` for the projections to reach without importing this
package, and is migrated here too.)
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text

__all__ = [
    "agency_hub_incidents",
    "agency_map_flags",
    "agency_map_heads",
    "agency_map_keys",
    "agency_map_unfiled",
    "agency_map_unseen",
    "cli_sessions",
    "linkage_advice",
    "linkage_applied",
    "linkage_body_outcomes",
    "linkage_body_requests",
    "linkage_case_notes",
    "linkage_consultations",
    "linkage_cosignatures",
    "linkage_decisions",
    "linkage_delivery_keys",
    "linkage_handed_on",
    "linkage_handovers",
    "linkage_handovers_withdrawn",
    "linkage_holder_warnings",
    "linkage_hub_seen",
    "linkage_key_resends",
    "linkage_moves_refused",
    "linkage_parked",
    "linkage_position",
    "linkage_queries",
    "linkage_registrations",
    "linkage_routed",
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
    Column("map_key", LargeBinary, nullable=False),  # held_key(agency, map key): never the key (0012)
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
# A flag change the hub acknowledged filing and has not yet shown under a (cosigned) head: its deadline, so a
# restart does not forget it (change_unseen; migration 0014).
agency_map_unseen = Table(
    "agency_map_unseen",
    metadata,
    Column("agency", String(32), primary_key=True),
    Column("code", String(33), primary_key=True),
    Column("filed_at", BigInteger, nullable=False),  # the hub sequence of its last acknowledged change
    Column("due", String(40), nullable=False),  # ISO time: past it, change_unseen
)

# -- an agency node in hub mode (consumers/linkage_bridge.py, docs/linkage.md) ------------------------------
# A person is named by this agency's own code only (as its subject, "p" + the code's digits); no number, no
# other agency's code, no hub person id is ever in these rows.

# The registration of each person this agency met (its code and the number), sealed to the hub when the number
# was typed: the node cannot open it again, and sends it before the first act about the person.
linkage_registrations = Table(
    "linkage_registrations",
    metadata,
    Column("subject", String(40), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("sent", Integer, nullable=False, default=0),
    # the keyed check of the hub's VRF proof for the number (ledger.linkage.person_keys.person_key_check), kept
    # when the number is typed so the proof is checked without the number (migration 0017); NULL: kept before
    # the hub's VRF key was known, the proof is then refused
    Column("person_check", LargeBinary, nullable=True),
)

# The event ids of the hub's messages applied here: a message handed over again, or re-injected, is dropped.
linkage_applied = Table(
    "linkage_applied",
    metadata,
    Column("event_id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("applied_at", String(40), nullable=False),
)

# How far the bridge has sent the node's own log to the hub (the acts it shares).
linkage_position = Table(
    "linkage_position",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# The hub's sequence numbers this node saw in the hub's messages (ledger.linkage.hub_seq; migration 0021), each
# with the end of the node's log when it was seen: every event after ``position`` was made knowing ``seq``, so a
# provision record is stamped with the highest seen before it (consumers/linkage_seen.py), however late it leaves.
linkage_hub_seen = Table(
    "linkage_hub_seen",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
)

# The portal's delivery keys this agency took from its signed announcements, relayed by the hub (issue 22,
# consumers/linkage_delivery.py; migration 0019): the newest is the one its wire keys are sealed to, in place of
# config.json's linkage.portal entry once its serial is higher. The notice is kept as it came (the portal's
# signature over it: evidence anyone can check again with the portal's public key).
linkage_delivery_keys = Table(
    "linkage_delivery_keys",
    metadata,
    Column("serial", BigInteger, primary_key=True),
    Column("delivery", String(200), nullable=False),  # KEY_ID:X25519 public hex:SERIAL
    Column("made_at", String(40), nullable=False),
    Column("notice", LargeBinary, nullable=False),  # the DeliveryKeyNotice as encoded
    Column("taken_at", String(40), nullable=False),
)

# Wire keys the portal asked for again (a wire_key_request, relayed by the hub; migration 0019): sent by the
# bridge's next push while the key is held (outcome "sent"), never when it is gone (outcome "gone": the person
# was erased, or the ref was never this agency's). A request asked again resets the outcome to "" (owed).
linkage_key_resends = Table(
    "linkage_key_resends",
    metadata,
    Column("ref", String(32), primary_key=True),
    Column("asked_at", String(40), nullable=False),
    Column("outcome", String(8), nullable=False, default=""),
)

# Witnesses' cosignatures of this agency's own published checkpoints, each verified against the witness's key
# from the agency's directory before it is kept: evidence an auditor can show (consumers/linkage_witness.py;
# migration 0014).
linkage_cosignatures = Table(
    "linkage_cosignatures",
    metadata,
    Column("witness", String(32), primary_key=True),
    Column("size", BigInteger, primary_key=True),
    Column("root", String(64), nullable=False),  # hex
    Column("key_id", String(100), nullable=False),  # the witness's key that signed
    Column("head", LargeBinary, nullable=False),  # the checkpoint's bytes as cosigned (encode_tree_head)
    Column("signature", LargeBinary, nullable=False),  # over ledger.linkage.tree_heads.cosigned(head)
    Column("received_at", String(40), nullable=False),
)

# Queries this agency asked another through the hub: queued until sent, then the provider's answer.
linkage_queries = Table(
    "linkage_queries",
    metadata,
    Column("request_id", String(32), primary_key=True),
    Column("querier", String(32), nullable=False),
    Column("staff", String(64), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("subject", String(40), nullable=False),
    Column("procedure", Text, nullable=False),
    Column("legal_item", Integer, nullable=False),
    Column("info_kind", Text, nullable=False),
    Column("status", String(16), nullable=False),  # queued, sent, answered, in_progress, not_provided
    Column("data", Text, nullable=False, default=""),
    Column("asked_at", String(40), nullable=False),
)

# Queries the hub routed here (as provider): the hub's request id → the local provision request, and the last
# answer sent for it (a staff-made answer follows the first "in_progress").
# While "receiving", the query as routed and the log's position before it, so that a crash between the
# provision request's commit and this row's update adopts that request rather than receiving it twice.
linkage_routed = Table(
    "linkage_routed",
    metadata,
    Column("hub_request_id", String(32), primary_key=True),
    Column("local_request_id", String(36), nullable=False, unique=True),
    Column("answered", String(16), nullable=False),
    Column("querier", String(32), nullable=False),
    Column("subject", String(40), nullable=False),
    Column("procedure", Text, nullable=False),
    Column("legal_item", Integer, nullable=False),
    Column("info_kind", Text, nullable=False),
    Column("staff_answer", Integer, nullable=False),
    Column("from_position", BigInteger, nullable=False),
)

# Consultations the hub relayed to this agency as a holder: a provider was asked about a person it protects.
linkage_consultations = Table(
    "linkage_consultations",
    metadata,
    Column("request_id", String(32), primary_key=True),  # the provider's (hub-given) request id
    Column("holder", String(32), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("subject", String(40), nullable=False),
    Column("procedure", Text, nullable=False),
    Column("legal_item", Integer, nullable=False),
    Column("info_kind", Text, nullable=False),
    Column("received_at", String(40), nullable=False),
)

# What the bridge could not apply or send: a message from the broker that does not open, is not the hub's or
# cannot be applied (with its bytes), or an own act it cannot share (no registration). Never retried blindly.
linkage_parked = Table(
    "linkage_parked",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("direction", String(8), nullable=False),  # "in" (from the hub) or "out" (an own act)
    Column("code", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("message", LargeBinary, nullable=True),
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

# issue 19/20, the consultation joined to a hub-mode node (consumers/linkage_decisions.py, migration 0009): what the
# hub said about a held routed query (an ``advice_relay`` or an ``escalation``: the holders combined, unnamed) ...
linkage_case_notes = Table(
    "linkage_case_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hub_request_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # advice_relay | escalation
    Column("advice", String(24), nullable=False),
    Column("reason", String(24), nullable=False),  # an escalation's; "" for advice
    Column("at", String(40), nullable=False),
)

# ... each of the two staff signatures of its four-eyes decision (proposed, approved) over the consultation's
# decision statement (only its digest here: the statement is recomputed to send) ...
linkage_decisions = Table(
    "linkage_decisions",
    metadata,
    Column("local_request_id", String(36), primary_key=True),
    Column("act", String(12), primary_key=True),  # proposed | approved
    Column("staff", String(64), nullable=False),
    Column("key_id", String(100), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("statement", String(64), nullable=False),  # sha256 of what was signed
    Column("at", String(40), nullable=False),
)

# ... and the advice this agency's staff gave as a holder on a consultation, sent at the bridge's next push.
linkage_advice = Table(
    "linkage_advice",
    metadata,
    Column("request_id", String(32), primary_key=True),  # the consultation's (the provider's hub-given id)
    Column("holder", String(32), nullable=False),
    Column("advice", String(24), nullable=False),
    Column("staff", String(64), nullable=False),
    Column("advised_at", String(40), nullable=False),
    Column("sent", Integer, nullable=False),
)

# Handovers through the hub (consumers/linkage_moves.py): "in", the hub asks this municipality to take over the
# flags on a person it knows by its own subject (no holder, no old municipality named); "out", the municipality
# this agency reported the person moved to now holds these flags (ledger.runtime.handovers)
linkage_handovers = Table(
    "linkage_handovers",
    metadata,
    Column("id", String(32), primary_key=True),  # in: the hub's handover id; out: this agency's move id
    Column("direction", String(3), nullable=False),  # "in" or "out" (other kinds have their own tables: 0020)
    Column("subject", String(40), nullable=False),
    Column("to_agency", String(32), nullable=False),
    Column("moved_on", String(10), nullable=False),  # in: the day; out: "" (the move is in the own log)
    Column("flags", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Index("ix_linkage_handovers_subject", "subject"),
)

# ... an "in" the hub withdrew (she moved on): kept as this municipality's record of what it was asked, no
# longer asked; ``at`` is when it was withdrawn
linkage_handovers_withdrawn = Table(
    "linkage_handovers_withdrawn",
    metadata,
    Column("id", String(32), primary_key=True),  # the hub's handover id
    Column("subject", String(40), nullable=False),
    Column("to_agency", String(32), nullable=False),  # this agency (the one asked)
    Column("moved_on", String(10), nullable=False),
    Column("flags", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Index("ix_linkage_handovers_withdrawn_subject", "subject"),
)

# ... the flags of a move this agency reported, held where the person moved on to (``handed_on``: no
# municipality named), one row per move whose flags a later word replaces
linkage_handed_on = Table(
    "linkage_handed_on",
    metadata,
    Column("id", String(32), primary_key=True),  # ledger.runtime.handovers.onward_id of the move
    Column("subject", String(40), nullable=False),
    Column("flags", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Index("ix_linkage_handed_on_subject", "subject"),
)

# ... the hub's warnings that another holder asked to release flags no one else holds (``last_holder_warning``)
linkage_holder_warnings = Table(
    "linkage_holder_warnings",
    metadata,
    Column("id", String(32), primary_key=True),  # the hub's warning id (a resend is kept once)
    Column("subject", String(40), nullable=False),
    Column("to_agency", String(32), nullable=False),  # this agency (the one warned)
    Column("flags", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Index("ix_linkage_holder_warnings_subject", "subject"),
)

# ... and the hub's refusals of moves this agency reported (``move_refused``: ``not_residence``, no one was asked to
# take over; migration 0022), listed in the year queue until the move is entered again
linkage_moves_refused = Table(
    "linkage_moves_refused",
    metadata,
    Column("id", String(32), primary_key=True),  # ledger.runtime.handovers.move_id of the refused move
    Column("subject", String(40), nullable=False),
    Column("to_agency", String(32), nullable=False),  # this agency (the move's reporter)
    Column("reason", String(64), nullable=False),  # the hub's reason code
    Column("at", String(40), nullable=False),
    Index("ix_linkage_moves_refused_subject", "subject"),
)

# Protection-body requests through the hub (consumers/linkage_bodies.py): at a municipality, each request the hub
# routed to it (the hub's id, the body, its own subject); at a body, each step of a municipality's answer to one
# of its own requests, as the hub relayed it
linkage_body_requests = Table(
    "linkage_body_requests",
    metadata,
    Column("id", String(32), primary_key=True),  # the hub's request id
    Column("body", String(32), nullable=False),
    Column("subject", String(40), nullable=False),
    Column("flags", String(64), nullable=False),
    Column("reason", String(24), nullable=False),
    Column("received_at", String(40), nullable=False),
)

linkage_body_outcomes = Table(
    "linkage_body_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body_request_id", String(32), nullable=False),  # this body's own request
    Column("municipality", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("flag_request_id", String(32), nullable=False),
    Column("flags", String(64), nullable=False),
    Column("on", String(40), nullable=False),
)
