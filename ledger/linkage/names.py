"""The names of the linkage's parties: the hub, the portal and agencies (by their code), and what a
routing header may carry. One check for every party name, so a header can never smuggle a separator."""

from __future__ import annotations

import re

from ledger.errors import Code, InputError

__all__ = ["HUB", "PORTAL", "check_event_id", "check_kind", "check_party"]

HUB = "hub"
PORTAL = "portal"

# an agency's code as the ledger spells it (ledger/domain/field_rules.py: 6 digits or upper case, e.g. SC-TOKYO);
# the hub and the portal are lower case, so no agency can be named like them
_PARTY = re.compile(r"^(hub|portal|[0-9]{6}|[A-Z0-9][A-Z0-9_-]{1,31})$")
_EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
_KIND = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")


def check_party(name: str, what: str = "party") -> str:
    if not isinstance(name, str) or not _PARTY.match(name):
        raise InputError(f"{what} must be 'hub', 'portal' or an agency code", code=Code.MALFORMED, field=what)
    return name


def check_event_id(event_id: str) -> str:
    """A message id: 32 lower-case hex digits (``uuid4().hex``), fresh on every hop so the broker cannot join
    a message to the hub with the relay it causes."""
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise InputError("event id must be 32 lower-case hex digits", code=Code.MALFORMED, field="event_id")
    return event_id


def check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise InputError(
            "kind must be 1-64 characters: a lower-case letter, then letters, digits, '_' or '.'",
            code=Code.MALFORMED,
            field="kind",
        )
    return kind
