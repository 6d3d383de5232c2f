"""The hub's tables: its code map, its one sequence with the leader's epoch, and what it sequenced.

State the hub cannot rebuild from anything else, so, like the node's operational tables, they change only
through migrations — their own chain (:mod:`ledger.hub.migrations`, version table ``hub_alembic_version``),
because only the hub's database holds them: an agency's database has no map of other agencies' codes.

No column holds an individual number: a person is the hub's id ``h…`` (an HMAC of the number under the hub's
secret, ``ledger.linkage.codes.hub_person``), an agency knows them by its code ``a…``, the portal by ``m…``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ledger.domain import bounds

__all__ = [
    "hub_access",
    "hub_applied",
    "hub_body_requests",
    "hub_codes",
    "hub_consultations",
    "hub_cosignatures",
    "hub_decisions",
    "hub_erasures",
    "hub_escalations",
    "hub_flag_changes",
    "hub_heads",
    "hub_link_makers",
    "hub_links",
    "hub_moves",
    "hub_outbox",
    "hub_parked",
    "hub_person_keys",
    "hub_portal_links",
    "hub_portal_mark",
    "hub_portal_sent",
    "hub_proxy_approvals",
    "hub_proxy_registrations",
    "hub_records",
    "hub_requests",
    "hub_rosters",
    "hub_sealed_records",
    "hub_sequence",
    "hub_undone_links",
    "metadata",
]

metadata = MetaData()

PARTY = bounds.AGENCY_CODE.max  # a party's name: "hub", "portal", an agency code
CODE = 33  # "a"/"m"/"h" + 32 hex digits
EVENT_ID = 32  # a sealed message's id, a request id on the wire: 32 hex digits
REASON = 200  # why a message was parked, in words (no payload: nothing of an unopened message is trusted)
STAFF_KEY = 100  # a staff key's id: "<agency>:<16 hex digits>" (ledger.domain.staff_acts.staff_key_id)
READER = 100  # a person's name as the hub's operators are known, and the table they read
ID = 64  # a record's or a change's id as its sender spelled it (checked by ledger.hub.log)

# (holder, code) → person: one code names one person per holder, one holder has one code per person
hub_codes = Table(
    "hub_codes",
    metadata,
    Column("holder", String(PARTY), primary_key=True),
    Column("code", String(CODE), primary_key=True),
    Column("person", String(CODE), nullable=False),
    UniqueConstraint("person", "holder", name="uq_hub_codes_person_holder"),
)

# number changes: old person id → new; each number is the old side of one link and the new side of one at most
hub_links = Table(
    "hub_links",
    metadata,
    Column("old", String(CODE), primary_key=True),
    Column("new", String(CODE), nullable=False, unique=True),
)

# the hub's one sequence (per log name) and who may advance it: the leader whose epoch is recorded; a new
# leader raises the epoch, so a deposed one's next append matches no row and is refused (fencing)
hub_sequence = Table(
    "hub_sequence",
    metadata,
    Column("log", String(PARTY), primary_key=True),
    Column("last", BigInteger, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("leader", String(200), nullable=False),
)

# NON_DISCLOSURE (and other flags) set and released, in the hub's sequence; the holder stays at the hub
hub_flag_changes = Table(
    "hub_flag_changes",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("change_id", String(ID), nullable=False, unique=True),  # a redelivered message is applied once
    Column("person", String(CODE), nullable=False),
    Column("holder", String(PARTY), nullable=False),
    Column("flag", String(bounds.ENUM.max), nullable=False),
    Column("action", String(bounds.ENUM.max), nullable=False),
    Index("ix_hub_flag_changes_person", "person", "seq"),
)

# provision records (情報提供等記録) as the hub stores them for the portal; made_at is the provider's clock,
# shown to the person and never compared: hiding is by seq
hub_records = Table(
    "hub_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("record_id", String(ID), nullable=False, unique=True),
    Column("person", String(CODE), nullable=False),
    Column("provider", String(PARTY), nullable=False),
    Column("querier", String(PARTY), nullable=False),
    Column("procedure", String(bounds.PROCEDURE.max), nullable=False),
    Column("legal_item", Integer, nullable=False),
    Column("info_kind", String(bounds.INFO_KIND.max), nullable=False),
    Column("outcome", String(bounds.ENUM.max), nullable=False),
    Column("made_at", String(bounds.TIME.max), nullable=False),
    Index("ix_hub_records_person", "person", "seq"),
)

# the messages the hub's loop applied, by (verified sender, event id): a message the broker operator re-injects,
# or the transport hands over again, is dropped (docs/linkage.md, the replay limit of the primitives)
hub_applied = Table(
    "hub_applied",
    metadata,
    Column("sender", String(PARTY), primary_key=True),
    Column("event_id", String(EVENT_ID), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

# what the loop could not apply — it does not open, is not signed by its sender's key, names another party, its
# payload is malformed, or its sender may not do it — with the reason; committed, so it never blocks the inbox
hub_parked = Table(
    "hub_parked",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("position", BigInteger, nullable=False),  # partition * 2**40 + offset: where the broker held it
    Column("claimed_sender", String(PARTY)),  # the header's, unverified unless the reason says otherwise
    Column("event_id", String(EVENT_ID)),
    Column("code", String(bounds.ENUM.max), nullable=False),
    Column("reason", String(REASON), nullable=False),
    # the sealed bytes as they came if they did not open; empty if they did (they would open with the hub's key,
    # and a registration holds a number: docs/accountable-hub.md, the hub insider)
    Column("message", LargeBinary, nullable=False),
)

# queries the hub routed: the provider's request id (fresh, so provider and holders cannot join it to the
# querier's) → the querier and its own id, to relay the provider's answers; staff: marked "staff answer"
hub_requests = Table(
    "hub_requests",
    metadata,
    Column("request_id", String(EVENT_ID), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("querier", String(PARTY), nullable=False),
    Column("querier_request", String(EVENT_ID), nullable=False),
    Column("provider", String(PARTY), nullable=False),
    Column("person", String(CODE), nullable=False),
    Column("staff", Boolean, nullable=False),
    UniqueConstraint("querier", "querier_request", name="uq_hub_requests_querier"),
)

# sealed messages the hub owes a party, written in the transaction that decided them and deleted once the
# broker stored them: a hub that dies between its database commit and the send sends them at its next step
hub_outbox = Table(
    "hub_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipient", String(PARTY), nullable=False),
    Column("message", LargeBinary, nullable=False),
)

# what the hub fed the portal (ledger.hub.portal_feed): the sequence read up to, the digest of the last page sent
# under each portal code, and the number-change links already fed — so a page goes out once per change, and a
# hub that dies mid-feed sends it at its next round
hub_portal_mark = Table(
    "hub_portal_mark",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
)

hub_portal_sent = Table(
    "hub_portal_sent",
    metadata,
    Column("code", String(CODE), primary_key=True),
    Column("digest", String(64), nullable=False),
)

hub_portal_links = Table(
    "hub_portal_links",
    metadata,
    Column("old", String(CODE), primary_key=True),
)

# the consultation beyond delivery (ledger/hub/consultations.py): each holder consulted on a staff request, its
# deadline (seconds since the epoch, the hub's clock) and its advice once given
hub_consultations = Table(
    "hub_consultations",
    metadata,
    Column("request_id", String(EVENT_ID), primary_key=True),
    Column("holder", String(PARTY), primary_key=True),
    Column("deadline", BigInteger, nullable=False),
    Column("advice", String(bounds.ENUM.max)),
    Index("ix_hub_consultations_deadline", "deadline"),
)

# what the hub raised to a provider's staff about a request (no advice by the deadline, an answer refused):
# one row per request and reason, so a replayed message or a second sweep raises nothing twice
hub_escalations = Table(
    "hub_escalations",
    metadata,
    Column("request_id", String(EVENT_ID), primary_key=True),
    Column("reason", String(bounds.ENUM.max), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

# the four-eyes decisions the hub checked before relaying a staff request's answer: the staff keys, not names
hub_decisions = Table(
    "hub_decisions",
    metadata,
    Column("request_id", String(EVENT_ID), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("status", String(bounds.ENUM.max), nullable=False),
    Column("advice", String(bounds.ENUM.max), nullable=False),
    Column("basis", String(bounds.ENUM.max), nullable=False),
    Column("first_key", String(STAFF_KEY), nullable=False),
    Column("second_key", String(STAFF_KEY), nullable=False),
)

# issue 20: each person id's map key (the VRF output for their number, ledger.linkage.person_keys), made at the
# first registration of the number and kept, since the hub keeps no number to make it again
hub_person_keys = Table(
    "hub_person_keys",
    metadata,
    Column("person", String(CODE), primary_key=True),
    Column("map_key", LargeBinary, nullable=False),
)

# the map heads the hub signed (ledger.hub.heads), each in its own number of the hub's sequence: a restarted
# hub announces its next head against the last one kept here, never a second head for one number
hub_heads = Table(
    "hub_heads",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("head", LargeBinary, nullable=False),  # ledger.linkage.hub_wire.encode_head: body and signature
)

# witnesses' cosignatures of the hub's map heads (docs/accountable-hub.md): evidence an auditor can show that a
# head was seen, and what the hub attaches to a routing decision so the provider answers automatically only
# under a head witnesses checked
hub_cosignatures = Table(
    "hub_cosignatures",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # the head's, as in hub_heads
    Column("witness", String(32), primary_key=True),
    Column("key_id", String(128), nullable=False),
    Column("signature", LargeBinary, nullable=False),  # over tree_heads.cosigned(encode_head(head))
)

# provision records whose contents the provider sealed to the portal (ledger.linkage.record_contents): the hub
# keeps what it needs to file and hide them — id, person, provider, sequence — and a blob it cannot open
hub_sealed_records = Table(
    "hub_sealed_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("record_id", String(EVENT_ID), nullable=False, unique=True),
    Column("person", String(CODE), nullable=False),
    Column("provider", String(PARTY), nullable=False),
    Column("contents", LargeBinary, nullable=False),
    # where non-disclosure hides it from: the lower of its provider's stamp and seq, its arrival (a record late to
    # the hub, ledger.linkage.hub_seq); NULL: filed unstamped before h0023, read as seq
    Column("position", BigInteger),
    # a later outcome of the record (record_outcome, h0023): the hub sequence number it was filed at (the portal's
    # page is fed again) and the request's event version it came from (only a newer one replaces the contents)
    Column("updated", BigInteger),
    Column("outcome_version", Integer),
    Index("ix_hub_sealed_records_person", "person", "seq"),
)

# every read of the hub's database by a person (ledger.hub.inspect), written before the read: who, when, why,
# what they asked for; rows are never updated or deleted by the hub's code
hub_access = Table(
    "hub_access",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(bounds.TIME.max), nullable=False),
    Column("who", String(READER), nullable=False),
    Column("reason", String(REASON), nullable=False),
    Column("what", String(READER), nullable=False),
)

# the staff roster events each agency sent the hub (ledger.linkage.staff_rosters), in the agency's stream order
# and kept append-only: folded into the roster that checks the four eyes of its staff decisions
hub_rosters = Table(
    "hub_rosters",
    metadata,
    Column("agency", String(PARTY), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(bounds.ENUM.max), nullable=False),
    Column("fields", Text, nullable=False),  # JSON, the fields the roster rule reads: public keys, signatures
    Column("seq", BigInteger, nullable=False),
)

# residence changes of protected people (転出/転入) as their municipalities report them (ledger.hub.moves): the
# person by id, the two municipalities, the flags the new one was asked to take over and those it took
hub_moves = Table(
    "hub_moves",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("sender", String(PARTY), nullable=False),
    Column("move_id", String(EVENT_ID), nullable=False),  # the sender's own
    Column("sender_code", String(CODE), nullable=False),
    Column("person", String(CODE), nullable=False),
    Column("from_agency", String(PARTY), nullable=False),  # "" when the sender did not know it
    Column("to_agency", String(PARTY), nullable=False),
    Column("moved_on", String(bounds.DATE.max), nullable=False),
    Column("flags", String(64), nullable=False),  # comma-joined; "" when nothing applied to take over
    Column("delivered", Boolean, nullable=False),  # the handover reached the new municipality's inbox (owed)
    Column("taken", String(64), nullable=False),  # the flags the new municipality has set since
    UniqueConstraint("sender", "move_id", name="uq_hub_moves_sender"),
    Index("ix_hub_moves_person", "person", "seq"),
)

# who made each number-change link (ledger.hub.links): only that agency undoes it. Links filed before this table
# have no row, and are undone by no one through the hub
hub_link_makers = Table(
    "hub_link_makers",
    metadata,
    Column("old", String(CODE), primary_key=True),
    Column("new", String(CODE), nullable=False),
    Column("linker", String(PARTY), nullable=False),
    Column("seq", BigInteger),  # the hub sequence the link was filed at; NULL: filed before h0022 (taken as 0)
)

# number-change links undone as wrong, kept (issue 19): the hub sequence each was filed at (0: before h0022) and
# undone at. A flag held on one side while the two were joined keeps counting for the other: never an automatic
# answer, never a record shown again (ledger.hub.links.joined, docs/linkage.md "Unlinks")
hub_undone_links = Table(
    "hub_undone_links",
    metadata,
    Column("undone_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("old", String(CODE), nullable=False),
    Column("new", String(CODE), nullable=False),
    Column("linked_seq", BigInteger, nullable=False),
    Index("ix_hub_undone_links_old", "old"),
    Index("ix_hub_undone_links_new", "new"),
)

# protection-body requests routed to a municipality (ledger.hub.body_requests): the hub's id → the body and its
# own id, the municipality, the person; whether it reached the municipality (it may register the person later)
hub_body_requests = Table(
    "hub_body_requests",
    metadata,
    Column("request_id", String(EVENT_ID), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("body", String(PARTY), nullable=False),
    Column("body_request", String(EVENT_ID), nullable=False),
    Column("municipality", String(PARTY), nullable=False),
    Column("person", String(CODE), nullable=False),
    Column("flags", String(64), nullable=False),
    Column("reason", String(bounds.ENUM.max), nullable=False),
    Column("delivered", Boolean, nullable=False),
    UniqueConstraint("body", "body_request", name="uq_hub_body_requests_body"),
    Index("ix_hub_body_requests_person", "person"),
)

# agencies' approved erasures the hub applied (issue 22, ledger.hub.erasure): in the hub's sequence, the erasing
# agency, its request id, the person id, how many of its records were shredded; the record of the erasure, kept
# as evidence (it names no content), and what tells the portal feed that the person's page changed
hub_erasures = Table(
    "hub_erasures",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("agency", String(PARTY), nullable=False),
    Column("erasure_id", String(EVENT_ID), nullable=False),
    Column("person", String(CODE), nullable=False),
    Column("records", Integer, nullable=False),
    UniqueConstraint("agency", "erasure_id", name="uq_hub_erasures_agency"),
    Index("ix_hub_erasures_person", "person", "seq"),
)

# holders' approvals of a named proxy for a named person (issue 19, ledger.hub.proxy_approvals): the newest
# action per (holder, person, proxy) at the hub's sequence; the portal's page lists the proxies every holder
# that protects the person now approved (by the portal's codes, no holder)
hub_proxy_approvals = Table(
    "hub_proxy_approvals",
    metadata,
    Column("holder", String(PARTY), primary_key=True),
    Column("person", String(CODE), primary_key=True),
    Column("proxy", String(CODE), primary_key=True),
    Column("approved", Boolean, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_hub_proxy_approvals_seq", "seq"),
)

# Mynaportal proxy registrations (issue 19, ledger.hub.proxy_registrations): per (person, proxy) by the hub's
# person ids, whether registered now, the agency that last registered or cancelled it and the hub's sequence; the
# portal's page lists the registered proxies (by the portal's codes, no agency)
hub_proxy_registrations = Table(
    "hub_proxy_registrations",
    metadata,
    Column("person", String(CODE), primary_key=True),
    Column("proxy", String(CODE), primary_key=True),
    Column("agency", String(PARTY), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_hub_proxy_registrations_seq", "seq"),
)
