"""The hub's tables: its code map, its one sequence with the leader's epoch, and what it sequenced.

State the hub cannot rebuild from anything else, so, like the node's operational tables, they change only
through migrations — their own chain (:mod:`ledger.hub.migrations`, version table ``hub_alembic_version``),
because only the hub's database holds them: an agency's database has no map of other agencies' codes.

No column holds an individual number: a person is the hub's id ``h…`` (an HMAC of the number under the hub's
secret, ``ledger.linkage.codes.hub_person``), an agency knows them by its code ``a…``, the portal by ``m…``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, UniqueConstraint

from ledger.domain import bounds

__all__ = ["hub_codes", "hub_flag_changes", "hub_links", "hub_records", "hub_sequence", "metadata"]

metadata = MetaData()

PARTY = bounds.AGENCY_CODE.max  # a party's name: "hub", "portal", an agency code
CODE = 33  # "a"/"m"/"h" + 32 hex digits
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
