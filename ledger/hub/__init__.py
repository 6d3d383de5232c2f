"""The hub's store (issue #19): its durable code map, its one sequence under a leader lease, the provision records
and flag changes it sequences, and the portal's view hidden by non-disclosure intervals in that sequence.

On SQLite or PostgreSQL (SQLAlchemy), with its own migrations (``ledger.hub.migrations``). It reaches agencies
only through the ``ledger.linkage`` transport interface, never a broker client (``lint-imports``).
Design: docs/linkage.md.
"""
