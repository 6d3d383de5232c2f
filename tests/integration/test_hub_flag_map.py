"""The hub's flag map rebuilt from what the hub filed (ledger/hub/flag_map_load.py), SQLite and PostgreSQL.

Threat: a malicious hub, and an auditor checking it. The root the hub signs follows from its database alone:
a rebuild from the filed flag changes gives the same root as the map kept in memory while they were filed, so
an auditor with a copy of the hub's database recomputes a signed head's map root. The holder's and the
provider's checks pass against the rebuilt map, across a number change, and after a wrong link is undone.
"""

from __future__ import annotations

import itertools
import secrets
from uuid import uuid4

import pytest

from ledger.hub import links
from ledger.hub.flag_map_load import load_flag_map
from ledger.hub.log import HubStore
from ledger.linkage.codes import Registration, agency_code, hub_person, link_numbers, register
from ledger.linkage.flag_map import map_key
from ledger.linkage.flag_state import HubFlagMap
from ledger.linkage.hiding import FlagChange
from ledger.linkage.messages import LinkMessage, UnlinkMessage
from ledger.linkage.routing import Freshness, check_own_flags, verify_routing
from ledger.log.signing import Signer
from tests.support.people import individual_number

B, C, P = "131016", "131024", "132012"
HUB_SECRET = secrets.token_bytes(32)
KEYS = {party: secrets.token_bytes(32) for party in (B, C, P)}
HUB = Signer.generate("hub")
pytestmark = pytest.mark.usefixtures("leader_hub")  # these tests file flag changes in the hub's log, as its leader


def code(party: str, number: str) -> str:
    return agency_code(KEYS[party], party, number)


def test_a_rebuilt_map_has_the_root_the_hub_signed_and_passes_the_checks(hub: HubStore) -> None:
    x, y, x_new = individual_number(), individual_number(), individual_number()
    for party, number in itertools.product((B, C, P), (x, y, x_new)):
        register(hub.codes, HUB_SECRET, Registration(party, code(party, number), number))
    live = HubFlagMap(code_of=lambda person, holder: hub.codes.codes(person).get(holder, ""))
    ids = itertools.count()

    def flag(holder: str, number: str, flag: str, action: str) -> None:
        seq = hub.log.flag(holder, code(holder, number), flag, action, f"c{next(ids)}")  # type: ignore[arg-type]
        live.apply(FlagChange(seq, hub_person(HUB_SECRET, number), holder, flag, action))  # type: ignore[arg-type]

    flag(B, x, "NON_DISCLOSURE", "set")
    flag(B, x, "NO_AUTO_RESPONSE", "set")
    flag(C, y, "NO_AUTO_RESPONSE", "set")
    flag(C, y, "NO_AUTO_RESPONSE", "release")
    flags, last = load_flag_map(hub.engine, hub.codes)
    assert last == 4 and flags.root() == live.root()
    head = flags.head(HUB, seq=last, log_size=last, log_root=bytes(32), time="t")
    person_x = hub_person(HUB_SECRET, x)
    check_own_flags(head, *flags.holder_proofs(person_x, B), HUB.public_key, holder=B, code=code(B, x),
                    person_key=map_key(person_x), expected={"NON_DISCLOSURE", "NO_AUTO_RESPONSE"})  # fmt: skip
    decision, proof = flags.route(HUB, request=uuid4().hex, provider=P, person=hub_person(HUB_SECRET, y), head=head)
    assert decision.action == "auto"
    assert not verify_routing(decision, head, proof, HUB.public_key, provider=P,
                              person_key=map_key(hub_person(HUB_SECRET, y)), freshness=Freshness()).flags  # fmt: skip

    # X's number changes: the new number's leaf carries B's flags, in a rebuild and incrementally
    link_numbers(hub.codes, B, code(B, x), code(B, x_new))
    flags.relink(person_x)
    new_x = hub_person(HUB_SECRET, x_new)
    assert flags.flags_of(new_x) == {"NON_DISCLOSURE", "NO_AUTO_RESPONSE"}
    flag(C, y, "NON_DISCLOSURE", "set")
    more, last = load_flag_map(hub.engine, hub.codes, into=flags, after=last)
    rebuilt, _ = load_flag_map(hub.engine, hub.codes)
    assert last == 5 and more.root() == rebuilt.root()
    head = rebuilt.head(HUB, seq=last, log_size=last, log_root=bytes(32), time="t")
    decision, proof = rebuilt.route(HUB, request=uuid4().hex, provider=P, person=new_x, head=head)
    assert decision.action == "staff"
    assert verify_routing(decision, head, proof, HUB.public_key, provider=P, person_key=map_key(new_x),
                          freshness=Freshness()).flags == {"NON_DISCLOSURE", "NO_AUTO_RESPONSE"}  # fmt: skip


def test_the_map_keeps_a_flag_set_through_a_wrong_link_after_the_undo(hub: HubStore) -> None:
    """The perpetrator asking about X's old number after B undoes a wrong link, with the flag map on: C
    protected the new number while the two were linked, so the signed decision about the old one stays
    ``staff`` until C releases (as the hub's staff mark, ``ledger.hub.routing``); a flag set on the new
    number only after the undo never reaches the old one's leaf. In memory as filed and in a rebuild alike."""
    x, x_new = individual_number(), individual_number()
    for party, number in itertools.product((B, C, P), (x, x_new)):
        register(hub.codes, HUB_SECRET, Registration(party, code(party, number), number))
    old, new = hub_person(HUB_SECRET, x), hub_person(HUB_SECRET, x_new)
    live, _ = load_flag_map(hub.engine, hub.codes)
    ids = itertools.count()

    def flag(holder: str, number: str, flag: str, action: str) -> None:
        seq = hub.log.flag(holder, code(holder, number), flag, action, f"c{next(ids)}")  # type: ignore[arg-type]
        live.apply(FlagChange(seq, hub_person(HUB_SECRET, number), holder, flag, action))  # type: ignore[arg-type]

    link = LinkMessage(code(B, x), code(B, x_new))
    link_numbers(hub.codes, B, link.old_code, link.new_code)
    hub.sequencer.append(lambda _: None, links.made(hub.codes, B, link))
    live.relink(old)
    flag(C, x_new, "NON_DISCLOSURE", "set")
    undo = links.unlink(hub.engine, hub.codes, B, UnlinkMessage(link.old_code, link.new_code))
    assert undo is not None
    hub.sequencer.append(lambda _: None, undo)
    live.relink(old)
    live.relink(new)
    flag(B, x_new, "NO_AUTO_RESPONSE", "set")  # after the undo: the new number's own, not the old one's

    rebuilt, last = load_flag_map(hub.engine, hub.codes)
    assert rebuilt.root() == live.root()
    assert rebuilt.flags_of(old) == {"NON_DISCLOSURE"}
    assert rebuilt.flags_of(new) == {"NON_DISCLOSURE", "NO_AUTO_RESPONSE"}
    head = rebuilt.head(HUB, seq=last, log_size=last, log_root=bytes(32), time="t")
    decision, proof = rebuilt.route(HUB, request=uuid4().hex, provider=P, person=old, head=head)
    assert decision.action == "staff"
    assert verify_routing(decision, head, proof, HUB.public_key, provider=P, person_key=map_key(old),
                          freshness=Freshness()).flags == {"NON_DISCLOSURE"}  # fmt: skip

    flag(C, x_new, "NON_DISCLOSURE", "release")  # the holder releases: the cover ends on both numbers
    assert live.flags_of(old) == frozenset()
    assert load_flag_map(hub.engine, hub.codes)[0].root() == live.root()
