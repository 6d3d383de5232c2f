"""The threat of DOMAIN.md across three agency nodes, with the network in the model's hands.

Same people, moves and commands as :class:`tests.adversarial.threat.LeakMachine`, but the municipalities live
on three nodes (separate data directories, one pseudonym secret, each trusting the others' keys):

    node 0: A (where Y lives) and D      node 1: B and E      node 2: C

Each command runs on the node hosting the agency that issues it; a query from an agency on another node
reaches the provider's node through the information-provision network (``FlagLedger.receive_query``). Every
event a node may share travels to the other nodes through ``consumers.ingest`` (in-process, no broker), and
the model chooses when: messages wait in flight, are delivered in any order, late, or twice; an event ahead
of a gap in its stream must be held back, not applied (the log does not grow), and so must a number change whose
linker the moves known there rule out (its move may still be in flight). ``sync`` delivers everything.

What is checked, after every step, on every node
------------------------------------------------
The invariant of ``threat.py`` (no view the perpetrator can reach names a municipality X has lived in since
fleeing), read on every node: Y's own records, X's records and self-information through the card and the
proxy, and the counters and counter-staff work queues of the visitable municipalities (on their own nodes).
A node can only protect what it has heard of: a view about a person is checked on a node once that node
knows a flag on that person (its nationwide state names a holder, after ingest): before that, the window is
the replication delay, which no design without synchronous coordination closes. ``sync`` checks that this
arming is not vacuous: once everything is delivered, every node's nationwide state names exactly the
model's holders, and no event is left held back.

**A malicious peer** (``malicious_peer_writes``): at any step any municipality's node, running a patched flagledger
(``tests/support/forge.py``), appends events of any shared type to another agency's streams — in that agency's name
or its own — or opens streams in its name, signed with its own valid key, and sends them straight to every other
node. Each must be parked as ``foreign_writer`` on arrival, or held back when that node does not have the stream yet
and parked when the gap fills; none is ever applied (the log never grows by one), and the invariant above holds
after the step as after any other. After a run every node's ``audit verify`` passes (no foreign writer in any log).

Also checked: a request is held whenever its provider's node has heard everything and X is protected, and
then looks to the querier (its answer, its counter) exactly like any slow manual answer; every request made
on a node that has heard everything sends a ``ProbeNotice`` naming exactly the model's holders, and after
``sync`` every holder's work queue (on its own node) lists the probe — requesting agency, provider,
procedure, subject — while no other agency's queue and no counter clerk's queue does.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from consumers.ingest import Outcome, PendingStore, ingest
from consumers.outbox import publishable
from ledger.app import FlagLedger, QuerierAnswer
from ledger.domain.provision import ProvisionRequest
from ledger.log.envelope import Envelope
from ledger.runtime.bootstrap import Node
from projections import views
from tests.adversarial.threat import (
    BASIS,
    MUNICIPALITIES,
    ND,
    QUERIER_MESSAGES,
    A,
    B,
    C,
    D,
    E,
    LeakMachine,
    Request,
    named,
    probe_notices,
)
from tests.support.forge import ANY_AGENCY_TOPICS, KINDS, Forgery, TemplateIndex, forge_kind

NODE_OF = {A: 0, D: 0, B: 1, E: 1, C: 2}
LAYOUT = ((A, D), (B, E), (C,))


@dataclass
class Probe:
    holders: list[str] | None  # the ProbeNotice's holders (None: no notice was sent)
    subject: str
    procedure: str


@dataclass
class Network:
    """Messages published but not yet delivered, per destination node, and what each node already got."""

    cursor: list[int]
    inflight: list[list[bytes]]
    delivered: list[list[bytes]]


class NodesLeakMachine(LeakMachine):
    nodes: ClassVar[list[Node] | None] = None
    net: ClassVar[Network | None] = None
    deliveries: ClassVar[int] = 0
    held_back: ClassVar[int] = 0  # deliveries that arrived ahead of a gap and were held back
    duplicates: ClassVar[int] = 0
    # the malicious peer: forgeries sent (each to every other node), deliveries parked on arrival, held back and
    # parked on release, applied (must stay 0), event types tried; digests of its forgeries (bounded: 32 B each)
    forged: ClassVar[int] = 0
    forged_parked: ClassVar[int] = 0
    forged_held: ClassVar[int] = 0
    forged_released: ClassVar[int] = 0
    forged_applied: ClassVar[int] = 0
    # outcomes other than parked foreign_writer / held back: counted as well as asserted, since the run's engine
    # restarts (FlakyStrategyDefinition) must not hide one
    forged_unexpected: ClassVar[int] = 0
    forged_topics: ClassVar[set[str]] = set()
    forged_digests: ClassVar[set[bytes]] = set()
    indexes: ClassVar[dict[Path, TemplateIndex]] = {}

    def setup_nodes(self) -> None:
        assert NodesLeakMachine.nodes is not None and NodesLeakMachine.net is not None, "set nodes and net first"
        self.all = NodesLeakMachine.nodes
        self.network = NodesLeakMachine.net
        self.n = self.all[0]
        self.app = self.n.app
        self.probes: dict[str, Probe] = {}
        # what the previous history left in flight arrives now: each history starts with the nodes in step
        self.deliver_everything(check=False)

    @initialize(
        perpetrators=st.integers(1, 2),
        proxy=st.booleans(),
        early=st.sampled_from(["", "query", "protect"]),
        to=st.sampled_from(MUNICIPALITIES[1:]),
        protect_there=st.booleans(),
        child=st.booleans(),
    )
    def spouses_in_a_then_x_flees(
        self,
        perpetrators: int,
        proxy: bool,
        early: str,
        to: str,  # type: ignore[override]
        child: bool,
        protect_there: bool,
    ) -> None:
        """As on one node; half the histories also protect where X fled at once (the delivery rules dilute
        the protection rules, and a history without protection checks nothing)."""
        super().spouses_in_a_then_x_flees(perpetrators, proxy, early, to, child)
        if protect_there:
            self.protect_at_once("residence", child)

    def at(self, agency: str) -> FlagLedger:
        return self.all[NODE_OF[agency]].app

    def apps(self) -> list[FlagLedger]:
        return [node.app for node in self.all]

    def node_of(self, agency: str) -> Node:
        return self.all[NODE_OF[agency]]

    def before_cancel_proxy(self) -> None:
        """The registration was made at A; X's municipality cancels it once its node has it."""
        app = self.at(self.residence)
        if app.find_proxy_registration(self.x_numbers[0], self.y_numbers[0][0]) is None:
            self.deliver_to(NODE_OF[self.residence], None)

    # -- the network ------------------------------------------------------------------------------------
    def collect(self) -> None:
        """Everything the nodes published since last time goes in flight to every other node."""
        net = self.network
        for src, node in enumerate(self.all):
            end = node.app.max_position()
            for _, _, raw in publishable(node.app, net.cursor[src]):
                for dst in range(len(self.all)):
                    if dst != src:
                        net.inflight[dst].append(raw)
            # past what it replicated and its local-only events too, or every collect re-reads that tail
            net.cursor[src] = end

    @staticmethod
    def pending_store(node: Node) -> PendingStore:
        store = PendingStore(node.app, node.engine)
        store.on_parked = NodesLeakMachine.released_and_refused
        return store

    @staticmethod
    def released_and_refused(outcome: Outcome, raw: bytes) -> None:
        """An event released from behind a gap and refused: only ever one of the malicious peer's forgeries."""
        if hashlib.sha256(raw).digest() not in NodesLeakMachine.forged_digests or outcome.code != "foreign_writer":
            NodesLeakMachine.forged_unexpected += 1
            raise AssertionError(f"refused when released from behind a gap, not as a forgery: {outcome}")
        NodesLeakMachine.forged_released += 1

    def deliver(self, dst: int, raw: bytes) -> None:
        node = self.all[dst]
        before = node.app.max_position()
        outcome = ingest(node.app, raw, self.pending_store(node))
        # (held_residence: a number change by X's new municipality whose move is still in flight here — sync
        # checks that it applies once the move arrives: nothing stays held)
        assert outcome.kind in ("applied", "duplicate", "held_gap", "held_residence"), f"a valid message was {outcome}"
        if outcome.kind in ("held_gap", "held_residence"):
            NodesLeakMachine.held_back += 1
            assert node.app.max_position() == before, "an event held back (ahead of a gap, or for a move) was applied"
        elif outcome.kind == "duplicate":
            NodesLeakMachine.duplicates += 1
            assert node.app.max_position() == before, "a duplicate was applied again"
        else:
            assert node.app.max_position() == before + outcome.applied
        NodesLeakMachine.deliveries += 1
        delivered = self.network.delivered[dst]
        delivered.append(raw)
        del delivered[:-60]  # enough old messages to redeliver, bounded memory over 10,000 histories

    def deliver_to(self, dst: int, picks: list[int] | None) -> None:
        """Deliver to node ``dst`` the messages ``picks`` chooses (any order), or all of them in order."""
        self.collect()
        queue = self.network.inflight[dst]
        if picks is None:
            while queue:
                self.deliver(dst, queue.pop(0))
            return
        for p in picks:
            if queue:
                self.deliver(dst, queue.pop(p % len(queue)))

    def deliver_everything(self, check: bool = True) -> None:
        for _ in range(2):  # events produced while delivering (none today) would go round once more
            for dst in range(len(self.all)):
                self.deliver_to(dst, None)
        for i, node in enumerate(self.all):
            pending = PendingStore(node.app, node.engine)
            held = [Envelope.from_bytes(r).header for p in pending.waiting() for r in pending.candidates(*p)]
            assert held == [], "an event is still held back after sync: " + ", ".join(
                f"node {i}: v{h.version} of {h.stream} ({h.topic}) from {h.origin}" for h in held
            )
        if check:
            self.check_synced_state()
            self.check_probes_reached_the_holders()

    def synced(self, node_index: int) -> bool:
        """Whether a node has heard everything published so far (nothing in flight to it, nothing held back)."""
        self.collect()
        node = self.all[node_index]
        return not self.network.inflight[node_index] and not PendingStore(node.app, node.engine).waiting()

    @rule(dst=st.integers(0, 2), picks=st.lists(st.integers(0, 50), min_size=1, max_size=6))
    def deliver_some(self, dst: int, picks: list[int]) -> None:
        """Some messages reach one node, in an order of the model's choosing (gaps are held back)."""
        self._step()
        self.deliver_to(dst, picks)

    @rule(dst=st.integers(0, 2), keys=st.lists(st.integers(0, 1000), min_size=1, max_size=12), reverse=st.booleans())
    def deliver_out_of_order(self, dst: int, keys: list[int], reverse: bool) -> None:
        """Part of what is in flight to one node arrives shuffled or reversed (later events of a stream first).

        The order comes from ``keys``, drawn whatever the queue holds: hypothesis replays a history only if
        its draws do not depend on state shared between histories (``st.randoms`` drew once per queued
        message, and the long run stopped with FlakyStrategyDefinition).
        """
        self._step()
        self.collect()
        queue = self.network.inflight[dst]
        if not queue:
            return
        n = len(queue)
        take = min(len(keys), n)
        if reverse:
            chosen = list(range(n - 1, n - 1 - take, -1))  # the latest messages, newest first
        else:
            chosen = sorted(range(n), key=lambda i: (keys[i % len(keys)], -i))[:take]
        batch = [queue[i] for i in chosen]
        for i in sorted(chosen, reverse=True):
            del queue[i]
        for raw in batch:
            self.deliver(dst, raw)

    @rule(dst=st.integers(0, 2), pick=st.integers(0, 59))
    def redeliver(self, dst: int, pick: int) -> None:
        """The network delivers a message a second time (a consumer restarted before committing offsets).

        No precondition: what was delivered before is shared by every history of a run (an old message of an
        earlier history may come back too), and hypothesis replays a history's choices only if whether a rule
        can run depends on that history alone (else FlakyStrategyDefinition, seen in the long run).
        """
        self._step()
        old = self.network.delivered[dst]
        if old:
            raw = old[pick % len(old)]
            node = self.all[dst]
            before = node.app.max_position()
            outcome = ingest(node.app, raw, self.pending_store(node))
            assert outcome.kind in ("duplicate", "held_gap", "held_residence"), f"a redelivered message was {outcome}"
            assert node.app.max_position() == before, "a redelivered message changed the log"
            NodesLeakMachine.duplicates += 1

    @rule(
        attacker=st.sampled_from((A, B, C, D, E)),
        victim=st.integers(0, 3),
        kind=st.sampled_from(KINDS),
        picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
    )
    def malicious_peer_writes(self, attacker: str, victim: int, kind: str, picks: list[int]) -> None:
        """A municipality's patched node writes events of the picked shared types on another agency's streams (or
        opens streams in its name) and sends them to every other node: parked or held back, never applied.

        The types come from what the victim has published that the attacker's node holds (its latest event of each
        type is the template); ``picks`` index them whatever they are, so the draws do not depend on shared state.
        Even picks take one of the two most recent, whose streams are likeliest still in flight to the third node
        (there the forgery waits behind the gap and is parked when the owner's events arrive).
        """
        self._step()
        node = self.node_of(attacker)
        index = NodesLeakMachine.indexes.setdefault(node.config.data_dir, TemplateIndex(node.app))
        latest = index.update()
        target = [m for m in (A, B, C, D, E) if m != attacker][victim]
        topics = sorted(
            (t for (origin, t) in latest if origin == target and t not in ANY_AGENCY_TOPICS),
            key=lambda t: -index.positions[(target, t)],
        )
        for p in picks if topics else []:
            chosen = topics[(p // 2) % min(2, len(topics))] if p % 2 == 0 else topics[p % len(topics)]
            template = latest[(target, chosen)]
            forgery = forge_kind(node.app, attacker, template, kind) or forge_kind(
                node.app, attacker, template, "their_stream"
            )
            assert forgery is not None
            self.send_forgery(NODE_OF[attacker], forgery)

    def send_forgery(self, src: int, f: Forgery) -> None:
        NodesLeakMachine.forged += 1
        NodesLeakMachine.forged_topics.add(f.topic)
        NodesLeakMachine.forged_digests.add(hashlib.sha256(f.raw).digest())
        for dst, node in enumerate(self.all):
            if dst == src:
                continue
            before = node.app.max_position()
            outcome = ingest(node.app, f.raw, self.pending_store(node))
            if node.app.max_position() != before:
                NodesLeakMachine.forged_applied += 1
                raise AssertionError(f"node {dst} applied the malicious peer's {f.label} ({outcome})")
            if outcome.kind == "held_gap":  # the stream is not there yet: its owner is decided on release
                NodesLeakMachine.forged_held += 1
            else:
                if (outcome.kind, outcome.code) != ("parked", "foreign_writer"):
                    NodesLeakMachine.forged_unexpected += 1
                    raise AssertionError(f"{f.label} at node {dst}: {outcome}")
                NodesLeakMachine.forged_parked += 1

    @rule()
    def sync(self) -> None:
        """Everything in flight arrives."""
        self._step()
        self.deliver_everything()

    # -- queries across nodes ---------------------------------------------------------------------------
    def _query(self, querier: str, provider: str, about: str, number: str, info_kind: str) -> None:
        p = NODE_OF[provider]
        app = self.all[p].app
        heard_all = self.synced(p)
        before = app.max_position()
        item, procedure = BASIS[info_kind]
        if NODE_OF[querier] == p:
            asker = self.who(querier, "counter")
            answer = app.request_provision(
                asker, provider, number, legal_item=item, procedure=procedure, info_kind=info_kind
            )
        else:
            answer = app.receive_query(
                querier, provider, number, legal_item=item, procedure=procedure, info_kind=info_kind
            )
        r = Request(
            answer.request_id,
            querier,
            provider,
            about,
            info_kind,
            held=answer.status == "in_progress",
            status=answer.status,
        )
        self.requests[r.rid] = r
        self.note_scope(r.rid, about)
        assert answer.status in ("answered", "in_progress")
        assert (answer.status, answer.message) == (r.status, QUERIER_MESSAGES[r.status]), (
            f"querier answer {answer} is not the plain {r.status} answer"
        )
        notice = probe_notices(app, before).get(r.rid)
        self.probes[r.rid] = Probe(notice, app.subject(number), procedure)
        if heard_all:
            expected = self.protected(about)
            assert r.held == expected, (
                f"request {r.rid} about {about} at {provider}, which has heard everything: held={r.held}, "
                f"expected {expected} (holders {self.holders_of(about)})"
            )
            self.check_probe_notice(app, before, r)

    # -- checks -----------------------------------------------------------------------------------------
    def knows(self, node: Node, number: str) -> set[str]:
        """The flags ``node`` has heard of on the person ``number`` names (its nationwide state)."""
        return set(node.state.flags_for(node.app.subject(number)))

    def check_synced_state(self) -> None:
        """After sync the arming is not vacuous: every node knows exactly the model's holders."""
        for i, node in enumerate(self.all):
            node.projector.catch_up()
            if self.x_numbers:
                self.check_holders(node.app, f"node {i} after sync")

    def flags_held_exactly_where_the_model_says(self) -> None:
        """Across nodes the holders are compared after each ``sync`` (check_synced_state), not while in flight."""

    def check_probes_reached_the_holders(self) -> None:
        """Every notice sent is in each named holder's work queue (deciders), and nowhere else."""
        queues: dict[str, dict[str, views.ProbeNoticeEntry]] = {}
        for m in MUNICIPALITIES:
            node = self.node_of(m)
            queues[m] = {p.request_id: p for p in views.work_queue(node, self.who(m, "rev")).probes}
            assert views.work_queue(node, self.who(m, "counter")).probes == (), f"{m}'s counter sees probes"
        for rid, probe in self.probes.items():
            r = self.requests[rid]
            for m in MUNICIPALITIES:
                entry = queues[m].get(rid)
                if probe.holders is not None and m in probe.holders:
                    assert entry is not None, f"holder {m} never heard of request {rid} about {r.about}"
                    got = (entry.querier, entry.provider, entry.procedure, entry.subject)
                    assert got == (r.querier, r.provider, probe.procedure, probe.subject), (
                        f"{m}'s probe notice of {rid} reads {got}"
                    )
                else:
                    assert entry is None, f"{m} holds no flag named by request {rid}'s notice yet lists it"

    @invariant()
    def no_view_y_can_reach_names_where_x_lives(self) -> None:
        if not self.x_numbers or not self.ever_protected or not self.lived:
            return
        self.collect()
        found: list[str] = []
        armed = False
        for i, node in enumerate(self.all):
            node.projector.catch_up()
            found += self.node_leaks(i, node)
            armed = armed or bool(self.knows(node, self.x))
        for m in [v for v in self.visitable if v == A or v in self.holdings or v in self.pending]:
            found += self.counter_and_queue_leaks(m)
        for r in self.requests.values():
            found += self.answer_leaks(r)
        if armed:
            LeakMachine.armed_checks += 1
            if not self.counted:
                self.counted = True
                LeakMachine.protected_histories += 1
        if found:
            raise AssertionError(
                "a view the perpetrator can reach names a secret municipality "
                f"{sorted(self.secret)}:\n  " + "\n  ".join(found)
            )

    def node_leaks(self, i: int, node: Node) -> list[str]:
        found: list[str] = []
        for k, numbers in enumerate(self.y_numbers):
            for n in {numbers[0], numbers[-1]}:
                if ND in self.knows(node, n):
                    found += self.portal_leaks(f"node {i}: Y{k}'s own records", views.portal_records(node, n, n))
        card_views = [(n, n) for n in {self.x_numbers[0], self.x}]
        card_views += [(self.y_numbers[k][0], self.x) for k in self.proxies]
        for viewer, subject in card_views:
            known = self.knows(node, subject)
            if ND in known:
                found += self.portal_leaks(
                    f"node {i}: X's records as {viewer[:4]}…", views.portal_records(node, viewer, subject)
                )
            if known:
                found += [
                    f"node {i}: {hit}" for hit in self.self_info_leaks(views.self_information(node, viewer, subject))
                ]
        for what, viewer, subject in self.companion_views():
            known = self.knows(node, subject)
            if ND in known:
                found += self.portal_leaks(f"node {i}: {what}", views.portal_records(node, viewer, subject))
            if known:
                info = views.self_information(node, viewer, subject)
                found += [f"node {i}: {hit}" for hit in self.self_info_leaks(info, "K")]
        return found

    def counter_and_queue_leaks(self, m: str) -> list[str]:
        node = self.node_of(m)
        found: list[str] = []
        for about, number in self.counter_subjects().items():
            if self.knows(node, number):
                cv = views.counter_view(node, self.who(m, "counter"), number)
                found += self.counter_leaks(f"{m}'s counter about {about}", cv)
        q = views.work_queue(node, self.who(m, "counter"))
        assert q.held == () and q.probes == (), f"{m}'s counter clerk sees held requests or probe notices"
        if self.knows(node, self.x):
            found += self.queue_leaks(m, q)
        return found

    def answer_leaks(self, r: Request) -> list[str]:
        """The querier's answer, on the provider's node and (once it has the request) on the querier's."""
        found: list[str] = []
        provider_app = self.at(r.provider)
        ans = provider_app.querier_answer(UUID(r.rid))
        found += [f"querier answer {r.rid}: {hit}" for hit in named(ans, self.secret)]
        assert (ans.status, ans.message) == (r.status, QUERIER_MESSAGES[r.status]), (
            f"querier answer of {r.rid}: {ans}, expected {r.status}"
        )
        querier_app = self.at(r.querier)
        if querier_app is not provider_app and querier_app.find(ProvisionRequest, UUID(r.rid)) is not None:
            there = querier_app.querier_answer(UUID(r.rid))
            assert there.status in (r.status, "in_progress"), f"{r.rid} on the querier's node reads {there}"
            assert dataclasses.astuple(there) == (r.rid, there.status, QUERIER_MESSAGES[there.status])
            if there.status == "in_progress":
                assert there.message == QuerierAnswer.IN_PROGRESS
        return found


def fresh_network(nodes: list[Node]) -> Network:
    return Network([0] * len(nodes), [[] for _ in nodes], [[] for _ in nodes])
