"""The hub's sequence number in its messages and on the agencies' records (ledger.linkage.hub_seq, issue 19:
a record late to the hub). Threat: the perpetrator reading the portal page — a provider's lie may only hide more."""

from __future__ import annotations

import json

import pytest

from ledger.errors import Code, InputError
from ledger.hub.sealed_records import position
from ledger.linkage.hub_seq import MAX_SEQ, split_seq, with_seq
from ledger.linkage.messages import AnswerMessage, decode
from ledger.linkage.record_contents import SealedRecordMessage, StampedRecordMessage

ID = "0" * 32
CODE = "a" + "1" * 32


def test_a_message_carries_the_number_and_decodes_strictly_without_it() -> None:
    """The number beside the kind's fields; stripped, the payload decodes as the kind, exactly."""
    m = AnswerMessage(ID, "answered", "data")
    stamped = with_seq(m.encode(), 41)
    assert json.loads(stamped)["hub_seq"] == 41
    payload, seq = split_seq(stamped)
    assert seq == 41 and decode(AnswerMessage, payload) == m
    with pytest.raises(InputError):  # the kind's decoding is strict: left in, the number is refused
        decode(AnswerMessage, stamped)
    assert split_seq(m.encode()) == (m.encode(), None)  # an older hub's message: as it was


@pytest.mark.parametrize("bad", [-1, "3", True, None, 1.0, MAX_SEQ + 1])
def test_a_number_that_is_no_sequence_number_is_malformed(bad: object) -> None:
    payload = json.dumps({"request_id": ID, "hub_seq": bad}).encode()
    with pytest.raises(InputError) as refused:
        split_seq(payload)
    assert refused.value.code == Code.MALFORMED
    with pytest.raises(InputError):
        with_seq(b"{}", bad)  # type: ignore[arg-type]


def test_the_position_is_the_lower_of_stamp_and_arrival() -> None:
    """A stamp below the arrival hides from the stamp (a record late to the hub); one above it is a lie, the
    arrival decides; no stamp: the arrival."""
    assert position(5, 9) == 5
    assert position(9, 9) == 9
    assert position(2**62, 9) == 9
    assert position(None, 9) == 9
    assert position(0, 9) == 0


def test_a_stamped_record_is_a_kind_of_its_own_decoded_exactly() -> None:
    """Old records decode as before; a stamped one needs its stamp, a sealed_record refuses one."""
    stamped = StampedRecordMessage(ID, CODE, "AAAA", 7)
    assert decode(StampedRecordMessage, stamped.encode()) == stamped
    with pytest.raises(InputError):
        decode(SealedRecordMessage, stamped.encode())
    with pytest.raises(InputError):
        decode(StampedRecordMessage, SealedRecordMessage(ID, CODE, "AAAA").encode())
    with pytest.raises(InputError) as refused:
        decode(
            StampedRecordMessage, json.dumps({"record_id": ID, "code": CODE, "contents": "AAAA", "stamp": -3}).encode()
        )
    assert refused.value.code == Code.MALFORMED
