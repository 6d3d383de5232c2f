"""An auditor's console: sign a checkpoint, prove an event, check the proof offline with no database;
a tampered proof file or a truncated log fails with a non-zero exit and says why."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import B
from tests.support import store
from tests.support.staff import run_in_process


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_in_process(argv, capsys)


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    d = str(tmp_path / "b")
    assert run(capsys, "--data-dir", d, "init", "--agency", B, "--name", "B市", "--kind", "municipality")[0] == 0
    assert run(capsys, "--data-dir", d, "staff", "enroll", "--as", f"{B}/admin", "sato", "--role", "requester")[0] == 0
    return d


def test_prove_and_check_proof_offline_and_tampered_files_fail(
    data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--data-dir", data_dir, "audit", "checkpoint")
    assert code == 0 and json.loads(out)["signed"][0]["origin"] == B
    code, out, _ = run(capsys, "--data-dir", data_dir, "audit", "checkpoint")
    assert code == 0 and json.loads(out)["signed"] == []  # nothing new

    code, out, _ = run(capsys, "--data-dir", data_dir, "audit", "prove", "--position", "3")
    assert code == 0
    proof = json.loads(out)
    assert {"leaf_hash", "leaf_index", "tree_size", "proof", "root", "checkpoint", "public_key"} <= set(proof)
    code, _, _ = run(capsys, "--data-dir", data_dir, "audit", "prove", proof["event_id"], "--out", str(tmp_path / "p"))
    assert code == 0 and json.loads((tmp_path / "p").read_text())["leaf_index"] == proof["leaf_index"]

    # the auditor has the file only: no data directory, no database
    nowhere = str(tmp_path / "no-such-node")
    code, out, _ = run(capsys, "--data-dir", nowhere, "audit", "check-proof", str(tmp_path / "p"))
    assert code == 0 and json.loads(out)["ok"] is True and not Path(nowhere).exists()
    code, _, _ = run(capsys, "audit", "check-proof", str(tmp_path / "p"), "--public-key", proof["public_key"])
    assert code == 0

    for name, tamper in (
        ("path", lambda d: d["proof"].__setitem__(0, "00" * 32)),
        ("header", lambda d: d.__setitem__("header", d["header"].replace('"version":1', '"version":2'))),
        ("size", lambda d: d.__setitem__("tree_size", d["tree_size"] + 1)),
        ("signature", lambda d: d["checkpoint"].__setitem__("signature", "00" * 64)),
    ):
        bad = json.loads(json.dumps(proof))
        tamper(bad)
        assert bad != proof, name
        (tmp_path / name).write_text(json.dumps(bad))
        code, out, err = run(capsys, "audit", "check-proof", str(tmp_path / name))
        assert code == 6 and out == "" and "error [bad_" in err, (name, err)
    (tmp_path / "junk").write_text("{not json")
    assert run(capsys, "audit", "check-proof", str(tmp_path / "junk"))[0] == 2
    code, _, err = run(capsys, "audit", "check-proof", str(tmp_path / "p"), "--public-key", "ab" * 32)
    assert code == 6 and "different key" in err


def test_prove_an_unknown_event_and_before_any_checkpoint(data_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--data-dir", data_dir, "audit", "prove", uuid.uuid4().hex)
    assert code == 3 and "audit checkpoint" in err
    run(capsys, "--data-dir", data_dir, "audit", "checkpoint")
    code, _, err = run(capsys, "--data-dir", data_dir, "audit", "prove", uuid.uuid4().hex)
    assert code == 3 and "not among" in err


def test_verify_counts_checkpoints_and_a_kept_checkpoint_catches_truncation(
    data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.runtime.bootstrap import open_node

    kept = str(tmp_path / "kept.json")
    assert run(capsys, "--data-dir", data_dir, "audit", "checkpoint", "--export", kept)[0] == 0
    code, out, _ = run(capsys, "--data-dir", data_dir, "audit", "verify", "--quiet")
    assert code == 0 and json.loads(out)["checkpoints"] == 1
    node = open_node(Path(data_dir))
    try:
        rows = store.rows(node)
        # the enrolment (enrolled, code issued, activated: whole batches) and the checkpoint covering it
        enrolled = max(i for i, row in enumerate(rows) if row[3].endswith(":Staff.Enrolled"))
        for position, *_ in rows[enrolled:]:
            store.delete(node, position)
    finally:
        node.close()
    code, _, err = run(capsys, "--data-dir", data_dir, "audit", "verify", "--quiet")
    assert code == 6 and "[truncated]" in err and "log head row" in err  # the tripwire…
    node = open_node(Path(data_dir))
    try:
        store.forge_head(node)  # …which an attacker rewrites (no key needed)
    finally:
        node.close()
    assert run(capsys, "--data-dir", data_dir, "audit", "verify", "--quiet")[0] == 0
    code, _, err = run(capsys, "--data-dir", data_dir, "audit", "verify", "--quiet", "--checkpoint", kept)
    assert code == 6 and "[truncated]" in err and f"first bad leaf index: {enrolled}" in err
    assert f"position {rows[enrolled][0]}:" in err


def test_an_exported_head_catches_a_cut_tail_the_head_row_no_longer_shows(
    data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An insider cuts the last batches and rewrites the head row; the head exported before says so."""
    from ledger.runtime.bootstrap import open_node

    head = str(tmp_path / "head.json")
    code, out, _ = run(capsys, "--data-dir", data_dir, "audit", "head", "--out", head)
    assert code == 0 and json.loads(Path(head).read_text())["tree_size"] == json.loads(out)["tree_size"]
    node = open_node(Path(data_dir))
    try:
        *_, cut, checkpoint = store.batches(node)
        for position in cut + checkpoint:
            store.delete(node, position)
        store.forge_head(node)
    finally:
        node.close()
    assert run(capsys, "--data-dir", data_dir, "audit", "verify", "--quiet")[0] == 0
    code, _, err = run(capsys, "--data-dir", data_dir, "audit", "verify", "--quiet", "--against", head)
    assert code == 6 and "[truncated]" in err and f"position {cut[0]}:" in err
