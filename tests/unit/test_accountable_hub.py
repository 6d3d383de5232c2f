"""A malicious hub against the providers, holders and witnesses that check it (issue 20, docs/accountable-hub.md).

Threat: the hub itself (and whoever runs it) — it signs what it likes. It drops a holder's flag from its map,
routes an automatic answer past a flag, serves a stale map, shows different maps to different parties (a fork),
rewrites its log, or announces an older head again (a rollback). Also the broker operator, replaying an old
routing decision. Each case is detected by the party the issue names, and what the hub signed is evidence a third
party checks again with the hub's public key alone (``check_evidence``).
"""

from __future__ import annotations

from dataclasses import replace
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.errors import Code, HubMisbehaviour, IntegrityError, SignatureError
from ledger.linkage.flag_map import FlagEntry, MapProof, holding_key, map_key
from ledger.linkage.flag_state import HubFlagMap
from ledger.linkage.hiding import FlagChange
from ledger.linkage.map_heads import AUTO, STAFF, Action, MapHead, RoutingDecision, decide, sign_head
from ledger.linkage.routing import Freshness, check_own_flags, verify_routing
from ledger.linkage.witness import Witness, check_evidence
from ledger.log.signing import Signer
from ledger.merkle import consistency_proof, leaf_hash, root_hash

B, C, P = "131016", "131024", "132012"  # two holders and a provider
X, Y = "h" + "1" * 64, "h" + "2" * 64  # hub person ids: X is protected by B, Y by nobody
ND, NA = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"


def code_of(person: str, holder: str) -> str:
    """A holder's own code for a person (in real life an HMAC under the holder's secret, ledger.linkage.codes)."""
    return f"a{holder}{person[1:9]}"


def holder_checks(hub: Hub, head: MapHead, expected: set[str], person: str = X, holder: str = B) -> None:
    proofs = hub.flags.holder_proofs(person, holder)
    check_own_flags(
        head, *proofs, hub.key, holder=holder, code=code_of(person, holder), person_key=map_key(person),
        expected=frozenset(expected),
    )  # fmt: skip


class Hub:
    """An honest hub's state and keys; each test bends it the way a malicious hub would."""

    def __init__(self) -> None:
        self.signer = Signer.generate("hub")
        self.flags = HubFlagMap(code_of=code_of)
        self.log: list[bytes] = []  # the hub's sequenced items, as RFC 6962 leaves
        self.seq = 0
        self.last: MapHead | None = None  # the newest head signed: the next one follows it

    @property
    def key(self) -> Ed25519PublicKey:
        return self.signer.public_key

    def change(self, person: str, holder: str, flag: str, action: str = "set") -> None:
        self.seq += 1
        self.flags.apply(FlagChange(self.seq, person, holder, flag, action))
        self.log.append(leaf_hash(f"{self.seq}/{person}/{holder}/{flag}/{action}".encode()))

    def head(self) -> MapHead:
        self.last = self.flags.head(
            self.signer,
            seq=self.seq,
            log_size=len(self.log),
            log_root=root_hash(self.log),
            time="2026-12-07T03:00Z",
            after=self.last,
        )
        return self.last


@pytest.fixture
def hub() -> Hub:
    h = Hub()
    h.change(X, B, NA)
    h.change(X, B, ND)
    h.change(Y, C, NA)
    h.change(Y, C, NA, "release")
    return h


def route(hub: Hub, person: str, head: MapHead, action: Action | None = None) -> tuple[RoutingDecision, MapProof]:
    decision, proof = hub.flags.route(hub.signer, request=uuid4().hex, provider=P, person=person, head=head)
    if action is not None:  # the hub signs whatever decision it likes
        decision = decide(
            hub.signer, request=decision.request, provider=P, person_key=map_key(person), action=action, head=head
        )
    return decision, proof


def provider_checks(
    hub: Hub, person: str, decision: RoutingDecision, head: MapHead, proof: MapProof, seen: Freshness | None = None
) -> FlagEntry:
    return verify_routing(
        decision, head, proof, hub.key, provider=P, person_key=map_key(person), freshness=seen or Freshness()
    )


# -- the honest hub: every check passes --------------------------------------------------------------------


def test_an_honest_hub_passes_every_check(hub: Hub) -> None:
    head = hub.head()
    decision, proof = route(hub, X, head)
    assert decision.action == STAFF
    assert provider_checks(hub, X, decision, head, proof).flags == {ND, NA}
    decision, proof = route(hub, Y, head)  # flagged once, released: absent from the map, answered automatically
    assert decision.action == AUTO and proof.value is None
    assert provider_checks(hub, Y, decision, head, proof).flags == frozenset()
    holder_checks(hub, head, {ND, NA})


