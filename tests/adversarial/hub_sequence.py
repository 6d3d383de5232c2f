"""What the hub's own sequence says, for the checks of ``test_leak_freedom_hub.py``: when each link was filed and
undone (read from the hub's inbox and applied ids), the persons the hub had joined by a sequence, and the intervals
of a flag that count for a person (docs/linkage.md, "Unlinks"). No clock is compared."""

from __future__ import annotations

from sqlalchemy import select

from ledger.hub.tables import hub_applied
from ledger.linkage.messages import LinkMessage, UnlinkMessage, decode
from ledger.linkage.names import HUB
from ledger.linkage.sealing import unseal
from ledger.linkage.transport import Topics
from tests.support.hub_nodes import HubNodes
from tests.support.hub_world import A

INF = float("inf")


def link_spans(w: HubNodes) -> dict[tuple[str, str], tuple[int, float]]:
    """(old person, new person) → the hub sequences the link was filed at and undone at (INF: in force), read
    from the hub's inbox (opened with the hub's key) and the hub's applied ids. A pair is linked once at most."""
    keys = w.hub.directory.sender_keys(w.nodes[A].app.clock())
    filed: dict[tuple[str, str], int] = {}
    undone: dict[tuple[str, str], int] = {}
    with w.hub.store.engine.connect() as conn:
        for value in w.broker.topics.get(Topics().inbox(HUB), []):
            opened = unseal(w.hub.keys.sealing, HUB, value, keys)
            if opened.kind not in (LinkMessage.kind, UnlinkMessage.kind):
                continue
            t = hub_applied.c
            seq = conn.execute(
                select(t.seq).where((t.sender == opened.sender) & (t.event_id == opened.event_id))
            ).scalar()
            link = decode(LinkMessage if opened.kind == LinkMessage.kind else UnlinkMessage, opened.payload)
            old, new = (w.hub.store.codes.person(opened.sender, c) for c in (link.old_code, link.new_code))
            if seq is not None and old is not None and new is not None:
                into = filed if opened.kind == LinkMessage.kind else undone
                into[old, new] = min(int(seq), into.get((old, new), int(seq)))
    return {pair: (seq, undone.get(pair, INF)) for pair, seq in filed.items()}


def chain_at(person: str, links: dict[tuple[str, str], tuple[int, float]], before: float) -> set[str]:
    """The person ids the hub had joined to ``person`` by links filed, and not undone, before ``before``."""
    edges = [(o, n) for (o, n), (s, e) in links.items() if s < before <= e]
    found, grew = {person}, True
    while grew:
        grew = False
        for o, n in edges:
            if (o in found) != (n in found):
                found |= {o, n}
                grew = True
    return found


def ever_joined(person: str, links: dict[tuple[str, str], tuple[int, float]], before: float) -> dict[str, float]:
    """Person id → the latest hub sequence, up to ``before``, at which the hub had it joined to ``person``: the
    chain just before each undo (a chain only grows between undos) and at ``before`` itself."""
    found: dict[str, float] = {}
    for at in sorted({before, *(e for _, e in links.values() if e < before)}):
        for p in chain_at(person, links, at):
            found[p] = at
    return found


def spans(changes: list, persons: dict[str, float], flags: tuple[str, ...], before: float) -> list[tuple]:
    """(holder, person, start, end) of every interval of ``flags`` on ``persons`` from the changes before
    ``before`` (end INF: open) that counts for the person: begun while its person id was joined to theirs
    (before ``persons[id]``) — the rule after an unlink (docs/linkage.md, "Unlinks")."""
    opened: dict[tuple, int] = {}
    found: list[tuple] = []
    for c in sorted(changes, key=lambda c: c.seq):
        if c.seq >= before or c.person not in persons or c.flag not in flags:
            continue
        key = (c.holder, c.person, c.flag)
        if c.action == "set":
            opened.setdefault(key, c.seq)
        elif key in opened:
            found.append((c.holder, c.person, opened.pop(key), c.seq))
    found += [(h, p, start, INF) for (h, p, _), start in opened.items()]
    return [(h, p, start, end) for h, p, start, end in found if start < persons[p]]
