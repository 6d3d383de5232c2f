"""The erasure's two wire kinds decode strictly (issue 22). Threat: a peer agency or a broken sender — a
malformed erasure is a ledger error the hub parks, never a partial erasure; the portal takes only its own codes."""

from __future__ import annotations

import json
import uuid

import pytest

from ledger.errors import InputError
from ledger.linkage.erasure_messages import ErasureMessage, PageErasure
from ledger.linkage.messages import decode

CODE, PORTAL_CODE = "a" + "0" * 32, "m" + "1" * 32


def test_each_kind_round_trips() -> None:
    erasure = ErasureMessage(uuid.uuid4().hex, CODE)
    assert decode(ErasureMessage, erasure.encode()) == erasure
    notice = PageErasure(PORTAL_CODE, 7)
    assert decode(PageErasure, notice.encode()) == notice


@pytest.mark.parametrize(
    "payload",
    [
        {"erasure_id": "not-hex", "code": CODE},
        {"erasure_id": uuid.uuid4().hex, "code": "a123"},
        {"erasure_id": uuid.uuid4().hex},
        {"erasure_id": uuid.uuid4().hex, "code": CODE, "agency": "131024"},  # no field names another agency
        {"erasure_id": 5, "code": CODE},
    ],
)
def test_a_malformed_erasure_is_refused(payload: dict[str, object]) -> None:
    with pytest.raises(InputError):
        decode(ErasureMessage, json.dumps(payload).encode())


@pytest.mark.parametrize(
    "payload",
    [
        {"code": CODE, "version": 1},  # an agency's code: the portal knows people by its own only
        {"code": PORTAL_CODE, "version": -1},
        {"code": PORTAL_CODE, "version": True},
        {"code": PORTAL_CODE, "version": "1"},
    ],
)
def test_a_malformed_page_erasure_is_refused(payload: dict[str, object]) -> None:
    with pytest.raises(InputError):
        decode(PageErasure, json.dumps(payload).encode())
