"""The residence rule for a peer's number change that names the move it was judged by (issue 21).

The story: X moved to B (m1), then on to C (m2). B's node links X's numbers. A peer judges B's link as of the move
it names — never by the link's signed date, which B's own clock sets — and counts against it every move B's
node had signed itself before the link (``recorded_before``, told by B's log order in consumers/link_moves.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

from ledger.app.residence import named_move_refusal, unnamed_move_refusal
from ledger.domain.moves import ResidenceChange

A, B, C = "131016", "131024", "131032"
X, X_NEW, Z = "pseudonym-x", "pseudonym-x-new", "pseudonym-z"


class Moves:
    """The two things the rule reads of a node: the moves in its log, and one move by id."""

    def __init__(self, *moves: ResidenceChange) -> None:
        self.moves = list(moves)

    def _year_aggregates(self, cls: type, event: str) -> Iterator[ResidenceChange]:
        return iter(self.moves)

    def find(self, cls: type, aggregate_id: UUID) -> ResidenceChange | None:
        return next((m for m in self.moves if m.id == aggregate_id), None)


def move(subject: str, to: str, on: str, by: str | None = None) -> ResidenceChange:
    return ResidenceChange(
        agency=by or to, subject=subject, from_agency=None, to_agency=to, moved_on=on, source="counter",
        recorded_by="req",
    )  # fmt: skip


def nobody(m: ResidenceChange) -> bool:
    return False


def judge(app: Moves, named: str, before: Any = nobody, agency: str = B) -> tuple[str, str] | None:
    return named_move_refusal(app, agency, [X, X_NEW], named, before)  # type: ignore[arg-type]


def test_a_link_naming_the_move_that_made_its_linker_the_residence_stands_though_later_moves_arrived() -> None:
    """Threat: a peer agency's genuine link lost to message order — two moves the same day after B's link, known
    here first, must not undo it (the link is judged as of the move it names)."""
    m1 = move(X, B, "2026-12-01")
    app = Moves(m1, move(X, C, "2026-12-07"), move(X_NEW, A, "2026-12-07"))
    assert judge(app, str(m1.id)) is None


def test_a_named_move_not_here_yet_holds_the_link() -> None:
    """Threat: a peer agency's link applied on a guess — the move it names is not here: held (it may be late),
    even where no move of the person is known at all."""
    verdict = judge(Moves(), str(uuid4()))
    assert verdict is not None and verdict[0] == "hold"


def test_a_named_move_to_another_municipality_parks_the_link() -> None:
    """Threat: a peer agency linking a stranger's number onto a victim who had moved elsewhere, naming the
    move honestly: as of that move B is not the residence — parked, no later move changes that."""
    m2 = move(X, C, "2026-12-08")
    verdict = judge(Moves(move(X, B, "2026-12-01"), m2), str(m2.id))
    assert verdict is not None and verdict[0] == "park" and "another municipality" in verdict[1]


def test_a_named_move_of_someone_else_parks_the_link() -> None:
    """Threat: a peer agency naming another person's move to it (Z moved to B) to link X's numbers."""
    mz = move(Z, B, "2026-12-01")
    verdict = judge(Moves(mz, move(X, C, "2026-12-01")), str(mz.id))
    assert verdict is not None and verdict[0] == "park" and "not a move of the numbers" in verdict[1]
    verdict = judge(Moves(mz), "not-a-move-id")
    assert verdict is not None and verdict[0] == "park"


def test_a_link_naming_an_older_move_than_one_its_node_recorded_is_parked() -> None:
    """Threat: a peer agency backdating its link — B recorded X's move away (B → C, 転出 at B), then links naming
    the older move that made it the residence: parked; the same older move with the later one recorded
    elsewhere (B may not have received it) stands."""
    m1, m2 = move(X, B, "2026-12-01"), move(X, C, "2026-12-08", by=B)
    app = Moves(m1, m2)
    verdict = judge(app, str(m1.id), before=lambda m: m is m2)
    assert verdict is not None and verdict[0] == "park" and "a backdated link" in verdict[1]
    assert judge(app, str(m1.id)) is None, "a move B's node had not signed before its link does not count"


def test_a_link_naming_no_move_is_judged_by_every_move_known_here() -> None:
    """Threat: a peer agency claiming to know no move of the person: held when the moves known here never took
    the person to it (any date), parked when its own node had recorded one; with none known anywhere it stands
    (the ledger does not know where the person lives); a genuine link made before the move to its linker reached
    it stands though two moves the same day followed (the long-run model's story)."""
    m2 = move(X, C, "2026-12-30", by=B)
    assert judge(Moves(), "") is None
    verdict = judge(Moves(m2), "")
    assert verdict is not None and verdict[0] == "hold"
    verdict = judge(Moves(m2), "", before=lambda m: m is m2)
    assert verdict is not None and verdict[0] == "park"
    to_b = move(X, B, "2026-12-30", by=A)  # recorded at the old end (A): B's node had not received it
    assert judge(Moves(to_b, move(X, C, "2026-12-30"), move(X, A, "2026-12-30")), "") is None, (
        "judged as of the move to B it had not received: two later moves the same day do not undo it"
    )


def test_a_link_from_before_named_moves_is_judged_by_its_date_and_by_its_nodes_own_moves() -> None:
    """Threat: a peer agency stripping the named move and backdating: a link from before is judged by the moves
    dated up to its own date, as before (a later-dated move does not hold it) — but a move its own node had
    signed before it counts whatever its date."""
    m1, m2 = move(X, B, "2026-12-01"), move(X, C, "2026-12-08", by=B)
    app = Moves(m1, m2)
    assert unnamed_move_refusal(app, B, [X], "2026-12-07", nobody) is None  # type: ignore[arg-type]
    verdict = unnamed_move_refusal(app, B, [X], "2026-12-07", lambda m: m is m2)  # type: ignore[arg-type]
    assert verdict is not None and verdict[0] == "hold"
    verdict = unnamed_move_refusal(app, B, [X], "2026-12-08", nobody)  # type: ignore[arg-type]
    assert verdict is not None and verdict[0] == "hold"