def test_the_provider_learns_which_flags_never_who_holds_them(hub: Hub) -> None:
    """Threat: a peer agency as provider. The leaf it is shown is the same whoever holds the flags."""
    other = Hub()
    other.change(X, C, NA)
    other.change(X, C, ND)
    _, mine = route(hub, X, hub.head())
    _, theirs = route(other, X, other.head())
    assert mine.value == theirs.value == FlagEntry(frozenset({ND, NA})).encode()
    assert B.encode() not in mine.encode() and C.encode() not in theirs.encode()


# -- drops a flag: the holder detects ------------------------------------------------------------------------


def test_a_hub_that_drops_a_holders_flag_is_caught_by_the_holder(hub: Hub) -> None:
    honest = hub.head()
    honest_proofs = hub.flags.holder_proofs(X, B)
    hub.flags.map.delete(map_key(X))  # the person's leaf (what providers see) loses B's flags
    hub.flags.map.delete(holding_key(map_key(X), B, code_of(X, B)))  # and B's own holding
    head = sign_head(
        hub.signer,
        seq=hub.seq + 1,
        log_size=len(hub.log),
        log_root=root_hash(hub.log),
        map_root=hub.flags.root(),
        time="t",
    )
    with pytest.raises(HubMisbehaviour) as caught:
        holder_checks(hub, head, {NA})
    assert caught.value.code == Code.FLAG_DROPPED
    assert check_evidence(caught.value.evidence, hub.key)
    assert not check_evidence(caught.value.evidence, Signer.generate("hub").public_key)
    # the same proofs do not prove a drop of a flag the leaves do show
    assert not check_evidence(replace(caught.value.evidence, heads=(honest,), proofs=honest_proofs), hub.key)
    assert honest.map_root != head.map_root


def test_dropping_the_flag_only_where_providers_look_is_caught_too(hub: Hub) -> None:
    """The hub keeps B's holding leaf (B's own view) but clears the person's leaf (the providers' view)."""
    hub.flags.map.delete(map_key(X))
    head = hub.head()
    with pytest.raises(HubMisbehaviour) as caught:
        holder_checks(hub, head, {ND})
    assert caught.value.code == Code.FLAG_DROPPED


def test_a_holder_shown_a_proof_for_another_key_refuses_it(hub: Hub) -> None:
    head = hub.head()
    person, _ = hub.flags.holder_proofs(X, B)
    with pytest.raises(IntegrityError) as caught:  # the holding proof of someone else's holding
        check_own_flags(
            head,
            person,
            hub.flags.map.prove(holding_key(map_key(Y), C, code_of(Y, C))),
            hub.key,
            holder=B,
            code=code_of(X, B),
            person_key=map_key(X),
            expected={ND},
        )
    assert caught.value.code == Code.BAD_PROOF


# -- ignores a flag when routing: the provider refuses ------------------------------------------------------


def test_an_automatic_answer_routed_past_a_flag_is_refused_with_evidence(hub: Hub) -> None:
    head = hub.head()
    decision, proof = route(hub, X, head, action=AUTO)
    with pytest.raises(HubMisbehaviour) as caught:
        provider_checks(hub, X, decision, head, proof)
    assert caught.value.code == Code.FLAG_IGNORED
    evidence = caught.value.evidence
    assert check_evidence(evidence, hub.key)
    # the same evidence about an unflagged person would prove nothing
    decision_y, proof_y = route(hub, Y, head, action=AUTO)
    assert not check_evidence(replace(evidence, decision=decision_y, proofs=(proof_y,)), hub.key)


def test_auto_past_a_flag_under_an_old_head_is_still_the_hubs_lie(hub: Hub) -> None:
    old = hub.head()
    decision, proof = route(hub, X, old, action=AUTO)
    hub.change(Y, C, ND)
    seen = Freshness()
    seen.see(hub.head(), hub.key)
    with pytest.raises(HubMisbehaviour) as caught:
        provider_checks(hub, X, decision, old, proof, seen)
    assert caught.value.code == Code.FLAG_IGNORED


