"""A forger writes whatever it likes into the header fields an incident records: the alert must still be raised,
exactly once, and carry no individual number, markup that runs, or control character — the breach-report draft
leaves the system. Fuzzed with hypothesis over the key id and event id of B's real messages (the fields a
message chooses freely), with X's individual number smuggled in as digits, spaced, hyphenated or full-width."""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from consumers.incident_report import draft, render_markdown
from consumers.ingest import ingest
from consumers.outbox import publishable
from consumers.parked import park
from ledger.app import Actor
from ledger.log.envelope import Envelope
from ledger.log.header import Header
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from tests.adversarial.threat import NAR, ND, A, B, prepare_node
from tests.support.people import individual_number
from tests.support.trust import trust

FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@dataclass
class Scene:
    a: Node
    messages: list[bytes]  # B's messages A's node holds
    x: str  # the protected person's individual number


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("incident-fuzz")
    key = root / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    a = init_node(root / "a", (AgencySpec(A, "A市", "municipality"),), pseudonym_key_file=key)
    b = init_node(root / "b", (AgencySpec(B, "B市", "municipality"),), pseudonym_key_file=key)
    for n in (a, b):
        prepare_node(n)
    trust(a, b)
    x = individual_number()
    rid = b.app.request_flags(Actor(B, "req"), x, [NAR, ND])
    b.app.approve_request(Actor(B, "apr"), rid)
    b.app.approve_request(Actor(B, "apr2"), rid)  # B needs two approvals (tests/adversarial/threat.py)
    b.app.execute_request(Actor(B, "op"), rid)
    messages = [raw for _, _, raw in publishable(b.app)]
    for raw in messages:
        assert ingest(a.app, raw).kind == "applied"
    yield Scene(a, messages, x)
    a.close()
    b.close()


def smuggled(x: str) -> st.SearchStrategy[str]:
    wide = x.translate({ord(d): chr(0xFF10 + int(d)) for d in "0123456789"})
    spaced = " ".join(x[i : i + 4] for i in range(0, 12, 4))
    return st.sampled_from([x, spaced, spaced.replace(" ", "-"), wide, ".".join(x)])


def forged_text(x: str) -> st.SearchStrategy[str]:
    noise = st.text(max_size=40)
    return st.builds(
        lambda pre, n, post: pre + n + post, noise | st.just("<script>alert(1)</script>"), smuggled(x), noise
    ) | st.text(max_size=300)


def contains(value: str, x: str) -> bool:
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", value) if ch.isdigit())
    return x in digits if re.search(r"\d", value) else False


def strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in strings(v)]
    if isinstance(obj, list | tuple):
        return [s for v in obj for s in strings(v)]
    return []


@FUZZ
@given(data=st.data(), field=st.sampled_from(["key", "id"]))
def test_a_forgers_header_text_never_reaches_an_incident_or_the_report(
    scene: Scene, data: st.DataObject, field: str
) -> None:
    """Threat: a peer agency or the broker operator forging B's messages to plant X's individual number (or
    markup) in what A's staff read and what A sends to the PPC."""
    env = Envelope.from_bytes(data.draw(st.sampled_from(scene.messages)))
    header = {**json.loads(env.header_bytes), field: data.draw(forged_text(scene.x))}
    forged = Envelope(Header.from_bytes(json.dumps(header).encode()).to_bytes(), env.payload, env.seal).to_bytes()
    outcome = ingest(scene.a.app, forged)
    assert outcome.kind == "parked"
    event(outcome.code)
    raised = park(scene.a, outcome, forged, "flagledger.events/0@1")
    assert park(scene.a, outcome, forged, "flagledger.events/0@1") == [], "redelivery raises nothing"
    if outcome.code not in ("bad_signature", "unknown_key", "wrong_agency"):
        assert raised == []
        return
    [incident] = raised
    recorded = [v for v in vars(incident).values() if isinstance(v, str)]
    for value in recorded:
        assert not contains(value, scene.x) and value.isprintable(), value
    report = draft(scene.a, Actor(A, "aud"), ids=[incident.id])
    text = render_markdown(report.facts)
    for value in [text, *strings(report.facts)]:
        assert not contains(value, scene.x)
    assert "<script" not in text
