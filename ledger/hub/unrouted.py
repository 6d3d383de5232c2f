"""The hub's answer to a query it could not route: the querier is told ``not_routed``, sealed at an answer's
size like every other answer, instead of waiting for an answer that never comes.

A query is parked when the querier never registered the person under that code, names no agency the hub can
seal to, or names itself, the hub or the portal; its querier is the message's verified signer, so only the
agency that asked hears it. The answer is written with the query's applied id in one sequenced transaction: a
replay of the parked query is dropped, and answered once.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from ledger.hub import txn
from ledger.hub.inbox import applied_seq, mark_applied, owe
from ledger.hub.log import HubStore
from ledger.linkage.messages import AnswerMessage, Message, QueryMessage
from ledger.linkage.sealing import Opened

__all__ = ["NOT_ROUTED", "answer_unrouted"]

NOT_ROUTED = "not_routed"


def answer_unrouted(
    store: HubStore,
    seal: Callable[[str, Message], tuple[str, bytes]],
    opened: Opened,
    q: QueryMessage,
    answered: Callable[[], None] = lambda: None,
) -> None:
    """Owe the querier of ``q`` a ``not_routed`` answer under its own request id (the caller then parks ``q``).
    ``answered`` runs once the answer is committed (the hub's count of them: not for a poll rolled back and
    handed over again, nor for a replay that owes nothing)."""
    written: list[int] = []

    def write(conn: Connection, seq: int) -> None:
        owe(conn, *seal(opened.sender, AnswerMessage(q.request_id, NOT_ROUTED)))
        mark_applied(conn, opened.sender, opened.event_id, seq)
        written.append(seq)

    store.sequencer.append(lambda conn: applied_seq(conn, opened.sender, opened.event_id), write)
    if written:
        txn.after_commit(store.engine, answered)
