"""The application surface: commands take and return IDs and plain values.

Every command names its actor (agency code + staff id); the agency's recorded permission table and
the staff member's recorded roles decide whether it may run. Business rules live in the aggregates'
guards; a refused command saves nothing. Library errors become flagledger errors here.
"""

from ledger.app.ledger import FlagLedger
from ledger.app.values import (
    CONCURRENT_CHANGE,
    SYSTEM,
    Actor,
    FlagStateReader,
    ProxyIndex,
    QuerierAnswer,
    is_local_only,
)
from ledger.errors import KeyEventError, KeyProblem

__all__ = [
    "CONCURRENT_CHANGE",
    "SYSTEM",
    "Actor",
    "FlagLedger",
    "FlagStateReader",
    "KeyEventError",
    "KeyProblem",
    "ProxyIndex",
    "QuerierAnswer",
    "is_local_only",
]
