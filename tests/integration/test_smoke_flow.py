"""The shortest story: B protects X; A's query about X is held and looks like any manual answer."""

from ledger.app import Actor
from tests.conftest import A, B


def test_flag_set_at_b_holds_a_query_about_x(node, person):
    app = node.app
    x = person()
    rid = app.request_flags(Actor(B, "req"), x, ["NO_AUTO_RESPONSE", "NON_DISCLOSURE"])
    assert app.approve_request(Actor(B, "apr"), rid) == "approved"
    app.execute_request(Actor(B, "op"), rid)
    answer = app.request_provision(
        Actor(A, "counter"), B, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
    )
    assert answer.status == "in_progress"
    assert B not in answer.message