def test_the_hub_cannot_hide_the_flag_behind_another_proof(hub: Hub) -> None:
    head = hub.head()
    decision, _ = route(hub, X, head, action=AUTO)
    _, proof_y = route(hub, Y, head)  # Y's non-membership proof offered for X
    with pytest.raises(IntegrityError) as caught:
        provider_checks(hub, X, decision, head, proof_y)
    assert caught.value.code == Code.BAD_PROOF
    bent = replace(decision, person_key=map_key(Y))  # the decision claims Y: its signature breaks
    with pytest.raises(SignatureError):
        provider_checks(hub, X, bent, head, proof_y)
    honest_y = decide(hub.signer, request=uuid4().hex, provider=P, person_key=map_key(Y), action=AUTO, head=head)
    with pytest.raises(IntegrityError) as caught:  # a signed decision about Y, when the provider asked about X
        provider_checks(hub, X, honest_y, head, proof_y)
    assert caught.value.code == Code.BAD_PROOF


def test_a_proof_from_another_map_or_a_forged_head_is_refused(hub: Hub) -> None:
    head = hub.head()
    decision, proof = route(hub, X, head)
    empty = HubFlagMap()
    with pytest.raises(IntegrityError) as caught:  # "absent" from an empty map, shown under this head
        provider_checks(hub, X, decision, head, empty.map.prove(map_key(X)))
    assert caught.value.code == Code.BAD_PROOF
    with pytest.raises(SignatureError):  # a head not signed by the hub's key
        forger = Signer.generate("hub")
        provider_checks(
            hub,
            X,
            decision,
            sign_head(
                forger, seq=head.seq, log_size=head.log_size, log_root=head.log_root, map_root=empty.root(), time="t"
            ),
            proof,
        )
    other = decide(hub.signer, request=decision.request, provider=C, person_key=map_key(X), action=STAFF, head=head)
    with pytest.raises(IntegrityError) as caught:  # another provider's decision
        provider_checks(hub, X, other, head, proof)
    assert caught.value.code == Code.MISADDRESSED


# -- serves a stale map: the provider refuses ---------------------------------------------------------------


def test_a_decision_citing_a_stale_map_is_refused(hub: Hub) -> None:
    """Y is flagged again after head 4; the hub answers with head 4, where Y is not flagged."""
    seen = Freshness()
    stale = hub.head()
    hub.change(Y, C, NA)
    fresh = hub.head()
    seen.see(fresh, hub.key)  # every head the hub announces reaches every agency
    decision, proof = route(hub, Y, fresh)
    assert provider_checks(hub, Y, decision, fresh, proof, seen).flags == {NA}
    old = HubFlagMap(code_of=code_of)
    old.apply(FlagChange(1, X, B, NA, "set"))
    old.apply(FlagChange(2, X, B, ND, "set"))
    assert old.root() == stale.map_root
    stale_decision, stale_proof = old.route(hub.signer, request=uuid4().hex, provider=P, person=Y, head=stale)
    assert stale_decision.action == AUTO
    with pytest.raises(IntegrityError) as caught:
        provider_checks(hub, Y, stale_decision, stale, stale_proof, seen)
    assert caught.value.code == Code.STALE_MAP


def test_an_old_decision_replayed_by_the_broker_operator_is_refused(hub: Hub) -> None:
    """Threat: the broker operator re-injects a genuine old decision after a newer head was announced."""
    seen = Freshness()
    old_head = hub.head()
    decision, proof = route(hub, Y, old_head)
    assert provider_checks(hub, Y, decision, old_head, proof, seen).flags == frozenset()
    hub.change(Y, C, NA)
    seen.see(hub.head(), hub.key)
    with pytest.raises(IntegrityError) as caught:
        provider_checks(hub, Y, decision, old_head, proof, seen)
    assert caught.value.code == Code.STALE_MAP


# -- forks its log or map: witnesses detect ----------------------------------------------------------------


def test_two_maps_for_one_sequence_are_a_fork_with_two_signed_heads_as_evidence(hub: Hub) -> None:
    """The hub shows the holder B a map with its flag and the provider one without, both at one sequence."""
    for_holder = hub.head()
    hub.flags.map.delete(map_key(X))
    for_provider = hub.head()
    assert for_holder.seq == for_provider.seq
    witness = Witness(hub.key)
    assert witness.observe(for_holder) is None
    evidence = witness.cross_check(for_provider)  # gossip: the provider's witness shows its head
    assert evidence is not None and evidence.code == Code.HUB_FORK
    assert evidence.heads == (for_holder, for_provider)
    assert check_evidence(evidence, hub.key)
    seen = Freshness()  # and a provider that already saw the holder's head refuses the other one
    seen.see(for_holder, hub.key)
    decision, proof = route(hub, X, for_provider)
    with pytest.raises(HubMisbehaviour) as caught:
        provider_checks(hub, X, decision, for_provider, proof, seen)
    assert caught.value.code == Code.HUB_FORK and check_evidence(caught.value.evidence, hub.key)


