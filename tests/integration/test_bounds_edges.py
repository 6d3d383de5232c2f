"""Every text field bounded at every edge: the bound itself is accepted, one character more is refused, with the
field named and the value never echoed — at the API (422), the CLI (exit 2), in-process (InputError) and at
ingest (a peer's event parked ``oversize``), and nothing over a bound ever reaches a view.

The attack (issue 16, attack 6): a ``procedure`` over 200 characters, from the CLI, an in-process query or any
peer's event, made PostgreSQL view writes fail with ``StringDataRightTruncation``: every view and the request
path failed on that node and on every PostgreSQL peer, and a rebuild failed again.

Threats: **a peer agency** (its oversize event must stop no node), **a shell user** and API callers (junk
refused before anything is stored) and **the perpetrator** (no value echoed: it may be an individual number).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select

from consumers.ingest import Outcome, PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import Actor, FlagLedger
from ledger.cli.main import main as cli
from ledger.domain import bounds
from ledger.domain.flags import Protection
from ledger.domain.identity import ProxyRegistration
from ledger.domain.provision import ProbeNotice, ProvisionRequest
from ledger.errors import InputError, RuleViolation
from ledger.runtime.bootstrap import AgencySpec, Node
from projections.portal import portal_records
from projections.queues import PROBE_PROCEDURE, probe_queue
from tests.conftest import A, B
from tests.support.api import auth, client
from tests.support.staff import signed_evidence
from tests.support.trust import trust

SECRET = "1234-5678-9012"  # stands for what must never come back in an answer


def at_bound(bound: bounds.Bound) -> str:
    return SECRET + "あ" * (bound.max - len(SECRET))


def over(bound: bounds.Bound) -> str:
    return SECRET + "x" * (bound.max + 1 - len(SECRET))


def _protect(node: Node, agency: str, subject: str) -> None:
    rid = node.app.request_flags(Actor(agency, "req"), subject, ["NO_AUTO_RESPONSE"])
    node.app.approve_request(Actor(agency, "apr"), rid)
    node.app.execute_request(Actor(agency, "op"), rid)


def _protected(node: Node, person: Callable[[], str]) -> str:
    x = person()
    _protect(node, A, x)
    return x


# -- API ----------------------------------------------------------------------------------------------------
Setup = Callable[[Node, Callable[[], str]], tuple[str, str, str, dict[str, Any]]]  # → method path, staff, body


def _held(node: Node, person: Callable[[], str]) -> str:
    x = person()
    _protect(node, B, x)
    return node.app.request_provision(
        Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).request_id


API: dict[str, tuple[bounds.Bound, Setup]] = {
    "notes": (bounds.NOTE, lambda n, p: ("/api/v1/cases", A, "req", {"victim": p()})),
    "explanation": (
        bounds.NOTE,
        lambda n, p: ("/api/v1/flag-requests", A, "req", {"subject": p(), "flags": ["NON_DISCLOSURE"]}),
    ),
    "note": (
        bounds.NOTE,
        lambda n, p: (
            f"/api/v1/flag-requests/{n.app.request_flags(Actor(A, 'req'), p(), ['NON_DISCLOSURE'])}/approve",
            A,
            "apr",
            {},
        ),
    ),
    "reason": (
        bounds.NOTE,
        lambda n, p: (
            f"/api/v1/flag-requests/{n.app.request_flags(Actor(A, 'req'), p(), ['NON_DISCLOSURE'])}/reject",
            A,
            "apr",
            {},
        ),
    ),
    "procedure": (
        bounds.PROCEDURE,
        lambda n, p: (
            "/api/v1/provision-requests",
            A,
            "counter",
            {"provider": B, "subject": p(), "legal_item": 74, "info_kind": "地方税関係情報"},
        ),
    ),
    "info_kind": (
        bounds.INFO_KIND,
        lambda n, p: (
            "/api/v1/provision-requests",
            A,
            "counter",
            {"provider": B, "subject": p(), "legal_item": 74, "procedure": "児童手当"},
        ),
    ),
    "purpose": (bounds.PURPOSE, lambda n, p: ("/api/v1/queries/timeline", A, "aud", {"subject": p()})),
    "subject": (bounds.SUBJECT, lambda n, p: ("/api/v1/queries/counter", A, "counter", {})),
}
PROPOSE_NOTE = "propose-note"
# fields the law catalogue checks after their bound (ledger.domain.law): no real procedure is 200 characters
LAW_CHECKED = {"procedure": "procedure_not_in_basis", "info_kind": "info_kind_not_permitted"}


@pytest.mark.parametrize("field", [*API, PROPOSE_NOTE])
def test_the_api_takes_a_field_at_its_bound_and_answers_422_naming_it_one_over(
    sqlite_node: Node, person: Callable[[], str], field: str
) -> None:
    """API callers (and the perpetrator reading answers): 422 names the field, never echoes the value."""
    node = sqlite_node
    http = client(node)
    if field == PROPOSE_NOTE:
        bound, path, agency, staff, body, name = bounds.NOTE, "", B, "rev", {}, "note"
        path = f"/api/v1/provision-requests/{_held(node, person)}/propose"
        body = {"decision": "refuse", "applicant_check": "unknown"}
    else:
        bound, setup = API[field]
        path, agency, staff, body = setup(node, person)
        name = field
    headers = auth(node, agency, staff)
    refused = http.post(path, json={**body, name: over(bound)}, headers=headers)
    assert refused.status_code == 422, refused.text
    assert [name] in [e["loc"][-1:] for e in refused.json()["fields"]], refused.text
    assert SECRET not in refused.text and "x" * 50 not in refused.text
    value = "123456789018".ljust(bound.max) if name == "subject" else at_bound(bound)
    accepted = http.post(path, json={**body, name: value}, headers=headers)
    if name in LAW_CHECKED:  # within its bound, then refused by the law catalogue (409), still not echoed
        assert accepted.status_code == 409 and accepted.json()["code"] == LAW_CHECKED[name], accepted.text
        assert SECRET not in accepted.text
        return
    assert accepted.status_code in (200, 201), accepted.text


@pytest.mark.parametrize("item", [True, "74", 74.5, 0, 201])
def test_legal_item_true_is_not_item_1(sqlite_node: Node, person: Callable[[], str], item: object) -> None:
    """API callers: JSON true was read as item 1 (a query under a legal basis nobody asked for)."""
    http = client(sqlite_node)
    headers = auth(sqlite_node, A, "counter")  # (issuing the token is recorded)
    before = sqlite_node.app.max_position()
    answer = http.post(
        "/api/v1/provision-requests",
        headers=headers,
        json={"provider": B, "subject": person(), "legal_item": item, "procedure": "p", "info_kind": "i"},
    )
    assert answer.status_code == 422 and ["legal_item"] in [e["loc"][-1:] for e in answer.json()["fields"]]
    assert sqlite_node.app.max_position() == before


# -- CLI and in-process -------------------------------------------------------------------------------------
def _cli(node: Node, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = cli(["--data-dir", str(node.config.data_dir), *argv])
    except SystemExit as stop:
        code = int(stop.code or 0)
    return code, capsys.readouterr().err


CLI: dict[str, tuple[bounds.Bound, Callable[[Node, Callable[[], str]], list[str]]]] = {
    "--procedure": (
        bounds.PROCEDURE,
        lambda n, p: [
            "provision",
            "request",
            "--as",
            f"{A}/counter",
            "--provider",
            B,
            "--subject",
            p(),
            "--item",
            "74",
            "--info-kind",
            "地方税関係情報",
        ],
    ),
    "--info-kind": (
        bounds.INFO_KIND,
        lambda n, p: [
            "provision",
            "request",
            "--as",
            f"{A}/counter",
            "--provider",
            B,
            "--subject",
            p(),
            "--item",
            "74",
            "--procedure",
            "児童手当",
        ],
    ),
    "--notes": (bounds.NOTE, lambda n, p: ["case", "open", "--as", f"{A}/req", "--victim", p()]),
    "--explanation": (
        bounds.NOTE,
        lambda n, p: ["flag", "request", "--as", f"{A}/req", "--subject", p(), "--flag", "NON_DISCLOSURE"],
    ),
    "--note": (
        bounds.NOTE,
        lambda n, p: [
            "flag",
            "approve",
            "--as",
            f"{A}/apr",
            str(n.app.request_flags(Actor(A, "req"), p(), ["NON_DISCLOSURE"])),
        ],
    ),
    "--reason": (
        bounds.NOTE,
        lambda n, p: [
            "flag",
            "reject",
            "--as",
            f"{A}/apr",
            str(n.app.request_flags(Actor(A, "req"), p(), ["NON_DISCLOSURE"])),
        ],
    ),
    "--name": (
        bounds.NAME,
        lambda n, p: ["staff", "enroll", "--as", f"{A}/admin", f"s{secrets.token_hex(4)}", "--role", "counter"],
    ),
    "--purpose": (bounds.PURPOSE, lambda n, p: ["audit", "timeline", "--as", f"{A}/aud", _protected(n, p)]),
}


@pytest.mark.parametrize("option", list(CLI))
def test_the_cli_takes_an_option_at_its_bound_and_exits_2_naming_it_one_over(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str], option: str
) -> None:
    """A shell user: refused before anything is stored, the option named, the value not echoed."""
    bound, argv = CLI[option]
    args = argv(sqlite_node, person)  # (which may record a request to act on)
    before = sqlite_node.app.max_position()
    code, err = _cli(sqlite_node, capsys, *args, option, over(bound))
    assert code == 2 and f"argument {option}: at most {bound.max} characters" in err and SECRET not in err
    assert sqlite_node.app.max_position() == before
    code, err = _cli(sqlite_node, capsys, *argv(sqlite_node, person), option, at_bound(bound))
    if option.lstrip("-").replace("-", "_") in LAW_CHECKED:  # within its bound, refused by the law catalogue
        assert code == 5 and LAW_CHECKED[option.lstrip("-").replace("-", "_")] in err and SECRET not in err, err
        return
    assert code == 0, err


def test_cli_errors_name_the_field_not_the_number_typed_into_it(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A number typed where the providing agency goes (issue 16: "providing agency 123-4567-8901-8…")."""
    number = person()
    typed = f"{number[:3]}-{number[3:7]}-{number[7:11]}-{number[11:]}"
    code, err = _cli(
        sqlite_node,
        capsys,
        "provision",
        "request",
        "--as",
        f"{A}/counter",
        "--provider",
        typed,
        "--subject",
        person(),
        "--item",
        "74",
        "--procedure",
        "p",
        "--info-kind",
        "i",
    )
    # (hyphenated, it even has an agency code's shape: refused as an agency not served here)
    assert code == 3 and "providing agency is not served" in err and typed not in err and number[3:7] not in err
    code, err = _cli(
        sqlite_node,
        capsys,
        "provision",
        "request",
        "--as",
        f"{A}/counter",
        "--provider",
        typed.replace("-", " "),
        "--subject",
        person(),
        "--item",
        "74",
        "--procedure",
        "p",
        "--info-kind",
        "i",
    )
    assert code == 2 and "provider is not an agency code" in err and number[3:7] not in err
    code, err = _cli(
        sqlite_node,
        capsys,
        "provision",
        "request",
        "--as",
        f"{A}/counter",
        "--provider",
        "999999",
        "--subject",
        person(),
        "--item",
        "74",
        "--procedure",
        "p",
        "--info-kind",
        "i",
    )
    assert code == 3 and "999999" not in err
    fresh = sqlite_node.config.data_dir.parent / "fresh"
    code = cli(
        ["--data-dir", str(fresh), "init", "--agency", typed.replace("-", " "), "--name", "x", "--kind", "municipality"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "agency is not an agency code" in err and number[3:7] not in err
    assert not (fresh / "config.json").exists()


def test_in_process_an_oversize_field_raises_and_nothing_is_stored(sqlite_node: Node, person) -> None:
    """A peer agency's query relayed in process (receive_query) and every command: checked before signing."""
    app = sqlite_node.app
    before = app.max_position()
    for call in (
        lambda: app.request_provision(
            Actor(A, "counter"), B, person(), legal_item=74, procedure=over(bounds.PROCEDURE), info_kind="i"
        ),
        lambda: app.receive_query(A, B, person(), legal_item=74, procedure="p", info_kind=over(bounds.INFO_KIND)),
        lambda: app.open_case(Actor(A, "req"), person(), notes=over(bounds.NOTE)),
        lambda: app.record_access(Actor(A, "aud"), person(), "holders", over(bounds.PURPOSE)),
        lambda: app.enroll_staff(Actor(A, "admin"), "newcomer", over(bounds.NAME), ["counter"]),
    ):
        with pytest.raises(InputError) as caught:
            call()
        assert caught.value.code == "oversize" and caught.value.field and SECRET not in str(caught.value)
    assert app.max_position() == before
    # text at the bound passes the bounds and meets the law catalogue: no such procedure, nothing stored (an
    # event at the bound still fits every view: the ingest tests below)
    with pytest.raises(RuleViolation) as caught:
        app.request_provision(
            Actor(A, "counter"),
            B,
            person(),
            legal_item=74,
            procedure=at_bound(bounds.PROCEDURE),
            info_kind=at_bound(bounds.INFO_KIND),
        )
    assert caught.value.code == "procedure_not_in_basis" and SECRET not in str(caught.value)
    assert app.max_position() == before
    sqlite_node.projector.catch_up()


# -- ingest: a peer's oversize event is parked; one at the bound fits every view, on PostgreSQL too ------------
Hostile = Callable[
    [str, str, str, FlagLedger], list[Any]
]  # (subject, proxy, value, B's app) → aggregates B saves unchecked


def _received(field: str) -> Hostile:
    def build(s: str, p: str, value: str, app: FlagLedger) -> list[Any]:
        fields = {"procedure": "児童手当", "info_kind": "地方税関係情報", "querier": A, field: value}
        r = ProvisionRequest(agency=B, subject=s, legal_item=74, applicant="unknown", **fields)
        r.provide_automatically()
        return [r]

    return build


def _probe(s: str, p: str, value: str, app: FlagLedger) -> list[Any]:
    return [ProbeNotice(agency=B, holders=[B], request_id=uuid4(), querier=A, procedure=value, legal_item=74)]


def _proposed(s: str, p: str, value: str, app: FlagLedger) -> list[Any]:
    r = ProvisionRequest(
        agency=B,
        querier=A,
        subject=s,
        legal_item=74,
        procedure="児童手当",
        info_kind="地方税関係情報",
        applicant="unknown",
    )
    r.hold(flags=["NO_AUTO_RESPONSE"])
    r.propose("refuse", "unknown", "rev", value)
    return [r]


def _released(s: str, p: str, value: str, app: FlagLedger) -> list[Any]:
    prot = Protection(id=uuid4(), agency=B, subject=s)
    flags, set_id, release_id = ["NO_AUTO_RESPONSE"], uuid4(), uuid4()
    # genuinely signed by B's staff: only the explanation's length is on trial
    evidence = signed_evidence(app, B, "set", s, flags, set_id, "2031-01-01")
    prot.set_flags(flags, set_id, "op", "dv", "2031-01-01", evidence)
    prot.release(flags, release_id, "op", value, signed_evidence(app, B, "release", s, flags, release_id, None))
    return [prot]


def _cancelled(s: str, p: str, value: str, app: FlagLedger) -> list[Any]:
    reg = ProxyRegistration(id=uuid4(), agency=B, subject=s, proxy=p, by="req")
    reg.cancel(by="req", reason=value)
    return [reg]


PEER: dict[str, tuple[str, bounds.Bound, Hostile]] = {
    "procedure": ("ProvisionRequest.Received", bounds.PROCEDURE, _received("procedure")),
    "info_kind": ("ProvisionRequest.Received", bounds.INFO_KIND, _received("info_kind")),
    "querier": ("ProvisionRequest.Received", bounds.AGENCY_CODE, _received("querier")),
    "probe procedure": ("ProbeNotice.Sent", bounds.PROCEDURE, _probe),
    "decision note": ("ProvisionRequest.DecisionProposed", bounds.NOTE, _proposed),
    "explanation": ("Protection.FlagsReleased", bounds.NOTE, _released),
    "cancel reason": ("ProxyRegistration.Cancelled", bounds.NOTE, _cancelled),
}


@pytest.fixture
def peer(make_node, backend: str | None, tmp_path: Path) -> tuple[Node, Node]:
    """A's node (on each backend) and B's node, trusting each other; B will misbehave."""
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = make_node((AgencySpec(A, "A市", "municipality"),), name="a", database_url=backend, pseudonym_key_file=key)
    b = make_node((AgencySpec(B, "B市", "municipality"),), name="b", pseudonym_key_file=key)
    trust(a, b)
    trust(b, a)
    return a, b


def _ship(a: Node, b: Node, start: int) -> list[tuple[str, Outcome]]:
    pending = PendingStore(a.app, a.engine)
    return [(env_topic(raw), ingest(a.app, raw, pending)) for _, _, raw in publishable(b.app, start)]


def env_topic(raw: bytes) -> str:
    from ledger.log.envelope import Envelope

    return Envelope.from_bytes(raw).header.topic.split(":", 1)[1]


@pytest.mark.parametrize("case", list(PEER))
def test_a_peers_event_one_over_a_bound_is_parked_and_one_at_it_fits_every_view(
    peer: tuple[Node, Node], person: Callable[[], str], case: str
) -> None:
    """A peer agency sends a signed event with a field one over its bound: parked, the views and the request
    path keep working; at the bound it is applied and fits every view column (PostgreSQL included)."""
    a, b = peer
    topic, bound, build = PEER[case]
    assert [o.kind for _, o in _ship(a, b, 0)].count("parked") == 0
    s, p = b.app.subject(person()), b.app.subject(person())
    start = b.app.max_position()
    value = "Q" * (bound.max + 1) if case == "querier" else over(bound)
    for agg in build(s, p, value, b.app):  # a hostile node: signed and published, never through FlagLedger.save
        b.app.signed_store.put(agg.collect_events(), origin=B)
    outcomes = dict(_ship(a, b, start))
    refused = outcomes[topic]
    assert refused.kind == "parked" and refused.code == "oversize", refused
    assert case.split()[-1] in refused.reason and SECRET not in refused.reason
    a.projector.catch_up()  # the views and the request path still work
    assert (
        a.app.request_provision(
            Actor(A, "counter"), A, person(), legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        ).status
        == "answered"
    )

    start = b.app.max_position()
    value = "Q" * bound.max if case == "querier" else at_bound(bound)
    for agg in build(s, p, value, b.app):
        b.app.signed_store.put(agg.collect_events(), origin=B)
    assert {o.kind for _, o in _ship(a, b, start)} == {"applied"}
    a.projector.catch_up()  # PostgreSQL: no StringDataRightTruncation
    with a.engine.connect() as conn:
        if topic == "ProvisionRequest.Received":
            got = conn.execute(select(portal_records.c[case]).where(portal_records.c.subject == s)).scalar()
            assert a.projector.cipher.open(f"portal_records.{case}", got) == value  # (sealed: docs/erasure.md)
        if topic == "ProbeNotice.Sent":
            cells = conn.execute(select(probe_queue.c.procedure)).scalars().all()
            assert value in [a.projector.cipher.open(PROBE_PROCEDURE, c) for c in cells]
    a.projector.rebuild()
