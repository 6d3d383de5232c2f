"""A stranger's number linked onto a victim's: the issue-18 reproduction, refused or recorded and undone.

Reproduced against main at 1d14162: one clerk ran ``identity link --old VICTIM --new STRANGER`` and the stranger's
card then read the victim's Mynaportal records as "self"; a chain V1→V2→V3→V1 was accepted; the victim's old
card still counted as her after the number change.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ledger.app import Actor
from ledger.cli.main import main
from ledger.errors import Code, StateConflict
from ledger.runtime.bootstrap import Node
from projections import views
from tests.conftest import A, B, C
from tests.support.links import link, unlink
from tests.support.staff import enrol_approved

ND = "NON_DISCLOSURE"


def cli(node: Node, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["--data-dir", str(node.config.data_dir), *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def records(node: Node, querier: str, provider: str, subject: str) -> str:
    return node.app.request_provision(
        Actor(querier, "counter"), provider, subject, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    ).request_id


def test_one_clerk_cannot_link_a_stranger_onto_a_victim(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Threat: an insider (one clerk, or the perpetrator talking to one) — on the command line the link is only
    a request, the clerk cannot approve it (exit 4 without the role, 5 with it: four eyes), and the stranger's
    card reads nothing of the victim's."""
    node = sqlite_node
    victim, stranger = person(), person()
    hers = records(node, A, B, victim)
    code, out, err = cli(node, capsys, "identity", "link", "--as", f"{C}/req", "--old", victim, "--new", stranger,
                         "--reason", "窓口で依頼")  # fmt: skip
    assert code == 0, err
    rid = json.loads(out)["request_id"]
    assert views.portal_records(node, stranger, victim).access == "none"
    code, _, err = cli(node, capsys, "identity", "approve", "--as", f"{C}/req", rid)
    assert code == 4 and "role_not_permitted" in err
    enrol_approved(node, Actor(C, "admin"), "clerk", ["requester", "approver"], "clerk")
    code, out, err = cli(node, capsys, "identity", "link", "--as", f"{C}/clerk", "--old", victim, "--new", stranger,
                         "--reason", "窓口で依頼")  # fmt: skip
    own = json.loads(out)["request_id"]
    code, _, err = cli(node, capsys, "identity", "approve", "--as", f"{C}/clerk", own)
    assert code == 5 and "four_eyes" in err
    assert views.portal_records(node, stranger, victim).access == "none"
    assert hers not in [r.request_id for r in views.portal_records(node, stranger, stranger).records]
    code, out, err = cli(node, capsys, "identity", "requests", "--as", f"{C}/apr")
    waiting = [json.loads(line) for line in out.splitlines()]
    assert {(w["request_id"], w["requested_by"], w["kind"]) for w in waiting} == {
        (rid, "req", "link"),
        (own, "clerk", "link"),
    }
    assert cli(node, capsys, "identity", "requests", "--as", f"{A}/apr")[1] == "", "another agency's are not listed"
    assert cli(node, capsys, "identity", "requests", "--as", f"{C}/counter")[0] == 4
    code, _, err = cli(node, capsys, "identity", "reject", "--as", f"{C}/apr", own, "--reason", "no notice seen")
    assert code == 0, err
    assert [
        json.loads(line)["request_id"]
        for line in cli(node, capsys, "identity", "requests", "--as", f"{C}/req")[1].splitlines()
    ] == [rid]


def test_two_colluding_clerks_are_recorded_and_their_link_is_undone(
    sqlite_node: Node, person: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Threat: an insider pair (two clerks colluding with the perpetrator) — the link happens, under both names,
    in the log every auditor reads; a second pair unlinks it and the stranger's access ends at once, while the
    flag the agency set on the stranger's number believing it hers keeps protecting the victim."""
    node = sqlite_node
    victim, stranger = person(), person()
    hers = records(node, A, B, victim)
    link(node.app, C, victim, stranger)
    assert hers in [r.request_id for r in views.portal_records(node, stranger, victim).records]
    rid = node.app.request_flags(Actor(B, "req"), stranger, [ND])
    node.app.approve_request(Actor(B, "apr"), rid)
    node.app.execute_request(Actor(B, "op"), rid)
    trail = [(e.event, e.agency, e.actor) for e in views.subject_timeline(node, Actor(C, "aud"), victim, "audit")]
    assert ("LinkRequest.Requested", C, "req") in trail and ("LinkRequest.Approved", C, "apr") in trail
    code, out, err = cli(node, capsys, "identity", "unlink", "--as", f"{C}/req", "--old", victim,
                         "--reason", "the stranger's notice was forged")  # fmt: skip
    assert code == 0, err
    rid = json.loads(out)["request_id"]
    code, out, err = cli(node, capsys, "identity", "approve", "--as", f"{C}/apr2", rid)
    assert code == 0, err
    done = json.loads(out)
    v = node.app.subject(victim)
    assert done["kind"] == "unlink" and done["carried"][v] == [ND], "staff are told what still protects her"
    assert views.portal_records(node, stranger, victim).access == "none"
    assert node.state.flags_for(v) == {ND: [B]}


def test_chains_cycles_and_the_old_card(sqlite_node: Node, person: Callable[[], str]) -> None:
    """Threat: the perpetrator with the victim's old card, and an insider pair building V1→V2→V3→V1: the cycle
    and the chain are refused whoever approves; the old card reads nothing once the number changed; undoing the
    link gives the old number back its card."""
    node = sqlite_node
    v1, v2, v3 = person(), person(), person()
    made = records(node, A, B, v1)
    link(node.app, C, v1, v2)
    for old, new in ((v2, v3), (v3, v1)):
        with pytest.raises(StateConflict) as refused:
            link(node.app, A, old, new)
        assert refused.value.code == Code.LINK_CONFLICT
    assert views.portal_records(node, v1, v1).access == "none", "the old card is nobody's"
    assert [r.request_id for r in views.portal_records(node, v2, v1).records] == [made]
    unlink(node.app, C, v1)
    assert views.portal_records(node, v1, v1).access == "self"
    assert views.portal_records(node, v2, v1).access == "none"
    link(node.app, B, v2, v3)  # v2 is free again: a link of its own
