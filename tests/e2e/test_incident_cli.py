"""``flagledger incident report`` and ``incident ack`` at the console.

B's node has parked three messages aimed at X's protection: an altered copy of B's FlagsSet, a second history
of it signed with B's key, and one signed by a key nobody registered whose key id smuggles markup and X's
individual number. B's auditor drafts the facts for the breach report to the PPC: what, when, which records,
which persons (pseudonyms only), what was done, what next — in Markdown or JSON, written 0600, the drafting
itself recorded. A reviewer acknowledges an incident: it leaves the open queue, not the report.
"""

from __future__ import annotations

import json
import re
import secrets
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumers.ingest import ingest
from consumers.parked import park
from ledger.app import Actor
from ledger.cli.main import main
from ledger.log.envelope import Envelope, seal_batch
from ledger.log.signing import Signer
from ledger.runtime.bootstrap import AgencySpec, Node
from tests.conftest import B, C
from tests.support.forgery import published, resigned, tampered

HOSTILE = "<img src=x onerror=alert(1)>"


def run(capsys: pytest.CaptureFixture[str], node: Node, *argv: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(node.config.data_dir), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def unknown_key(raw: bytes, x: str) -> bytes:
    """B's event re-signed by a key no one registered, its key id carrying markup and a raw number."""
    import hashlib

    env = Envelope.from_bytes(raw)
    rogue = Signer.generate(B)
    payload = env.payload + b" "
    header = env.header._replace(
        event_id=uuid.uuid4().hex, key_id=f"{B}:{HOSTILE}{x}", digest=hashlib.sha256(payload).hexdigest()
    )
    return seal_batch([header.to_bytes()], [payload], header.key_id, rogue.sign)[0].to_bytes()


@pytest.fixture
def scene(make_node: Callable[..., Node], tmp_path: Path, person: Callable[[], str]) -> tuple[Node, str, list[Any]]:
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_hex(32))
    node = make_node(
        (AgencySpec(B, "B市", "municipality"), AgencySpec(C, "C市", "municipality")), pseudonym_key_file=key
    )
    x = person()
    rid = node.app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)
    genuine = published(node, B, "Protection.FlagsSet")
    raised = []
    for n, raw in enumerate((tampered(genuine), resigned(genuine, node.app.signers[B]), unknown_key(genuine, x))):
        outcome = ingest(node.app, raw)
        assert outcome.kind == "parked"
        raised += park(node, outcome, raw, f"flagledger.events/0@{40 + n}")
    assert [i.code for i in raised] == ["bad_signature", "forged_own", "unknown_key"]
    return node, x, raised


def drafted(node: Node) -> list[Any]:
    return [
        node.app.signed_mapper.decode(env)
        for _, _, env in node.app.envelopes()
        if env.header.topic == "ledger.domain.incidents:IncidentReport.Drafted"
    ]


