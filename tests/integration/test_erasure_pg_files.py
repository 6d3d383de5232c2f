"""Erasure on PostgreSQL against the server's own files: data directory, WAL, WAL archive, a base backup (issue 22).

Threat: an insider or administrator who, after the person's retention ended, holds the database server's files —
its data directory with ``pg_wal/``, the WAL archive, a base backup taken *before* the erasure — and the node's
data directory with every key that remains there (the KEK, the at-rest cipher key, every data key not destroyed).
They must find none of the erased person's values: not in plain text in any encoding the node could write, and not
by opening any sealed view cell or event payload found in those files with any key that remains.

The test runs its own cluster (tests/support/pg_cluster.py): the machine's shared server refuses replication
connections and archives nothing. docs/erasure.md says what an operator must configure beyond this.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.app import Actor
from ledger.domain.cases import ProtectionCase
from ledger.errors import FlagLedgerError
from ledger.log.envelope import Envelope
from ledger.log.subject_payload import ENC_DK1, MAGIC_DK1
from ledger.log.view_cipher import _view_key
from ledger.runtime.bootstrap import Node
from ledger.runtime.erasure_scrub import scrub_after_erasure
from projections.base import metadata
from tests.conftest import A
from tests.integration.test_erasure import TARGET_NOTE, TARGET_PURPOSE
from tests.support.pg_cluster import Cluster, private_cluster, started_copy, unavailable

pytestmark = pytest.mark.postgres

# the closing note in Japanese: the node's JSON may write it as \uXXXX escapes, so the scan looks for those too
TARGET_CLOSING = "TARGET-closing-note-海辺の町へ転居-5520"
NAR, ND = "NO_AUTO_RESPONSE", "NON_DISCLOSURE"
_CELL = re.compile(rb"vk1\.([A-Za-z0-9_-]{43,})")  # a sealed view cell: 16-byte ref + 16-byte tag at least


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    reason = unavailable()
    if reason:
        pytest.skip(f"no private PostgreSQL cluster can run here: {reason}")
    # every statement logged with its parameters: the server's log is one more file the insider reads
    with private_cluster(["-c log_statement=all"]) as made:
        yield made


def _forms(value: str) -> dict[bytes, str]:
    """Every encoding in which the node (or PostgreSQL writing its rows) could put ``value`` into a file: UTF-8,
    JSON with \\uXXXX escapes (either case), and of each of those base64 and base64url at each of the three
    offsets a value can have inside a larger encoded blob, and hex (bytea's text form, e.g. in a server log)."""
    escaped = json.dumps(value)[1:-1]
    texts = [(value.encode(), "utf-8"), (escaped.encode(), "json")]
    texts.append((re.sub(r"\\u[0-9a-f]{4}", _upper, escaped).encode(), "JSON"))
    forms: dict[bytes, str] = {}
    for raw, how in texts:
        forms.setdefault(raw, how)  # (an ASCII value's JSON is its UTF-8: named by the first)
        for shift in range(3):
            for name, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
                # without the characters that also depend on the bytes around the value
                forms.setdefault(encode(b"\0" * shift + raw)[4 if shift else 0 : -4], f"{name}+{shift} of {how}")
        forms.setdefault(raw.hex().encode(), f"hex of {how}")
        forms.setdefault(raw.hex().upper().encode(), f"HEX of {how}")
    return forms


def _upper(m: re.Match[str]) -> str:
    return "\\u" + m.group(0)[2:].upper()


def _files(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                yield path


def _scan(root: Path, values: list[str]) -> list[str]:
    """Every file under ``root`` that holds one of ``values`` in one of its forms: 'path in root: form of value'."""
    needles = {form: (how, v) for v in values for form, how in _forms(v).items()}
    hits = []
    for path in _files([root]):
        data = path.read_bytes()
        hits += [f"{path.relative_to(root)}: {how} of {v!r}" for form, (how, v) in needles.items() if form in data]
    return hits


def _cells(root: Path) -> dict[bytes, set[str]]:
    """Every sealed view cell found in a file under ``root`` (decoded: ref | SIV box) → the files holding it."""
    found: dict[bytes, set[str]] = {}
    for path in _files([root]):
        for m in _CELL.finditer(path.read_bytes()):
            text = m.group(1)
            if len(text) % 4 == 1:  # cut by a page boundary in a WAL record: no whole cell
                continue
            raw = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
            found.setdefault(raw, set()).add(str(path.relative_to(root)))
    return found


def _remaining_keys(node: Node) -> list[bytes]:
    """Every data key left in the node's key file, unwrapped with its KEK — what an insider with the data
    directory and its secrets holds."""
    keys = node.app.signed_mapper.data_keys
    assert keys is not None
    with contextlib.closing(sqlite3.connect(keys.path)) as db:
        rows = db.execute("SELECT ref, wrapped FROM subject_keys").fetchall()
    return [keys.wrapper.unwrap(bytes(wrapped), bytes(ref)) for ref, wrapped in rows]


def _open_cells(cells: Iterable[bytes], keys: list[bytes]) -> dict[bytes, str]:
    """Each cell that opens under any of ``keys`` with any view column's name (``table.column``, as the sealed
    columns name themselves) as its associated data — not trusting the ref the cell names → its value."""
    columns = sorted({f"{t.name}.{c.name}".encode() for t in metadata.sorted_tables for c in t.columns})
    sivs = [_view_key(k) for k in keys]
    opened = {}
    for raw in cells:
        box = raw[16:]
        for siv in sivs:
            for column in columns:
                with contextlib.suppress(InvalidTag):
                    opened[raw] = siv.decrypt(box, [column]).decode()
                    break
            if raw in opened:
                break
    return opened


def _rows(dsn: str) -> Iterator[object]:
    """Every cell of every table of every schema but the server's own, as an insider reads a restored copy."""
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):  # type: ignore[arg-type]
                yield from row


def _open_payloads(node: Node, cells: Iterable[object], keys: list[bytes]) -> tuple[int, list[bytes], int]:
    """Every stored event among ``cells``, decrypted at rest with the node's cipher key; each per-subject payload
    tried with every one of ``keys`` (not only the one it names): (events found, payloads readable, per-subject
    payloads no key opens)."""
    mapper = node.app.signed_mapper
    found, readable, shut = 0, [], 0
    for cell in cells:
        if not isinstance(cell, bytes | memoryview):
            continue
        try:
            env: Envelope = mapper.open(bytes(cell))
        except (FlagLedgerError, ValueError):
            continue
        found += 1
        h = env.header
        if h.enc != ENC_DK1:
            readable.append(env.payload)
            continue
        assert env.payload.startswith(MAGIC_DK1)
        nonce, box = env.payload[20:32], env.payload[32:]
        opened = []
        for key in keys:
            with contextlib.suppress(InvalidTag):
                opened.append(AESGCM(key).decrypt(nonce, box, f"{h.stream}/{h.version}".encode()))
        readable += opened
        shut += not opened
    return found, readable, shut


def _history(node: Node, person: Callable[[], str]) -> tuple[str, str, list[tuple[str, list[str]]]]:
    """Five protected persons, each with an intake case, a read of their details and a closing note; the last is
    the one to erase: (their pseudonym, their number, [(pseudonym, values)] of the others)."""
    app = node.app
    people = []
    for i in range(5):
        number = person()
        erased = i == 4
        note = TARGET_NOTE if erased else f"OTHER{i}-intake-note-keep-me"
        purpose = TARGET_PURPOSE if erased else f"OTHER{i}-read-purpose-keep-me"
        closing = TARGET_CLOSING if erased else f"OTHER{i}-closing-note-記録を保存-{i}"
        case = app.open_case(Actor(A, "req"), number, notes=note)
        rid = app.request_flags(Actor(A, "req"), number, [NAR, ND])
        app.approve_request(Actor(A, "apr"), rid)
        app.execute_request(Actor(A, "op"), rid)
        subject = app.subject(number)
        app._record_reads(Actor(A, "rev"), [subject], "protected details", purpose)
        loaded = app.load(ProtectionCase, case, "case")
        loaded.close(by="req", note=closing)
        app.save_as(A, loaded)
        people.append((subject, number, [note, purpose, closing]))
    node.projector.catch_up()
    target, number, _ = people.pop()
    return target, number, [(s, values) for s, _, values in people]


def test_no_file_wal_archive_or_base_backup_of_the_server_gives_back_an_erased_person(
    make_node: Callable[..., Node], person: Callable[[], str], cluster: Cluster
) -> None:
    """Threat: an insider/administrator with the PostgreSQL server's files and backups (data directory, pg_wal,
    WAL archive, a base backup from before the erasure) and the node's data directory with every key left, after
    the person's retention ended. Before the erasure the person's values are in none of those files in plain text
    (their sealed cells are: the scan sees WAL and backup); after it, still in none, and no sealed cell or event
    payload found there opens with any remaining key — while everyone else's do."""
    node = make_node(database_url=cluster.create_database(f"fl_{uuid.uuid4().hex[:8]}"))
    target, number, others = _history(node, person)
    values = [TARGET_NOTE, TARGET_PURPOSE, TARGET_CLOSING]
    everyone = values + [v for _, vs in others for v in vs]
    # the control: a value once written in plain text, to a table dropped at once, stays in the WAL and its
    # archive — as an unsealed column or a plain scratch table would
    control = f"CONTROL-plain-{uuid.uuid4().hex}"
    with psycopg.connect(_dsn(node), autocommit=True) as conn:
        conn.execute("CREATE TABLE control_plain (v text)")
        conn.execute("INSERT INTO control_plain VALUES (%s)", (control,))
        conn.execute("DROP TABLE control_plain")
    backup = cluster.base_backup(cluster.home / "backup")
    cluster.archive_current_segment()
    keys_before = _remaining_keys(node)

    # before: no one's values in plain text anywhere — not the person's number either — while the control and
    # the person's pseudonym (a lookup column, in the clear) are found in the WAL, the archive and the backup
    assert _scan(cluster.home, [*everyone, number]) == []
    assert _scan(node.config.data_dir, [*everyone, number]) == []
    _found_in(_scan(cluster.home, [control]), "data/pg_wal/", "archive/", "server.log")
    _found_in(_scan(cluster.home, [target]), "data/base/", "data/pg_wal/", "archive/", "backup/base/")
    # their sealed cells are there too, and open with the keys held before the erasure
    cells_before = _cells(cluster.home)
    opened_before = _open_cells(cells_before, keys_before)
    theirs = {raw for raw, value in opened_before.items() if any(v in value for v in values)}
    _found_in([w for raw in theirs for w in cells_before[raw]], "data/base/", "data/pg_wal/", "archive/", "backup/")

    app = node.app
    request = app.request_erasure(Actor(A, "admin"), target, "retention of the case ended")
    app.approve_erasure(Actor(A, "admin2"), request, note="checked the retention schedule")
    scrub_after_erasure(node)
    cluster.archive_current_segment()  # the erasure's own WAL is in the archive too
    keys = _remaining_keys(node)
    # one key destroyed (the rebuild may make the person a new one for their shared events' cells: docs/erasure.md)
    assert len(set(keys_before) - set(keys)) == 1

    # after: still no plain text anywhere (the control still is); the person's old cells are still in the copies
    # (the backup, the archive) but no remaining key opens them; every cell found that opens is someone else's
    assert _scan(cluster.home, [*everyone, number]) == []
    assert _scan(node.config.data_dir, [*everyone, number]) == []
    _found_in(_scan(cluster.home, [control]), "archive/")
    cells = _cells(cluster.home)
    assert theirs <= cells.keys(), "the backup and the archive still hold their old cells (a copy the insider has)"
    opened = _open_cells(cells, keys)
    assert not [v for v in opened.values() if any(t in v for t in values)]
    assert not theirs & opened.keys()
    shown = " ".join(opened.values())
    assert all(v in shown for _, vs in others for v in vs), "everyone else's cells open: the trial works"

    # every stored event of the backup (restored as a server: the log before the erasure, every event of the
    # person) and of the live database (append-only: every event any WAL segment inserted), decrypted at rest,
    # every per-subject payload tried with every key left
    with started_copy(backup, cluster.bin) as dsn:
        in_backup, readable, shut = _open_payloads(
            node, _rows(dsn.replace("dbname=postgres", f"dbname={_db(node)}")), keys
        )
    live, readable_live, shut_live = _open_payloads(node, _rows(_dsn(node)), keys)
    assert 0 < in_backup < live
    assert shut >= 3 and shut_live > shut  # their case, read and closing (and, live, the erasure request) stay shut
    for payloads in (readable, readable_live):
        text = b"\n".join(payloads).decode(errors="replace")
        assert not [v for v in [*values, number] if v in text or json.dumps(v)[1:-1] in text]
        assert all(json.dumps(v)[1:-1] in text or v in text for _, vs in others for v in vs)


def _found_in(where: list[str], *parts: str) -> None:
    """The scan found something under each of ``parts`` (so it reads those files)."""
    for part in parts:
        assert any(w.startswith(part) for w in where), f"nothing found under {part}: {sorted(where)[:20]}"


def _db(node: Node) -> str:
    return str(node.engine.url.database)


def _dsn(node: Node) -> str:
    u = node.engine.url
    return f"host={u.host} port={u.port} user={u.username} dbname={u.database}"
