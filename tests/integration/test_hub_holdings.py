"""A holder's own proofs in each head (``MapHeads.holdings_of``) read with one query of the code map, not one per
holding (ledger/hub/heads.py, ``SqlCodeMap.holder_codes``), SQLite and PostgreSQL.

Threat: a malicious hub, checked by the holder. A holder audits the hub's map through the holdings each head
shows it; read another way they must be exactly what they were — every holding it has a code for, in its own
code order, none of another holder's, and the same window of ``MAX_HOLDINGS`` moving with each head — or a
holder would stop seeing (and so stop checking) some of its flags.
"""

from __future__ import annotations

import secrets

from sqlalchemy import insert

from ledger.hub.heads import MapHeads
from ledger.hub.log import HubStore
from ledger.hub.tables import hub_codes
from ledger.linkage.codes import persons_of
from ledger.linkage.flag_state import HubFlagMap
from ledger.linkage.hiding import FlagChange
from ledger.linkage.map_messages import MAX_HOLDINGS, Holding
from ledger.linkage.person_keys import PersonKeyProver
from ledger.log.signing import Signer
from tests.support.map_hub import vrf_key

B, C, P, Q = "131016", "131024", "132012", "132021"
SIZES = {B: 700, C: 60, P: 3}  # B past the few named in the query, C and P within it; Q holds nothing


def _generated(store: HubStore) -> MapHeads:
    """A generated map: each holder's flags on its own people, some people registered at several holders (and
    holding there or not), some holdings with no code of the holder's (a flag under another of the person's
    numbers), and codes of people the holder holds nothing on."""
    persons = [secrets.token_hex(16) for _ in range(900)]
    rows: list[dict[str, str]] = []
    changes, seq = [], 0
    for holder, size in SIZES.items():
        held = persons[: size + 20] if holder == B else secrets.SystemRandom().sample(persons, size + 20)
        for i, person in enumerate(held):
            if i % 17 != 5:  # every 17th holding has no code of the holder's
                rows.append({"holder": holder, "code": secrets.token_hex(16), "person": person})
            if i < size:
                seq += 1
                changes.append(FlagChange(seq, person, holder, "NON_DISCLOSURE", "set"))
    for person in persons[-40:]:  # registered at Q and C, held by neither
        rows.append({"holder": Q, "code": secrets.token_hex(16), "person": person})
    with store.engine.begin() as conn:  # each holder's people drawn without repeats: one code per (person, holder)
        conn.execute(insert(hub_codes), rows)
    heads = MapHeads(Signer.generate("hub"), PersonKeyProver(vrf_key()))
    codes = store.codes
    heads.flags = HubFlagMap(chain=lambda p: persons_of(codes, p), key_of=heads.key_of,
                             code_of=lambda p, h: codes.codes(p).get(h, ""))  # fmt: skip
    for change in changes:
        heads.flags.apply(change)
    return heads


def _one_read_per_holding(heads: MapHeads, store: HubStore, holder: str, seq: int) -> list[Holding]:
    """``holdings_of`` as it was: the code map read once per holding."""
    coded = [(store.codes.codes(p).get(holder), p) for p, who in heads.flags.holdings if who == holder]
    mine = sorted((code, person) for code, person in coded if code is not None)
    if len(mine) > MAX_HOLDINGS:
        start = seq * MAX_HOLDINGS % len(mine)
        mine = (mine[start:] + mine[:start])[:MAX_HOLDINGS]
    return [(code, *heads.flags.holder_proofs(person, holder)) for code, person in mine]


def test_one_query_shows_each_holder_the_same_holdings_as_one_read_per_holding(hub: HubStore) -> None:
    """Malicious hub checked by its holders: on a generated map, every holder is shown under every head the same
    holdings, proofs and window as before — B's many (the holder's codes read once), C's and P's few (named in
    the query), Q's none — and B's windows over the heads cover every holding it has a code for."""
    heads = _generated(hub)
    for holder in (B, C, P, Q):
        for seq in (0, 1, 2, 7, 15):
            assert heads.holdings_of(hub, holder, seq) == _one_read_per_holding(heads, hub, holder, seq)
    coded_b = {code for code, *_ in _one_read_per_holding(heads, hub, B, 0)} | {
        code for seq in range(1, 20) for code, *_ in heads.holdings_of(hub, B, seq)
    }
    held_b = [p for p, who in heads.flags.holdings if who == B]
    assert len(coded_b) == sum(1 for p in held_b if B in hub.codes.codes(p)) < len(held_b)
    assert len(heads.holdings_of(hub, C, 0)) == MAX_HOLDINGS and heads.holdings_of(hub, Q, 0) == []
    coded_p = [p for p, who in heads.flags.holdings if who == P and P in hub.codes.codes(p)]
    assert len(heads.holdings_of(hub, P, 0)) == len(coded_p)
