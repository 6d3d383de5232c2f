"""`flagledger demo --topology hub` (issue 19): municipalities A, B, C and the pension office D as hub-mode nodes, a
hub and a portal, each in its own data directory, in one process on one in-memory broker — run as a user runs it,
then searched file by file."""

from __future__ import annotations

from pathlib import Path

from ledger.cli.demo_hub_world import DIRS, Z_NUMBER, x_code
from ledger.cli.demo_tables import X_NUMBER, Y_NUMBER, A, B, C, D
from ledger.runtime.bootstrap import open_node
from ledger.runtime.linkage import subject_of
from tests.e2e.test_demo import run_cli
from tests.integration.test_file_modes import modes


def _files(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def test_the_hub_demo_holds_for_staff_hides_on_the_portal_and_stores_no_number(tmp_path: Path) -> None:
    """Threat: the perpetrator Y applying at the pension office D (its counter's answer) and on the portal; a peer
    agency asking beyond its lawful purpose (D asks under its own pension row, not a municipality's item); an
    insider at A (X's old municipality), at D, at C or at the portal with its whole data directory; a shell user
    reading the files. D's query about X is held for A's staff and names no holder (Y's own and Z's, unprotected,
    are answered automatically: the controls); Y's portal page shows his own record and nothing of X's; the portal
    hides X's record and refuses a proxy; no party's files hold an individual number or are readable by another
    user. Re-relocation A → B → C: the move A → B is recorded at B (転入) and A's inbox gets nothing; the hub's
    moves are A → B and B → C, both from B; C is asked to take over naming neither B nor A, and holds X's flags
    at the end, B none; A's and D's directories hold neither B's nor C's code for X."""
    demo = tmp_path / "demo"
    proc = run_cli("demo", "--topology", "hub", "--data-dir", str(demo))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "| X     | A市 (131016) | in_progress 🔒 | no " in out, "held, not automatic; the holder not named"
    assert "| Y     | A市 (131016) | answered    " in out, "Y's own query is answered automatically"
    assert "| Z     | A市 (131016) | answered    " in out, "the control is answered automatically"
    assert "| X       | D年金事務所 (JPS-D) |" in out, "A's queue holds D's query about X"
    # a peer agency asking beyond its lawful purpose: D, a national agency, asks under the law catalogue's pension
    # row (item 48, 国民年金, asked by 厚生労働大臣), which the hub and D's node check against D's kind
    assert "| X       | D年金事務所 (JPS-D) | 国民年金 " in out and "児童手当" not in out, "D: the pension row"
    assert "| B市    | A市  | B市 | no 🔒  |" in out, "the move A → B filed from B; A told nothing"
    assert "| X    | self   | 0 🔒 " in out and "hidden under non-disclosure" in out, "the portal hides X's record"
    assert "| Z    | self   | 1 " in out, "the portal shows Z's record (the control)"
    assert "| Y    | self   | 1             | D年金事務所 (JPS-D) |" in out, "Y sees D's query about him, no more"
    assert "refused: proxy_refused" in out
    assert "| 2026-09-01 | NON_DISCLOSURE, NO_AUTO_RESPONSE | no 🔒" in out, "C asked to take over, B not named"
    assert "who stores what about X" in out and "flagledger.linkage.inbox.portal" in out
    assert "OK:" in out and "✗" not in out

    # each party its own directory and database, nothing shared on disk
    for party, database in ((A, "views.sqlite"), (B, "views.sqlite"), (C, "views.sqlite"), (D, "views.sqlite"),
                            ("hub", "hub.sqlite"), ("portal", "portal.sqlite")):  # fmt: skip
        assert (demo / DIRS[party] / database).is_file(), party
    assert modes(demo) == {}, "every directory 0700, every file 0600: no party's files readable by other users"
    numbers = [n.encode() for n in (X_NUMBER, Y_NUMBER, Z_NUMBER)]
    for party in DIRS.values():
        blob = _files(demo / party)
        assert blob and not any(n in blob for n in numbers), f"an individual number in {party}/"

    # B's code for X is B's alone, C's is C's: the search finds each in its own directory, and in no other
    # agency's or the portal's — A and D (where Y applied) learn neither where X went nor where she lives now
    for holder in (B, C):
        node = open_node(demo / DIRS[holder])
        try:
            code = x_code(node, holder)
        finally:
            node.close()
        spellings = [s.encode() for s in (code, subject_of(code))]
        assert any(s in _files(demo / DIRS[holder]) for s in spellings), holder
        for party in {A, B, C, D, "portal"} - {holder}:
            assert not any(s in _files(demo / DIRS[party]) for s in spellings), (holder, party)

    # the hub saw both moves, each from B (the holder), the second starting where the first ended
    import sqlite3

    conn = sqlite3.connect(f"file:{demo / DIRS['hub'] / 'hub.sqlite'}?mode=ro", uri=True)
    try:
        moves = conn.execute("SELECT sender, from_agency, to_agency FROM hub_moves ORDER BY seq").fetchall()
    finally:
        conn.close()
    assert moves == [(B, A, B), (B, B, C)]

    # the handover (X moved on from B to C): C holds X's flags under its own code, B none; B heard C holds
    flags = {}
    for party in (B, C):
        node = open_node(demo / DIRS[party])
        try:
            mine = node.app.flag_state
            assert mine is not None
            flags[party] = mine.flags_for(subject_of(x_code(node, party)))
            if party == B:
                told = node.app.holders_anywhere(subject_of(x_code(node, party)))
        finally:
            node.close()
    assert flags[B] == {} and sorted(flags[C]) == ["NON_DISCLOSURE", "NO_AUTO_RESPONSE"]
    assert all(who == [C] for who in flags[C].values()) and all(who == [C] for who in told.values())


def test_the_demo_refuses_an_unknown_topology(tmp_path: Path) -> None:
    """Shell user mistyping the option: exit 2, naming the choices, nothing made."""
    proc = run_cli("demo", "--topology", "mesh", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2 and "one-node, hub" in proc.stderr
    assert not (tmp_path / "d").exists()
