"""The random history of the hub model (``hub_model.py``): the weighted acts and loop turns, crashes and lost
acknowledgements, one step at a time, with a check after each turn of the hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.linkage.names import HUB
from tests.adversarial.hub_model_parties import AGENCIES
from tests.support.hub_world import A, B, C

if TYPE_CHECKING:
    from tests.adversarial.hub_model import Model


OPS = (
    ("new", 3), ("protect", 4), ("release", 4), ("ask", 7), ("link", 2), ("move", 3), ("take_over", 3),
    ("companion", 1), ("file", 2), ("card", 2), ("advise", 3), ("decide", 4), ("deadline", 1),
    ("push", 6), ("hub", 8), ("pull", 6), ("crash", 2), ("ack", 2),
    ("unlink", 1), ("renumber", 1), ("proxy", 3),
)  # fmt: skip


def step(m: Model, op: str) -> None:
    """One act or one turn of a party's loop."""
    rng, w = m.rng, m.w
    if op == "new" or not m.person:
        m.new_person()
    elif op == "protect":
        m.protect(rng.choice((B, B, C, A)), m.any_number())
    elif op == "release":
        held = sorted(k for k, v in m.held.items() if v)
        if held:
            m.release(*rng.choice(held))
    elif op == "ask":
        querier, provider = rng.choice(((C, A), (C, A), (B, A), (A, C), (C, B)))
        m.ask(m.any_number(), querier, provider)
    elif op == "link":
        m.link(rng.choice(AGENCIES), m.any_number())
    elif op == "unlink":
        m.unlink()
    elif op == "renumber":
        m.renumber()
    elif op == "proxy":
        m.proxy_act()
    elif op == "move":
        m.move()
    elif op == "take_over":
        m.take_over(rng.choice(AGENCIES))
    elif op == "companion":
        m.companion()
    elif op == "file":
        w.bridges[rng.choice(AGENCIES)].file_person(m.any_number())
    elif op == "card":
        m.sign_in(m.any_number())
    elif op == "advise":
        m.advise(rng.choice(AGENCIES))
    elif op == "decide":
        m.decide(rng.choice(AGENCIES))
    elif op == "deadline":
        m.deadline()
    elif op == "push":
        w.bridges[rng.choice(AGENCIES)].push()
    elif op == "hub":
        w.hub.step(timeout_ms=0, max_records=rng.randint(1, 5))
    elif op == "pull":
        w.bridges[rng.choice(AGENCIES)].pull(timeout_ms=0)
    elif op == "crash":
        party = rng.choice((HUB, *AGENCIES))
        m.restart_hub() if party == HUB else w.bridge(party)
    else:
        m.lose_acks()


def history(m: Model, steps: int, after_each_hub_step: object = None) -> None:
    names, weights = zip(*OPS, strict=True)
    for _ in range(steps):
        op = m.rng.choices(names, weights)[0]
        step(m, op)
        made = getattr(after_each_hub_step, "made", None)
        if callable(made):
            made()  # the records a provider made in this step, and whether the hub held the person protected
        if op in ("hub", "crash", "ack") and callable(after_each_hub_step):
            after_each_hub_step()