def test_the_report_states_the_facts_in_a_private_file_and_no_individual_number(
    scene: tuple[Node, str, list[Any]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Threat: the perpetrator (a report leaves the system: it must name people by pseudonym only and carry no
    number a forger smuggled in), a shell user on the host (the file is the owner's alone), an insider (drafting
    is a recorded read)."""
    node, x, raised = scene
    pseudonym = node.app.subject(x)
    out = tmp_path / "draft.md"
    out.write_text("old")
    out.chmod(0o644)
    code, _, err = run(capsys, node, "incident", "report", "--as", f"{B}/aud", "--out", str(out))
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    stream = Envelope.from_bytes(published(node, B, "Protection.FlagsSet")).header.stream
    for fact in (
        "署名の偽造・改ざんの疑い",
        "Forged or altered message",
        "記録の分岐",
        "Forked or rewritten history",
        "First seen",
        "Last seen",
        stream,
        "Protection.FlagsSet",
        pseudonym,
        "B市 (131024)",
        "no / 記録なし",
        "Still open",
        "転居",
        str(raised[0].id),
    ):
        assert fact in text, fact
    assert f"| {stream} | 2 |" in text
    # ids and hashes are hex: with their hyphens dropped a random one can hold twelve digits in a row
    plain = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}", "<id>", text)
    assert x not in text and not re.search(r"\d{12}", plain.replace("-", "")), "no individual number, ever"
    assert "<img" not in text and "&lt;img" in text, "the forger's markup is shown, not rendered"

    [record] = drafted(node)
    assert (record.staff, record.subjects, record.destination) == ("aud", [pseudonym], str(out.resolve()))
    assert sorted(record.incidents) == sorted(str(i.id) for i in raised)

    code, json_out, err = run(capsys, node, "incident", "report", "--as", f"{B}/admin", "--json")
    assert code == 0, err
    facts = json.loads(json_out)
    assert [w["kind"] for w in facts["what"]] == ["forged_signature", "fork"]
    assert [w["count"] for w in facts["what"]] == [2, 1]
    assert facts["when"]["first_seen"] <= facts["when"]["last_seen"]
    assert {(r["stream"], r["version"], r["parked_message"], r["in_log_now"]) for r in facts["records"]} == {
        (stream, 2, 1, False),
        (stream, 2, 2, False),
        (stream, 2, 3, False),
    }
    assert facts["persons"] == {"pseudonyms": [pseudonym], "claimed_pseudonyms": []}
    assert sorted(facts["done"]["parked_not_applied"]) == sorted(str(i.id) for i in raised)
    assert x not in json_out and len(drafted(node)) == 2


def test_only_suitable_roles_draft_a_report_and_bad_times_are_refused(
    scene: tuple[Node, str, list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Threat: an insider in the wrong role (the counter clerk a perpetrator talks to) or at another agency."""
    node, _, _ = scene
    code, out, err = run(capsys, node, "incident", "report", "--as", f"{B}/counter")
    assert code == 4 and out == "" and drafted(node) == []
    code, _, err = run(capsys, node, "incident", "report", "--as", f"{B}/aud", "--from", "2026-11-25T10:00:00")
    assert code == 2 and "offset" in err and drafted(node) == []
    code, out, err = run(capsys, node, "incident", "report", "--as", f"{C}/aud")
    assert code == 0 and "No incident in this period" in out and B not in out.split("Agency:")[1].split("\n")[0]


def test_acknowledged_incidents_leave_the_queue_but_stay_in_the_report(
    scene: tuple[Node, str, list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Threat: an administrator or shell user making an alert disappear: acknowledging names who did it and
    what they did, and the report keeps every incident with its acknowledgement."""
    node, _, raised = scene
    first = str(raised[0].id)
    code, out, err = run(capsys, node, "incident", "ack", first, "--as", f"{B}/rev", "--note", "本人の安全を確認")
    assert code == 0, err
    assert json.loads(out)["acknowledged_by"] == f"{B}/rev"
    code, _, err = run(capsys, node, "incident", "ack", first, "--as", f"{B}/rev", "--note", "again")
    assert code == 5
    code, _, err = run(capsys, node, "incident", "ack", str(raised[1].id), "--as", f"{B}/counter", "--note", "x")
    assert code == 4
    code, out, _ = run(capsys, node, "view", "queue", "--as", f"{B}/rev")
    queue = json.loads(out)
    assert first not in {i["incident_id"] for i in queue["incidents"]} and queue["incidents_open"] == 2
    code, out, _ = run(capsys, node, "incident", "report", "--as", f"{B}/aud", "--json")
    facts = json.loads(out)
    [ack] = facts["done"]["acknowledged"]
    assert (ack["incident"], ack["by"], ack["note"]) == (first, f"{B}/rev", "本人の安全を確認")
    assert first not in facts["done"]["open"] and len(facts["records"]) == 3
    code, out, _ = run(capsys, node, "incident", "report", "--as", f"{B}/aud", "--incident", first)
    assert code == 0 and "本人の安全を確認" in out and str(raised[1].id) not in out
