"""A batch's data keys are kept in one commit of the key file (issue 23), a case's whole stream under its victim's key.

Signed append had fallen to 0.06× its baseline: every new person's key was a synced commit of ``datakeys.sqlite``
in the middle of the batch (docs/performance.md). The keys of a batch's new persons, and the streams it opens, are
now kept in one commit before the batch is signed; the order of that commit and the log's is tested by
tests/faults/test_datakeys_kill9.py.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.app import Actor
from ledger.domain.cases import CHECKLIST_ITEMS, ProtectionCase
from ledger.domain.types import Action
from ledger.log.subject_payload import ENC_DK1, ErasedPayload, ref_of
from ledger.runtime.bootstrap import Node
from tests.conftest import A


def test_a_batch_of_new_persons_is_one_key_commit_and_known_persons_none(
    sqlite_node: Node, person: Callable[[], str]
) -> None:
    """No adversary: a cost guard (issue 23) — a listing of 100 persons never seen before cost 100 synced commits
    of the key file; it costs one, and listing them again costs no write to it at all."""
    app = sqlite_node.app
    dk = app.signed_mapper.data_keys
    assert dk is not None
    people = [person() for _ in range(100)]
    statements: list[str] = []
    dk._db.set_trace_callback(statements.append)
    try:
        app.record_listing(Actor(A, "rev"), people, "protected details", "check", [Action.VIEW_PROTECTED])
        assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == ["BEGIN IMMEDIATE", "COMMIT"]
        assert all(len(dk.refs_of(app.subject(p))) == 1 for p in people)
        statements.clear()
        app.record_listing(Actor(A, "rev"), people, "protected details", "again", [Action.VIEW_PROTECTED])
        assert not [s for s in statements if s.startswith(("BEGIN", "COMMIT", "INSERT"))]
    finally:
        dk._db.set_trace_callback(None)
    assert all(len(dk.refs_of(app.subject(p))) == 1 for p in people), "the same key for the second read"


def test_a_case_opened_and_closed_in_one_batch_is_all_under_its_victims_key(
    node: Node, person: Callable[[], str]
) -> None:
    """Insider after an erasure: the later events of a case saved with its opening (checklist, closing note) are
    under the victim's key, bound in the batch's one key commit, so destroying that key erases them too."""
    app = node.app
    dk = app.signed_mapper.data_keys
    assert dk is not None
    victim = app.subject(person())
    case = ProtectionCase(
        agency=A,
        victim=victim,
        perpetrators=[],
        reason="dv",
        checklist=dict.fromkeys(CHECKLIST_ITEMS, False),
        proxies_to_cancel=[],
        notes="intake note",
        opened_by="req",
    )
    case.update_checklist({CHECKLIST_ITEMS[0]: True}, by="req")
    case.close(by="req", note="closing note")
    app.save_as(A, case)
    envs = [env for _, _, env in app.envelopes() if env.header.stream == str(case.id)]
    assert [env.header.version for env in envs] == [1, 2, 3]
    assert all(env.header.enc == ENC_DK1 for env in envs)
    [ref] = {ref_of(env.payload) for env in envs}
    assert dk.refs_of(victim) == [ref.hex()] and dk.for_stream(str(case.id)) == (ref, dk.key(ref))
    assert app.case(case.id).open is False  # reads back, every event opened
    dk.destroy([ref.hex()], "2026-12-07T00:00:00+00:00", "req", "admin2")
    for env in envs:
        try:
            app.signed_mapper.plaintext(env)
        except ErasedPayload:
            continue
        raise AssertionError(f"v{env.header.version} of the case is readable after its victim's key was destroyed")
