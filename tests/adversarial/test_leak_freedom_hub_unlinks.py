"""What an unlink does at the hub, against the rules of docs/operations.md ("Number changes"), found by the hub
leak-freedom model (``hub_model.py``) once it played unlinks and second number changes (issue 19). Three agency
nodes in hub mode and the hub on SQLite, in-memory broker.

The shared topology's rules: a second change keeps every protection held on either number at that moment on
both (and the first number retired); a wrong link undone keeps protecting both numbers with a flag set through
the link; and the portal's sticky cutoff never moves back — records hidden while the numbers were one person
stay hidden.

The first was a real bug, fixed: the node sent a second change's unlink like a wrong link's, the hub parted the
first number from the second, and a query about the third was answered automatically while a holder protected
the first. Now the bridge sends no unlink for a second change (``consumers/linkage_acts.py``): the hub keeps
the link, and the second number's link to the third makes a chain — every protection on all three numbers.

The other two were gaps, fixed at the hub (``h0022``): it deleted an undone link and kept no history of it. Now
it keeps each undone link with the sequences it was filed and undone at (``hub_undone_links``), and a holding on
a number once joined to the person's that began before the undo still counts for them
(``ledger.hub.links.joined``): the staff mark until its holder releases it, the page's hiding for good —
docs/linkage.md, "What an undone link leaves behind".

Threat: the perpetrator asking at B about X by her newest number, or reading her new number's portal page after
a number change is undone.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.hub.log import open_hub_store
from ledger.linkage.codes import portal_code
from ledger.linkage.names import PORTAL
from tests.adversarial.hub_checks import Sticky, card_pages
from tests.adversarial.hub_epilogue import settle
from tests.adversarial.hub_model import ND, Model
from tests.conftest import NodeFactory
from tests.support.hub_nodes import hub_nodes
from tests.support.hub_world import A, B, C


@pytest.fixture
def model(make_node: NodeFactory, tmp_path: Path) -> Iterator[Model]:
    store = open_hub_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, (A, B, C))
    try:
        yield Model(w, random.Random(7))
    finally:
        w.close()
        store.close()


def test_a_second_change_keeps_the_first_numbers_protection(model: Model) -> None:
    """C protects X under her first number; B records her number change, then a second one (B undoes its link
    as a second change and links the second number to the third). B's query about her third number must be held
    for staff: C's protection still covers her."""
    m, sticky = model, Sticky(model)
    first = m.new_person()
    assert m._chain(C, first, [ND])
    assert m.link(B, first) is not None
    settle(m, sticky)
    third = m.renumber()
    assert third is not None
    settle(m, sticky)
    asked = m.ask(third, B, A)
    settle(m, sticky)
    assert m.w.bridges[B].query(asked)["status"] == "in_progress", "answered automatically: protection lost"
    keys = m.w.portal_keys
    assert keys is not None
    for retired in m.numbers_of(first)[:-1]:  # neither earlier card counts as her
        m.sign_in(retired)
    settle(m, sticky)
    store = m.w.hub.store
    for retired in m.numbers_of(first)[:-1]:
        person = store.codes.person(PORTAL, portal_code(keys.secret, retired))
        assert person is not None and store.codes.next(person) is not None, "an earlier card still counts"


def test_a_flag_set_through_a_wrong_link_keeps_protecting_both_numbers(model: Model) -> None:
    """B links X's number to a new one; C protects the new number while they are linked; B undoes the link as
    wrong. C's flag was set through the link: C's query about the old number must still be held for staff."""
    m, sticky = model, Sticky(model)
    old = m.new_person()
    new = m.link(B, old)
    assert new is not None
    m.w.bridges[A].file_person(new)
    settle(m, sticky)
    assert m._chain(C, new, [ND])
    settle(m, sticky)
    m.unlink()
    settle(m, sticky)
    asked = m.ask(old, C, A)
    settle(m, sticky)
    assert m.w.bridges[C].query(asked)["status"] == "in_progress", "answered automatically: protection lost"


def test_records_hidden_while_linked_stay_hidden_after_the_unlink(model: Model) -> None:
    """X's number changes (B's link); C asks A about the new number (a record on it); B protects the old number:
    the record is hidden on the new card's page. B undoes the link: the record must stay hidden there."""
    m, sticky = model, Sticky(model)
    old = m.new_person()
    new = m.link(B, old)
    assert new is not None
    m.sign_in(new)
    m.ask(new, C, A)
    settle(m, sticky)
    assert m._chain(B, old, [ND])
    settle(m, sticky)
    [(code, (shown, hidden))] = [(c, p) for c, p in card_pages(m).items() if m.cards[c] == new]
    assert hidden and not shown  # the control: hidden while linked
    m.unlink()
    settle(m, sticky)
    assert not card_pages(m)[code][0] & hidden, "a record hidden while the numbers were one person shown again"
