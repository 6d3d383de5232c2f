"""The flag map's messages between the hub and the agencies (ledger/linkage/map_messages.py).

Threat: a malicious hub or a peer sending hostile bytes inside a sealed message: each kind decodes strictly,
and the holdings of a map head decode to exactly what was encoded or to a ``malformed`` ledger error — never
another exception.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from ledger.errors import Code, FlagLedgerError, InputError
from ledger.linkage.flag_map import SparseMerkleMap, map_key
from ledger.linkage.map_messages import (
    FlagFiled,
    MapHeadMessage,
    ProvenQuery,
    Registered,
    decode_holdings,
    encode_holdings,
)
from ledger.linkage.messages import decode

CODE = "a" + "0" * 32


def holdings() -> str:
    m = SparseMerkleMap([(map_key("h1"), b"FLM1\x02"), (map_key("h2"), b"FLM1\x01")])
    return encode_holdings([(CODE, m.prove(map_key("h1")), m.prove(map_key("h3")))])


def test_each_kind_round_trips_and_refuses_what_is_not_its_own() -> None:
    for message in (
        Registered(CODE, "ab" * 256),
        FlagFiled("e" * 32, CODE, "NON_DISCLOSURE", "set", 7),
        MapHeadMessage("00" * 100, "11" * 64, holdings()),
        ProvenQuery("e" * 32, "131016", CODE, "児童手当", 74, "地方税関係情報", "auto", "ab"),
    ):
        assert decode(type(message), message.encode()) == message
    with pytest.raises(InputError):
        decode(Registered, b'{"code":"' + CODE.encode() + b'","proof":"AB"}')  # not lowercase hex
    with pytest.raises(InputError):
        decode(MapHeadMessage, b'{"head":"00","consistency":"11","holdings":""}')  # half a hash
    with pytest.raises(InputError):
        decode(FlagFiled, b'{"change_id":"' + b"e" * 32 + b'","code":"' + CODE.encode() + b'","flag":"X",'
               b'"action":"set","seq":1}')  # fmt: skip


def test_holdings_decode_exactly_or_fail_malformed() -> None:
    value = holdings()
    [(code, person, holding)] = decode_holdings(value)
    assert code == CODE and person.key == map_key("h1") and holding.value is None
    raw = bytes.fromhex(value)
    for cut in range(len(raw)):
        with pytest.raises(FlagLedgerError) as err:
            decode_holdings(raw[:cut].hex())
        assert err.value.code == Code.MALFORMED
    with pytest.raises(FlagLedgerError):
        decode_holdings(value + "00")
    rng = random.Random(20)
    for _ in range(200):
        bent = bytearray(raw)
        bent[rng.randrange(len(bent))] ^= 1 << rng.randrange(8)
        with contextlib.suppress(FlagLedgerError):  # a ledger error or a decoding; any other exception fails
            decode_holdings(bytes(bent).hex())
