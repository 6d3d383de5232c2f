"""The reading fast paths against the general ones on a real node (SQLite and PostgreSQL).

* ``log_rows`` (the audit's raw page read) gives the rows ``select_notifications`` gives.
* ``audit verify`` over rows whose stored stream id was tampered with names the row (it used to stop with the
  library's ValueError for an id that is no UUID) and accepts what the library's reading accepted.
* ``check_decodes`` (decode's checks without building the event) refuses exactly what ``decode`` refuses.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import pytest

from ledger.app import Actor
from ledger.audit.verify import verify_log
from ledger.errors import FlagLedgerError
from ledger.log.envelope import Envelope
from ledger.log.header import Header
from ledger.log.rows import log_rows
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import B
from tests.support import store

AGENCIES = (AgencySpec(B, "B市", "municipality"),)


@pytest.fixture
def node(make_node: Callable[..., Node], backend: str | None, person: Callable[[], str]) -> Node:
    n = make_node(AGENCIES, database_url=backend)
    app = n.app
    rid = app.request_flags(Actor(B, "req"), app.subject(person()), ["NON_DISCLOSURE"])
    app.approve_request(Actor(B, "apr"), rid)
    app.execute_request(Actor(B, "op"), rid)
    assert verify_log(app).ok
    return n


def test_log_rows_are_the_librarys_notifications(node: Node) -> None:
    expected = [
        (n.id, str(n.originator_id), n.originator_version, n.topic, n.state)
        for n in node.app.recorder.select_notifications(start=1, limit=1000)
    ]
    got = log_rows(node.app.recorder, 1, 1000)
    assert [(p, s, v, t, st) for p, s, _, v, t, st in got] == expected
    assert log_rows(node.app.recorder, 3, 2) == got[2:4]


def _set_stream_id(node: Node, position: int, value: Any) -> None:
    store.execute(
        node,
        "UPDATE stored_events SET originator_id = ? WHERE rowid = ?",
        "UPDATE flagledger_events SET originator_id = %s WHERE notification_id = %s",
        (value, position),
    )


@pytest.mark.parametrize("how", ["upper", "garbage", "blob", "other"])
def test_a_tampered_stream_id_is_named_or_read_as_the_library_reads_it(node: Node, how: str) -> None:
    if node.config.database_url and how in ("garbage", "blob", "upper"):
        pytest.skip("a uuid column holds only UUIDs (and prints them in one form)")
    position, stream, *_ = store.rows(node)[-1]
    value: Any = {
        "upper": stream.replace("-", "").upper(),  # the same UUID: the library's reader accepts it
        "garbage": "not-a-uuid",
        "blob": bytes.fromhex(stream.replace("-", "")),
        "other": str(uuid4()) if node.config.database_url else uuid4().hex,  # a stream no header names
    }[how]
    _set_stream_id(node, position, value)
    report = verify_log(node.app)
    if how == "upper":
        assert report.ok
    else:
        assert report.first_bad is not None and report.first_bad.position == position
        assert report.first_bad.code == "broken_chain"


def _forged(env: Envelope, **changes: Any) -> Envelope:
    header = {**json.loads(env.header_bytes), **changes.pop("header", {})}
    return Envelope(
        Header.from_bytes(json.dumps(header).encode()).to_bytes(), changes.get("payload", env.payload), env.seal
    )


def _outcome(f: Callable[[Envelope], Any], env: Envelope) -> tuple[str, str]:
    try:
        f(env)
    except FlagLedgerError as exc:
        return ("refused", exc.code)
    return ("ok", "")


PAYLOADS = [
    b"{",
    b"[]",
    b"\xff",
    b"null",
    b'{"class_version": 1.0}',
    b'{"class_version": true}',
    b'{"class_version": 0}',
    b'{"class_version": 2}',
    b'{"class_version": 99}',
    b'{"class_version": "1"}',
    b'{"timestamp": {"_type_": "nope", "_data_": 1}}',
    b'{"timestamp": {"_type_": "datetime_iso", "_data_": 1}}',
]
TOPICS = ["os:system", "nope", "ledger.domain.flags:Nope.Event", "ledger.log.envelope:Envelope"]


def test_check_decodes_refuses_what_decode_refuses(node: Node) -> None:
    mapper = node.app.signed_mapper
    envelopes = [env for _, _, env in node.app.envelopes()]
    cases = list(envelopes)
    for env in envelopes:
        cases += [_forged(env, payload=p) for p in PAYLOADS]
        cases += [_forged(env, header={"topic": t}) for t in TOPICS]
    decided = set()
    for env in cases:
        expected = _outcome(mapper.decode, env)
        assert _outcome(mapper.check_decodes, env) == expected, env.payload
        decided.add(expected)
    assert ("ok", "") in decided and ("refused", "malformed") in decided and ("refused", "newer_schema") in decided


def test_decode_with_the_rows_stream_is_decode(node: Node) -> None:
    mapper = node.app.signed_mapper
    for _, row, env in node.app.envelopes():
        a, b = mapper.decode(env), mapper.decode(env, row.originator_id)
        assert type(a) is type(b) and vars(a) == vars(b)
    with contextlib.suppress(FlagLedgerError):
        mapper.decode(_forged(env, header={"stream": "not-a-uuid"}))


MORE_PAYLOADS = [
    b" {}",
    b"{} ",
    b"{}x",
    b"{}{}",
    b"",
    b"\xef\xbb\xbf{}",
    b'{"a": NaN}',
    b'{"a": 1e400}',
    b'{"a": "\\u00e9", "b": [1, {"_type_": "uuid_hex", "_data_": "00000000000000000000000000000001"}]}',
    b'{"_type_": "uuid_hex", "_data_": "zz"}',
    b'{"_type_": "uuid_hex", "_data_": 1}',
    b'{"_type_": "decimal_str", "_data_": "1.5", "x": 1}',
    b'"\\ud800"',
    b"[1, 2",
    b"1",
    b"true",
    b'{"x": "\x01"}',
    '{"x": "児童手当"}'.encode(),
    '{"x": "児童手当"}'.encode("utf-16"),
]


def test_payload_scan_decodes_as_the_transcoder(node: Node) -> None:
    mapper = node.app.signed_mapper
    assert mapper._scan is not None  # the fast path is in use with the library's JSON transcoder
    env = next(iter(node.app.envelopes()))[2]
    for payload in [e.payload for _, _, e in node.app.envelopes()] + PAYLOADS + MORE_PAYLOADS:
        forged = Envelope(env.header_bytes, payload, env.seal)
        try:
            expected: Any = ("ok", mapper.transcoder.decode(payload))
        except Exception as exc:
            expected = ("refused", f"payload of {env.header.topic} cannot be decoded: {exc}")
        try:
            got: Any = ("ok", mapper._payload(forged))
        except FlagLedgerError as exc:
            got = ("refused", str(exc))
        assert got == expected, payload
