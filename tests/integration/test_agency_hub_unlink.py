"""Undoing a number change through the hub (issue 19): a link between two numbers is undone at the hub only by
the agency that made it (the writer-authority rule of ``PseudonymLink.Unlinked``, per hop), and a relink is
a new link. Three nodes in hub mode and an in-process hub (tests/support/hub_nodes.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.app import Actor
from ledger.errors import Code
from ledger.hub.tables import hub_link_makers, hub_links, hub_parked, hub_undone_links
from ledger.linkage.messages import UnlinkMessage
from ledger.runtime.linkage import code_of
from tests.conftest import NodeFactory
from tests.integration.test_agency_hub_mode import _world
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, release_flag, set_flag
from tests.support.hub_world import A, B, C
from tests.support.people import individual_number


@pytest.fixture
def world(make_node: NodeFactory, backend: str | None, tmp_path: Path) -> Iterator[HubNodes]:
    yield from _world(make_node, backend, tmp_path)


def _hub(w: HubNodes, table: object) -> list[tuple[object, ...]]:
    with w.hub.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table))]  # type: ignore[call-overload]


def _ask(w: HubNodes, number: str) -> str:
    asked = w.bridges[C].ask(Actor(C, "counter"), A, number, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    w.settle()
    return str(w.bridges[C].query(asked)["status"])


def test_only_the_linking_agency_undoes_a_link_at_the_hub(world: HubNodes) -> None:
    """Peer agency forging another's unlink (to strip a victim's new number of the protection held on the old
    one, so an automatic answer gives the new number away); the perpetrator asking at C: B protects X's old
    number and links it to the new one; C, with its own valid keys and codes for both numbers, sends the
    unlink: parked (``wrong_agency``), the link stays, C's query about the new number is still held. B undoes
    its link with four eyes: the hub parts the numbers (the new number is answered automatically again); B
    links the old number anew (a relink): one new link, made by B."""
    old, new, newer = individual_number(), individual_number(), individual_number()
    b = world.nodes[B].app
    set_flag(world.nodes[B], B, old, "NON_DISCLOSURE")
    b.approve_link(Actor(B, "apr"), b.request_link(Actor(B, "req"), old, new, "個人番号の変更"))
    for number in (old, new, newer):
        world.bridges[A].file_person(number)
    world.settle()
    (link,) = _hub(world, hub_links)
    assert [m[2] for m in _hub(world, hub_link_makers)] == [B]

    c_codes = [code_of(world.nodes[C].app.subject(n)) for n in (old, new)]
    world.bridges[C].file_person(old)
    world.bridges[C].file_person(new)
    world.settle()
    world.bridges[C].end.send(UnlinkMessage(*c_codes))
    world.settle()
    assert [p[5] for p in _hub(world, hub_parked)] == [Code.WRONG_AGENCY]
    assert _hub(world, hub_links) == [link]
    assert _ask(world, new) == "in_progress"  # still held: the old number's flag covers the new one

    b.approve_link(Actor(B, "apr"), b.request_unlink(Actor(B, "req"), old, "誤った紐付け"))
    world.settle()
    assert _hub(world, hub_links) == [] and _hub(world, hub_link_makers) == []
    [(_, undone_old, undone_new, filed_at)] = _hub(world, hub_undone_links)  # kept, with its sequence
    assert (undone_old, undone_new) == link and filed_at > 0
    # parted, but B's flag covered the new number while they were joined and still stands: an automatic answer
    # would tell whoever asks about the new number that the protection went (docs/linkage.md, "Unlinks")
    assert _ask(world, new) == "in_progress"
    assert _ask(world, old) == "in_progress"  # the old one is still the protected person's

    b.approve_link(Actor(B, "apr"), b.request_link(Actor(B, "req"), old, newer, "個人番号の変更"))
    world.settle()
    assert len(_hub(world, hub_links)) == 1 and [m[2] for m in _hub(world, hub_link_makers)] == [B]
    assert _ask(world, newer) == "in_progress"
    assert len(_hub(world, hub_parked)) == 1  # B's unlink and relink were all taken

    release_flag(world.nodes[B], B, old, "NON_DISCLOSURE")
    world.settle()
    assert _ask(world, new) == "answered"  # the cover an undone link left ends with the holder's release
