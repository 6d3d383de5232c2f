"""What the hub sequences: provision records and flag changes, each filed under the hub's person id.

A provider reports a provision record, a holder a flag set or released, under its own code for the person;
the hub finds the person by (sender, code) in its code map and files the item under the person id with the
next number of its sequence (:mod:`ledger.hub.sequencer`). The sender is the message's verified signer (the
caller passes ``opened.sender``), so an agency files records and flags only in its own name.

Each item carries its sender's id (``record_id``, ``change_id``): a message the transport hands over again is
filed once, under its first number. The provider's own time of a record (``made_at``) is kept for display;
it never decides anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from ledger.domain import bounds
from ledger.errors import InputError, NotFoundError
from ledger.hub.codemap import SqlCodeMap
from ledger.hub.migrations import upgrade
from ledger.hub.sequencer import Sequencer
from ledger.hub.tables import ID, hub_flag_changes, hub_records
from ledger.linkage.codes import CodeMap, check_code
from ledger.linkage.hiding import Action
from ledger.linkage.names import check_party
from ledger.storage import create_engine, with_driver

__all__ = ["Also", "HubLog", "HubStore", "ProvisionRecord", "open_hub_store"]

# more to write in the transaction that files an item, with its number (the hub's loop: the applied event id)
Also = Callable[[Connection, int], object] | None

_ACTIONS = ("set", "release")
_FLAGS = ("NON_DISCLOSURE", "NO_AUTO_RESPONSE")


@dataclass(frozen=True)
class ProvisionRecord:
    """A provision record (情報提供等記録) as a provider reports it to the hub, about the person it knows by
    ``code``. ``made_at`` is the provider's clock: shown, never compared."""

    record_id: str
    code: str
    querier: str
    procedure: str
    legal_item: int
    info_kind: str
    outcome: str
    made_at: str

    def checked(self) -> ProvisionRecord:
        _id(self.record_id, "record_id")
        check_code(self.code)
        check_party(self.querier, "querier")
        bounds.check_text("procedure", self.procedure, bounds.PROCEDURE)
        bounds.check_text("info_kind", self.info_kind, bounds.INFO_KIND)
        bounds.check_text("outcome", self.outcome, bounds.ENUM)
        bounds.check_text("made_at", self.made_at, bounds.TIME)
        if not isinstance(self.legal_item, int) or isinstance(self.legal_item, bool) or self.legal_item < 1:
            raise InputError("legal_item must be a positive whole number", field="legal_item")
        return self


def _id(value: str, field: str) -> str:
    bounds.check_text(field, value, bounds.Bound(ID, 1))
    return value


class HubLog:
    """Files sequenced items; only a process holding the leader lease writes (``not_leader`` otherwise)."""

    def __init__(self, sequencer: Sequencer, codes: CodeMap) -> None:
        self.sequencer = sequencer
        self.codes = codes

    def _person(self, sender: str, code: str) -> str:
        person = self.codes.person(check_party(sender, "sender"), check_code(code))
        if person is None:
            raise NotFoundError(f"{sender} has registered no person under this code at the hub")
        return person

    def provision(self, provider: str, record: ProvisionRecord, also: Also = None) -> int:
        """File ``provider``'s record; returns its sequence number (the first one, if it came before)."""
        record.checked()
        row: dict[str, Any] = {
            "record_id": record.record_id,
            "person": self._person(provider, record.code),
            "provider": provider,
            "querier": record.querier,
            "procedure": record.procedure,
            "legal_item": record.legal_item,
            "info_kind": record.info_kind,
            "outcome": record.outcome,
            "made_at": record.made_at,
        }
        r = hub_records.c
        return self.sequencer.append(
            lambda conn: _seq(conn, select(r.seq).where(r.record_id == record.record_id)),
            lambda conn, seq: _write(conn, seq, insert(hub_records).values(seq=seq, **row), also),
        )

    def flag(self, holder: str, code: str, flag: str, action: Action, change_id: str, also: Also = None) -> int:
        """File ``holder``'s set or release of ``flag`` on the person it knows by ``code``."""
        if flag not in _FLAGS:
            raise InputError(f"not a flag the hub keeps: {flag[:24]!r}", field="flag")
        if action not in _ACTIONS:
            raise InputError("a flag change is a set or a release", field="action")
        row = {
            "change_id": _id(change_id, "change_id"),
            "person": self._person(holder, code),
            "holder": holder,
            "flag": flag,
            "action": action,
        }
        f = hub_flag_changes.c
        return self.sequencer.append(
            lambda conn: _seq(conn, select(f.seq).where(f.change_id == change_id)),
            lambda conn, seq: _write(conn, seq, insert(hub_flag_changes).values(seq=seq, **row), also),
        )


def _write(conn: Connection, seq: int, stmt: Any, also: Also) -> None:
    conn.execute(stmt)
    if also is not None:
        also(conn, seq)


def _seq(conn: Connection, stmt: Any) -> int | None:
    found = conn.execute(stmt).scalar()
    return None if found is None else int(found)


@dataclass
class HubStore:
    """The hub's database opened: its engine, code map and sequencer (the lease not yet taken)."""

    engine: Engine
    codes: SqlCodeMap
    sequencer: Sequencer

    @property
    def log(self) -> HubLog:
        return HubLog(self.sequencer, self.codes)

    def close(self) -> None:
        self.sequencer.release()
        self.engine.dispose()


def open_hub_store(url: str, who: str) -> HubStore:
    """Open (and migrate) the hub's database at ``url`` for the hub process named ``who``."""
    engine = create_engine(with_driver(url))
    upgrade(engine)
    return HubStore(engine, SqlCodeMap(engine), Sequencer(engine, who))
