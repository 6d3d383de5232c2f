"""The bytes of the hub's heads, decisions, proofs and evidence (ledger/linkage/hub_wire.py).

Threat: the hub or a peer sending bytes that decode to something other than what was signed or kept — a
second encoding of a signed head, trailing bytes, a truncated proof — and the broker operator flipping bits
on the way. Every decoder gives back exactly what re-encodes to its input, or a ``malformed`` ledger error;
never another exception. Evidence kept as bytes still checks against the hub's key after the round trip.
"""

from __future__ import annotations

from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import Code, FlagLedgerError, IntegrityError
from ledger.linkage.flag_map import map_key
from ledger.linkage.flag_state import HubFlagMap
from ledger.linkage.hiding import FlagChange
from ledger.linkage.hub_wire import (
    decode_decision,
    decode_evidence,
    decode_head,
    decode_proof,
    decode_routing,
    encode_decision,
    encode_evidence,
    encode_head,
    encode_proof,
    encode_routing,
    evidence_digest,
)
from ledger.linkage.map_heads import AUTO, decide
from ledger.linkage.routing import Freshness, verify_routing
from ledger.linkage.witness import Evidence, check_evidence
from ledger.log.signing import Signer

HUB = Signer.generate("hub")
X = "h" + "3" * 64


def _samples() -> tuple[bytes, bytes, bytes, bytes, bytes]:
    flags = HubFlagMap()
    flags.apply(FlagChange(1, X, "131016", "NO_AUTO_RESPONSE", "set"))
    for i in range(30):
        flags.apply(FlagChange(2 + i, f"h{i:064d}", "131024", "NON_DISCLOSURE", "set"))
    head = flags.head(HUB, seq=31, log_size=31, log_root=bytes(32), time="2026-12-07T03:00:00Z")
    bent = decide(HUB, request=uuid4().hex, provider="132012", person_key=map_key(X), action=AUTO, head=head)
    proof = flags.map.prove(map_key(X))
    with pytest.raises(FlagLedgerError) as caught:
        verify_routing(
            bent, head, proof, HUB.public_key, provider="132012", person_key=map_key(X), freshness=Freshness()
        )
    evidence = caught.value.evidence  # type: ignore[attr-defined]
    absent = flags.map.prove(map_key("h" + "9" * 64))
    return (
        encode_head(head),
        encode_decision(bent),
        encode_proof(proof),
        encode_proof(absent),
        encode_evidence(evidence),
    )


HEAD, DECISION, PROOF, ABSENT, EVIDENCE = _samples()
DECODERS = [(decode_head, HEAD), (decode_decision, DECISION), (decode_proof, PROOF), (decode_proof, ABSENT),
            (decode_evidence, EVIDENCE)]  # fmt: skip


def test_everything_round_trips_and_evidence_still_proves_after_it() -> None:
    assert encode_head(decode_head(HEAD)) == HEAD
    assert encode_decision(decode_decision(DECISION)) == DECISION
    assert encode_proof(decode_proof(PROOF)) == PROOF and decode_proof(ABSENT).value is None
    evidence = decode_evidence(EVIDENCE)
    assert evidence.code == Code.FLAG_IGNORED and encode_evidence(evidence) == EVIDENCE
    assert check_evidence(evidence, HUB.public_key)
    assert evidence_digest(evidence) == evidence_digest(decode_evidence(EVIDENCE))
    assert not check_evidence(evidence, Signer.generate("hub").public_key)


@pytest.mark.parametrize(("decode", "data"), DECODERS)
def test_trailing_bytes_and_every_truncation_are_malformed(decode, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError) as caught:
        decode(data + b"\x00")
    assert caught.value.code == Code.MALFORMED
    for cut in range(len(data)):
        with pytest.raises(IntegrityError):
            decode(data[:cut])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DECODERS), st.data())
def test_flipped_bytes_give_a_ledger_error_or_an_exact_decoding(case, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    decode, raw = case
    at = data.draw(st.integers(0, len(raw) - 1))
    flipped = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    try:
        value = decode(flipped)
    except FlagLedgerError:
        return
    encode = {decode_head: encode_head, decode_decision: encode_decision, decode_proof: encode_proof,
              decode_evidence: encode_evidence}[decode]  # fmt: skip
    assert encode(value) == flipped


def test_an_evidence_of_another_code_does_not_check() -> None:
    evidence = decode_evidence(EVIDENCE)
    forged = Evidence(Code.HUB_FORK, evidence.heads, "relabelled", evidence.decision, evidence.proofs)
    assert not check_evidence(decode_evidence(encode_evidence(forged)), HUB.public_key)


def test_a_decision_travels_sealed_and_a_flagged_persons_looks_like_anyone_elses() -> None:
    """Threat: the broker operator. The hub's message to the provider (decision, head, proof) is sealed at the
    answer size, so the flagged person's and an unflagged person's are one size and show nothing; the provider
    opens it and runs its checks on what it decoded."""
    from ledger.linkage.buckets import ANSWER_SIZE
    from ledger.linkage.sealing import new_sealing_key, seal, unseal

    _, provider_key = new_sealing_key()
    flags = HubFlagMap()
    flags.apply(FlagChange(1, X, "131016", "NO_AUTO_RESPONSE", "set"))
    for i in range(200):
        flags.apply(FlagChange(2 + i, f"h{i:064d}", "131024", "NON_DISCLOSURE", "set"))
    head = flags.head(HUB, seq=201, log_size=201, log_root=bytes(32), time="t")
    sealed = {}
    for person in (X, "h" + "8" * 64):
        decision, proof = flags.route(HUB, request=uuid4().hex, provider="132012", person=person, head=head)
        payload = encode_routing(decision, head, proof)
        sealed[person] = seal(HUB, provider_key.public_key(), "132012", uuid4().hex, "routing", payload, ANSWER_SIZE)
        assert payload not in sealed[person] and map_key(person) not in sealed[person]
    assert len(sealed[X]) == len(sealed["h" + "8" * 64])
    opened = unseal(provider_key, "132012", sealed[X], lambda sender, key_id: HUB.public_key)
    decision, got_head, proof = decode_routing(opened.payload)
    seen = verify_routing(
        decision, got_head, proof, HUB.public_key, provider="132012", person_key=map_key(X), freshness=Freshness()
    )
    assert seen.flags == {"NO_AUTO_RESPONSE"}
