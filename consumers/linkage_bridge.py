"""An agency node in hub mode talking to the hub (issue 19, docs/linkage.md): the node's shareable acts out,
the hub's messages in. Nothing goes to another agency directly, and nothing names a person but by this
agency's own code.

**Out** (:meth:`LinkageBridge.push`, after the node's database commit — it reads the committed log; which of its
events go as which messages: ``consumers.linkage_acts``; answers, queries, advice and roster from the node's own
tables: ``consumers.linkage_owed``):

* each person's **registration** (sealed to the hub when the number was typed, ``ledger.runtime.linkage``), sent
  before the first act about them;
* this agency's **flag changes** — ``Protection.FlagsSet`` / ``FlagsReleased``, i.e. after its own four-eyes
  chain executed them — one ``flag_change`` per flag, its id derived from the event so a resend is filed once;
* its **number changes** (``PseudonymLink.Linked``, after its own four eyes): its codes for the old and the new
  number, so the hub joins the person's numbers; an **unlink** (``Unlinked``: the hub parts them again, taking it
  only from the agency that made the link; a second change's is not sent — the hub keeps the link, and the
  second number's link to the third makes a chain, so every protection stays on all three) and a **relink**
  (``Relinked``: a new link);
* a protection body's **requests**, and a municipality's **outcomes** of requests the hub routed to it
  (``consumers.linkage_bodies``);
* the **residence changes** it recorded of people it protects (``consumers.linkage_moves``): the hub asks the new
  municipality to take over; and its **last-holder warnings**: the hub warns the person's other holders;
* its **provision records** (a request's first outcome, auto-provided or held), the id the request's, their
  contents under the person's wire key for the portal, the key sent once before (``subject_key``, relayed),
  each stamped with the hub's sequence number as seen when it was made (``consumers.linkage_seen``); a held
  request's decided outcome, once the querier may see it, as an update of the same record (``record_outcome``);
* its **approvals of a proxy** for a person it protects, and their withdrawals, once its four eyes made them
  (``consumers.linkage_proxies``): the hub lets the proxy read the person's portal page;
* its **proxy registrations** and cancellations (``consumers.linkage_proxy_registrations``): the portal lets a
  proxy in only while registered;
* its approved **erasures** (``ErasureNotice.Published``, issue 22): the hub shreds the records this agency sent
  it about the person and the portal's page drops them (``ledger.hub.erasure``); the portal is told, relayed,
  which of the person's wire keys to destroy (``wire_erasure``, ``ledger.linkage.wire_keys``);
* the **answers** to queries the hub routed here, once the querier may see them (held: ``in_progress`` at once,
  the staff-made answer when the provider's batch releases it);
* **queries** this agency's staff asked another agency (:meth:`LinkageBridge.ask`), queued until sent;
* a **wire key the portal asked for again** (``wire_key_request``: its key message was lost), sent again only
  while held — never an erased person's (``consumers.linkage_delivery``);
* the decision on a query the hub marked ``staff`` as a **staff answer** signed by the two staff members who
  made it, the **advice** its staff gave as holder, and its **staff roster** events when the roster changed (the
  hub checks staff answers against them): ``consumers.linkage_decisions``.

The position in the log and what was sent are recorded after the broker stored the messages; a crash between
sends again, and the same message is the same event (its id derived from what it says): the hub drops it. On a
digest schedule the messages leave in the tick's digest (``push(tick=...)``), and nothing is recorded sent until
that digest is stored — a node killed between its push and its tick would otherwise have lost them for good.

**In** (:meth:`LinkageBridge.pull`, ``consumers.linkage_inbound``): routed queries, consultations, answers; the
portal's signed delivery-key announcements, sealed to from then on (``consumers.linkage_delivery``).

When the hub is unreachable, ``push`` raises and keeps everything queued (``queries`` shows them); local
answers are still decided by the flags held here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Engine, select, update

from consumers import linkage_owed as owed
from consumers import linkage_staff as staff
from consumers.linkage_acts import acts, sends_unlink
from consumers.linkage_delivery import DeliveryLink
from consumers.linkage_inbound import Pulled, park, pull
from consumers.linkage_map import MapGate, map_checks
from consumers.linkage_staff import FILED, SENT
from consumers.linkage_witness import WitnessLink
from ledger.app import Actor, FlagLedger
from ledger.audit.erasures import recorded_erasures
from ledger.errors import Code, InputError
from ledger.faultpoint import faultpoint
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.buckets import ANSWER_SIZE
from ledger.linkage.checks import MapChecks
from ledger.linkage.directory import Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.messages import FlagChangeMessage
from ledger.linkage.names import HUB
from ledger.linkage.proxy_approvals import ProxyApproval
from ledger.linkage.proxy_registrations import ProxyRegistrationMessage
from ledger.linkage.transport import Transport
from ledger.runtime.linkage import Node, hosted_agency, hub_mode, linkage_directory, party_keys
from ledger.runtime.tables import linkage_registrations

__all__ = ["LinkageBridge", "Pushed", "sends_unlink"]  # sends_unlink: consumers.linkage_acts


@dataclass
class Pushed:
    registrations: int = 0
    acts: list[str] = field(default_factory=list)  # kinds sent, in order
    parked: int = 0


class LinkageBridge:
    """One agency node's end of the linkage, over its database and a :class:`Transport` to the hub."""

    def __init__(
        self, node: Node, transport: Transport, directory: Directory | None = None, checks: MapChecks | None = None
    ) -> None:
        """``checks``: the flag map's checks; by default those the hub's entry calls for
        (``consumers.linkage_map.map_checks``: none when it publishes no VRF key)."""
        if not hub_mode(node.config):
            raise InputError("the linkage bridge runs on a node in linkage hub mode only", code=Code.CONFIGURATION)
        self.app: FlagLedger = node.app
        self.engine: Engine = node.engine
        self.agency = hosted_agency(node.config)
        self.keys: PartyKeys = party_keys(node)
        self.directory = directory if directory is not None else linkage_directory(node.config)
        self.transport = transport
        self.checks = checks if checks is not None else map_checks(node, self.agency)
        # a message sent again after a crash (sent, not yet recorded sent) is the same event: the hub drops it
        wires = node.app.signed_mapper.data_keys  # records under wire keys kept beside the data keys, erased with them
        self.end = AgencyEnd(self.keys, transport, self.directory, node.app.clock, self.checks, True, wires)
        self.gate = MapGate(node, self.engine, self.checks)
        self.witness = WitnessLink(node, self.engine, self.end)  # its checkpoints to the witnesses (issue #20)
        # the portal's delivery keys as it announces them, and the wire keys it asks for again (issue 22)
        self.delivery = DeliveryLink(self.engine, self.directory, self.end, node.app.clock, self._erased)
        self._marks: list[Callable[[], None]] | None = None  # recorded sent after the tick's digest is stored
        self._registered: set[str] = set()  # subjects whose registration left in this push

    def _erased(self, ref: str) -> bool:
        """Whether an erasure destroyed the key ``ref`` names: an ``Erased`` event of the log names it, or the
        key file records it (a key the bridge destroyed after an erasure: ``consumers.linkage_wire.erased``)."""
        dk = self.app.signed_mapper.data_keys
        return (dk is not None and dk.erasure(bytes.fromhex(ref)) is not None) or ref in recorded_erasures(self.app)

    # -- staff (consumers.linkage_staff: the same without a transport, for the command line) -----------
    def file_person(self, number: str) -> str:
        return staff.file_person(self.app, self.engine, number)

    def ask(
        self, actor: Actor, provider: str, number_or_subject: str, *, legal_item: int, procedure: str, info_kind: str
    ) -> str:
        return staff.ask(
            self.app,
            self.engine,
            actor,
            provider,
            number_or_subject,
            legal_item=legal_item,
            procedure=procedure,
            info_kind=info_kind,
        )

    def query(self, request_id: str) -> dict[str, Any]:
        return staff.query(self.engine, self.agency, request_id)

    def queued(self) -> int:
        return staff.queued(self.engine)

    def consultations(self) -> list[dict[str, Any]]:
        return staff.consultations(self.engine, self.agency)

    # -- the loop ------------------------------------------------------------------------------------
    def step(self, timeout_ms: int = 50) -> tuple[Pushed, Pulled]:
        pushed = self.push()
        pulled = self.pull(timeout_ms)
        return pushed, pulled

    def pull(self, timeout_ms: int = 50, wake: Callable[[], bool] | None = None) -> Pulled:
        """Apply what the hub sent, waiting up to ``timeout_ms`` for it; ``wake``: ends the wait early when True
        (``consumers.linkage_inbound.pull``)."""
        self.gate.overdue()  # a hub that sends nothing at all is held to its deadlines too
        return pull(
            self.app,
            self.engine,
            self.transport,
            self.keys,
            self.directory,
            self.app.clock,
            timeout_ms=timeout_ms,
            gate=self.delivery.gate(self.witness.gate(self.gate)),
            wake=wake,
        )

    def push(self, tick: Callable[[], object] | None = None) -> Pushed:
        """Send what is owed. ``tick``: on a digest schedule, the scheduled transport's tick — called once all is
        handed over, and what was sent is recorded only after it returned (the digest stored by the broker)."""
        self._marks = [] if tick is not None else None
        self._registered = set()
        try:
            out = self._push()
            if tick is not None:
                faultpoint("bridge.before_tick")  # handed over, not yet sent: a kill here must lose nothing
                tick()
                for mark in self._marks or ():
                    mark()
        finally:
            self._marks = None
        return out

    def _mark(self, record: Callable[[], None]) -> None:
        """Record something sent: now, or after the tick (``push(tick=...)``)."""
        faultpoint("bridge.sent")  # sent, not yet recorded: a kill here sends it again, the hub drops it
        if self._marks is None:
            record()
        else:
            self._marks.append(record)

    def _push(self) -> Pushed:
        out = Pushed()
        owed.roster(self.app, self.engine, self.agency, self.end, self._mark, out.acts)
        registered: set[str] = set()
        # registrations and acts leave in one flush and are recorded sent after it: the hub gets a person's
        # registration and the flag change that needs it in one poll, not one broker round trip and one hub
        # step apart (docs/performance.md, propagation); a crash before the records resends them, dropped there
        held: list[Callable[[], None]] = []
        with self.engine.connect() as conn:
            filed = list(
                conn.execute(
                    select(linkage_registrations.c.subject).where(linkage_registrations.c.sent == FILED)
                ).scalars()
            )
        for subject in filed:
            self._register(subject, out, held)
            registered.add(subject)
        start = owed.position(self.engine)
        end = self.app.max_position()
        for subjects, message in acts(self.app, self.engine, self.agency, self.end, self._mark, start, end):
            missing = [s for s in subjects if s not in registered and not self._register(s, out, held)]
            if missing:
                with self.engine.begin() as conn:
                    reason = f"no registration for a {message.kind}: the person's number was never typed here"
                    park(conn, self.app.clock(), "out", Code.NOT_FOUND, reason, None)
                out.parked += 1
                continue
            registered.update(subjects)
            if self.checks is not None and isinstance(message, FlagChangeMessage):
                self.checks.flag_sent(message)  # from the next head on, the hub's map must show it
            sized = isinstance(message, ProxyApproval | ProxyRegistrationMessage)
            self.end.send(message, ANSWER_SIZE if sized else 0, flush=False)  # sized as answers
            out.acts.append(message.kind)
        if held or out.acts:
            self.transport.flush()
        for record in held:
            self._mark(record)
        self._mark(lambda: self._set_position(end))
        if self.witness.publish():
            out.acts.append("tree_head")
        owed.answers(self.app, self.engine, self.agency, self.end, self._mark, out.acts)
        owed.queries(self.engine, self.end, self._mark, partial(self._register, out=out), out.acts)
        owed.advice(self.engine, self.end, self._mark, out.acts)
        for _, relay in self.delivery.resends(self._mark):  # wire keys the portal asked for again, if held
            self.end.send(relay)
            out.acts.append("subject_key")
        return out

    # -- out, in detail (the log's acts: consumers.linkage_acts; the rest: consumers.linkage_owed) ---------
    def _set_position(self, position: int, name: str = owed.LOG) -> None:
        owed.set_position(self.engine, position, name)

    def _register(self, subject: str, out: Pushed, held: list[Callable[[], None]] | None = None) -> bool:
        """Send the person's registration unless sent; False if none was kept (their number never typed).
        ``held``: not flushed; its record of being sent is put there, to be made after the caller's flush."""
        with self.engine.connect() as conn:
            row = conn.execute(select(linkage_registrations).where(linkage_registrations.c.subject == subject)).first()
        if row is None:
            return False
        if row.sent != SENT and subject not in self._registered:
            self.transport.send(HUB, bytes(row.sealed))
            self._registered.add(subject)
            if held is not None:
                held.append(partial(self._registration_sent, subject))
            else:
                self.transport.flush()
                self._mark(partial(self._registration_sent, subject))
            out.registrations += 1
        return True

    def _registration_sent(self, subject: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(linkage_registrations).where(linkage_registrations.c.subject == subject).values(sent=SENT)
            )
