"""Two projectors of one node catching up at once (the ``node`` loop and a CLI command, or a rebuild).

Found by the broker-restart fault test: both read the tracking positions, both applied the same events,
and the second failed on ``flag_history``'s primary key (a table without one would have doubled rows).
Regression: each page now takes the projection writers' lock and re-reads the positions under it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Connection

from ledger.app import Actor
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import Node
from projections.base import Projection, Projector
from tests.conftest import B
from tests.faults.checks import projection_dump


class Stall(Projection):
    """Holds the first projector inside its page until the second has read its (now stale) positions."""

    name = "stall"
    tables = ()
    topics = frozenset({"ledger.domain.flags:Protection.FlagsSet"})

    def __init__(self, rival_read: threading.Event) -> None:
        self.rival_read = rival_read

    def handle(self, conn: Connection, event: Any, env: Envelope, position: int) -> None:
        self.rival_read.wait(10)
        time.sleep(0.3)  # the rival is now waiting for the lock (or, before the fix, for the write)


class Reporting(Projector):
    def __init__(self, *args: Any, read: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read = read

    def positions(self) -> dict[str, int]:
        found = super().positions()
        self.read.set()
        return found


def test_two_projectors_at_once_apply_each_event_once(node: Node, person) -> None:
    node.projector.catch_up()
    for _ in range(3):
        rid = node.app.request_flags(Actor(B, "req"), person(), ["NO_AUTO_RESPONSE"])
        node.app.approve_request(Actor(B, "apr"), rid)
        node.app.execute_request(Actor(B, "op"), rid)
    rival_read = threading.Event()
    first = Projector(node.app, node.engine, [Stall(rival_read), *node.projector.projections])
    second = Reporting(node.app, node.engine, node.projector.projections, read=rival_read)
    errors: list[BaseException] = []

    def run(projector: Projector) -> None:
        try:
            projector.catch_up()
        except BaseException as exc:  # reported below, with the thread's name
            errors.append(exc)

    t1 = threading.Thread(target=run, args=(first,))
    t1.start()
    time.sleep(0.2)  # the first is inside its page
    t2 = threading.Thread(target=run, args=(second,))
    t2.start()
    t1.join(60)
    t2.join(60)
    assert not errors, errors
    live = projection_dump(node)
    node.projector.rebuild()
    assert live == projection_dump(node)
