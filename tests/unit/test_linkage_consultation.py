"""The consultation's kinds and the four-eyes decision rule (ledger/linkage/consultation.py), without a hub.

Threats: a holder's advice naming the holder (free text the provider would read), a peer agency or broken
sender (malformed kinds), the administrator at the provider (changing a decision after two staff signed it,
deciding alone, deciding with a revoked key), the perpetrator (a provider deciding before the holders advised).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, replace

import pytest

from ledger.errors import Code, FlagLedgerError, InputError
from ledger.linkage.consultation import (
    AdviceMessage,
    AdviceRelay,
    Escalation,
    StaffAnswer,
    StaffDesk,
    check_decision,
    combine,
    decision_statement,
)
from ledger.linkage.messages import RoutedQuery, decode
from tests.support.staff_keys import approval, roster_of, staff_signer

A, C = "131016", "131032"
APR, APR2, ADMIN = staff_signer(A, "apr"), staff_signer(A, "apr2"), staff_signer(A, "admin")


def routed(answer: str = "staff") -> RoutedQuery:
    return RoutedQuery(uuid.uuid4().hex, C, "a" + uuid.uuid4().hex, "児童手当", 74, "地方税関係情報", answer)


def signed(
    request_id: str,
    status: str = "not_provided",
    data: str = "",
    advice: str = "do_not_disclose",
    basis: str = "advised",
) -> StaffAnswer:
    statement = decision_statement(A, request_id, status, data, advice, basis)
    one, two = approval(APR, statement), approval(APR2, statement)
    return StaffAnswer(request_id, status, data, advice, basis, one.key_id, one.signature, two.key_id, two.signature)


def test_each_kind_round_trips_and_is_decoded_strictly() -> None:
    """Peer agency or broken sender: extra, missing or out-of-list fields are ledger errors."""
    rid = uuid.uuid4().hex
    for m in (
        AdviceMessage(rid, "may_disclose"),
        AdviceRelay(rid, "do_not_disclose"),
        Escalation(rid, "no_advice", "none"),
        signed(rid),
    ):
        assert decode(type(m), m.encode()) == m
        extra = json.dumps({**asdict(m), "holder": "131024"}).encode()
        with pytest.raises(InputError):
            decode(type(m), extra)
    with pytest.raises(InputError):
        decode(StaffAnswer, json.dumps({**asdict(signed(rid)), "status": "in_progress"}).encode())


def test_advice_is_a_fixed_word_that_cannot_name_the_holder() -> None:
    """A holder's advice is relayed to the provider: free text could carry the holder's name or a reason."""
    rid = uuid.uuid4().hex
    for text in ("do not disclose (B, DV shelter)", "131024", "", "none"):
        with pytest.raises(InputError):
            AdviceMessage(rid, text).encode()
    assert combine([]) == "none" and combine(["may_disclose", "do_not_disclose"]) == "do_not_disclose"


def test_a_decision_binds_every_field_two_staff_signed() -> None:
    """Administrator changing a decision after two staff signed it: any changed field breaks the signatures."""
    roster = roster_of(A, APR, APR2)
    decision = signed(uuid.uuid4().hex)
    assert check_decision(roster, A, decision) == ("apr", "apr2")
    for change in (
        {"status": "answered"},
        {"data": "x"},
        {"advice": "may_disclose"},
        {"basis": "escalated"},
        {"request_id": uuid.uuid4().hex},
    ):
        with pytest.raises(FlagLedgerError) as refused:
            check_decision(roster, A, replace(decision, **change))
        assert refused.value.code == Code.STAFF_SIGNATURE
    with pytest.raises(FlagLedgerError):  # another provider's roster: not its staff
        check_decision(roster_of("131024", APR, APR2), "131024", decision)


def test_one_person_or_a_revoked_key_does_not_decide() -> None:
    """Administrator deciding alone (two keys of one person), a staff member whose key was revoked."""
    second_key = staff_signer(A, "admin")
    roster = roster_of(A, APR, APR2, ADMIN, second_key)
    rid = uuid.uuid4().hex
    statement = decision_statement(A, rid, "answered", "", "may_disclose", "advised")
    one, two = approval(ADMIN, statement), approval(second_key, statement)
    alone = StaffAnswer(
        rid, "answered", "", "may_disclose", "advised", one.key_id, one.signature, two.key_id, two.signature
    )
    with pytest.raises(FlagLedgerError) as refused:
        check_decision(roster, A, alone)
    assert refused.value.code == Code.FOUR_EYES
    roster.keys[APR2.key_id].revoked = True
    with pytest.raises(FlagLedgerError) as revoked:
        check_decision(roster, A, signed(rid))
    assert revoked.value.code == Code.STAFF_SIGNATURE


def test_the_desk_decides_nothing_before_advice_or_the_deadline() -> None:
    """Perpetrator: a provider's staff deciding before the holders advised (the desk refuses; so does the hub);
    an automatic routed query is no case; a case is decided once."""
    desk = StaffDesk(A, {A: roster_of(A, APR, APR2)})
    assert not desk.take(routed("auto"))
    query = routed()
    assert desk.take(query)
    with pytest.raises(FlagLedgerError) as early:
        desk.statement(query.request_id, "answered", "")
    assert early.value.code == Code.STAFF_DECISION_REQUIRED
    desk.take(Escalation(query.request_id, "answer_refused", "none"))
    assert desk.cases[query.request_id].basis is None and desk.escalated()  # raised, still no basis
    desk.take(AdviceRelay(query.request_id, "may_disclose"))
    statement = desk.statement(query.request_id, "answered", "d")
    decided = desk.decide(query.request_id, "answered", "d", approval(APR, statement), approval(APR2, statement))
    assert (decided.advice, decided.basis) == ("may_disclose", "advised") and desk.pending() == []
    with pytest.raises(FlagLedgerError) as again:
        desk.decide(query.request_id, "answered", "d", approval(APR, statement), approval(APR2, statement))
    assert again.value.code == Code.CONFLICT
    with pytest.raises(FlagLedgerError):
        desk.take(AdviceRelay(uuid.uuid4().hex, "may_disclose"))  # no such case


def test_the_desk_decides_again_when_the_hub_refused_a_decision_on_older_advice() -> None:
    """Perpetrator: a decision taken on the deadline's escalation before the holder's late ``do_not_disclose``
    reached the hub is refused there; the hub's ``decide_again`` puts the case back in the desk's queue and
    the new decision is taken on the advice relayed."""
    desk = StaffDesk(A, {A: roster_of(A, APR, APR2)})
    query = routed()
    desk.take(query)
    desk.take(Escalation(query.request_id, "no_advice", "none"))
    statement = desk.statement(query.request_id, "answered", "d")
    first = desk.decide(query.request_id, "answered", "d", approval(APR, statement), approval(APR2, statement))
    assert first.basis == "escalated" and desk.pending() == []
    desk.take(AdviceRelay(query.request_id, "do_not_disclose"))
    desk.take(Escalation(query.request_id, "decide_again", "do_not_disclose"))
    assert [c.routed.request_id for c in desk.pending()] == [query.request_id]
    statement = desk.statement(query.request_id, "not_provided", "")
    again = desk.decide(query.request_id, "not_provided", "", approval(APR, statement), approval(APR2, statement))
    assert (again.status, again.advice, again.basis) == ("not_provided", "do_not_disclose", "advised")