def test_a_log_that_does_not_extend_the_last_one_is_a_fork(hub: Hub) -> None:
    witness = Witness(hub.key)
    first = hub.head()
    assert witness.observe(first) is None
    size = len(hub.log)
    hub.change(Y, C, ND)
    honest = hub.head()
    assert witness.observe(honest, consistency_proof(hub.log, size)) is None
    size = len(hub.log)
    hub.log[1] = leaf_hash(b"a rewritten flag change")  # the hub rewrites history, then goes on
    hub.change(X, B, ND, "release")
    rewritten = hub.head()
    evidence = witness.observe(rewritten, consistency_proof(hub.log, size))
    assert evidence is not None and evidence.code == Code.HUB_FORK and evidence.heads == (honest, rewritten)
    assert check_evidence(evidence, hub.key)
    assert witness.latest == honest  # the witness stays on the last head it could check


# -- rollback -----------------------------------------------------------------------------------------------


def test_an_older_head_announced_after_a_newer_one_is_a_rollback_a_replay_is_not(hub: Hub) -> None:
    witness = Witness(hub.key)
    behind = hub.head()  # a head the hub signed back then and never announced to this witness
    heads = []
    for _ in range(3):
        size = len(hub.log)
        hub.change(Y, C, NA, "set" if len(heads) % 2 == 0 else "release")
        heads.append(hub.head())
        proof = consistency_proof(hub.log, size) if len(heads) > 1 else []
        assert witness.observe(heads[-1], proof) is None
    assert witness.observe(heads[-1]) is None  # the newest announced again (a redelivered message): nothing
    assert witness.observe(heads[0]) is None  # an old head already seen (a replay by the operator): nothing
    # announced now: the hub went back (its chain is whole: it is the true head before, not another)
    evidence = witness.observe(behind)
    assert evidence is not None and evidence.code == Code.HUB_ROLLBACK
    assert evidence.heads == (heads[-1], behind) and check_evidence(evidence, hub.key)
    assert witness.evidence == [evidence]


def test_a_shrunken_log_under_a_higher_sequence_is_a_rollback(hub: Hub) -> None:
    witness = Witness(hub.key)
    head = hub.head()
    witness.observe(head)
    shrunk = sign_head(
        hub.signer,
        seq=head.seq + 1,
        log_size=head.log_size - 2,
        log_root=root_hash(hub.log[:-2]),
        map_root=head.map_root,
        time="t",
        after=head,
    )
    evidence = witness.observe(shrunk)
    assert evidence is not None and evidence.code == Code.HUB_ROLLBACK and check_evidence(evidence, hub.key)


def test_an_unsigned_head_is_refused_not_taken_as_evidence(hub: Hub) -> None:
    """Threat: the broker operator or a peer framing the hub with a head it never signed."""
    witness = Witness(hub.key)
    head = hub.head()
    witness.observe(head)
    framed = replace(head, map_root=bytes(32))
    with pytest.raises(SignatureError):
        witness.cross_check(framed)
    assert witness.evidence == []


def test_a_split_view_on_disjoint_sequence_numbers_is_found_through_the_log(hub: Hub) -> None:
    """The hub keeps two histories: the holder's (with B's flag on X) and the providers' (without it), and
    gives them different sequence numbers so no two heads share one. The witness asks for a log consistency
    proof between its newest head and the one gossip brought: no proof the hub can give passes."""
    witness = Witness(hub.key)
    for_holder = hub.head()
    assert witness.observe(for_holder) is None
    other = Hub()
    other.signer = hub.signer  # the same hub, keeping a second history
    other.change(Y, C, NA)
    other.change(Y, C, NA, "release")
    other.change(Y, C, ND)
    other.change(Y, C, ND, "release")
    other.change(Y, C, NA)
    for_provider = other.head()
    assert for_provider.seq == for_holder.seq + 1
    evidence = witness.cross_check(for_provider, consistency_proof(other.log, for_holder.log_size))
    assert evidence is not None and evidence.code == Code.HUB_FORK and check_evidence(evidence, hub.key)
    # the honest continuation passes the same check
    size = len(hub.log)
    hub.change(Y, C, ND)
    assert witness.cross_check(hub.head(), consistency_proof(hub.log, size)) is None
