"""The ``proxy_registration`` message, decoded strictly (issue 19, ``ledger.linkage.proxy_registrations``).

Threats: a peer agency or a broker operator sending a malformed or hostile registration — extra, missing or
mistyped fields, an unknown action, the person named as their own proxy: refused (``malformed``), so the hub
parks it and nothing is registered.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

import pytest

from ledger.errors import Code, InputError
from ledger.linkage.messages import decode
from ledger.linkage.proxy_registrations import ProxyRegistrationMessage

X, P = "a" + "0" * 32, "a" + "1" * 32


def test_a_registration_round_trips_and_refuses_anything_else() -> None:
    """Peer agency or broker operator: only exactly the kind's fields, each of its type, with a known action and
    two different people, decode; each broken variant is refused as malformed."""
    good = ProxyRegistrationMessage(uuid.uuid4().hex, X, P, "register")
    assert decode(ProxyRegistrationMessage, good.encode()) == good
    cancel = ProxyRegistrationMessage(uuid.uuid4().hex, X, P, "cancel")
    assert decode(ProxyRegistrationMessage, cancel.encode()).action == "cancel"
    fields = asdict(good)
    broken = [
        {**fields, "holder": "131024"},
        {k: v for k, v in fields.items() if k != "proxy_code"},
        {**fields, "action": "approve"},
        {**fields, "proxy_code": X},
        {**fields, "registration_id": "not-an-id"},
        {**fields, "code": True},
    ]
    for payload in broken:
        with pytest.raises(InputError) as refused:
            decode(ProxyRegistrationMessage, json.dumps(payload).encode())
        assert refused.value.code in (Code.MALFORMED, Code.INVALID_INPUT)
