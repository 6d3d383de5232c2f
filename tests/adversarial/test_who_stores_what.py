"""Who stores what (issue 19, docs/linkage.md#who-stores-what): each party's whole data directory and every secret
it holds, opened as far as those secrets open it, against the table.

Threat: an insider at each party in turn — an agency node in hub mode (the provider A, the holder B, the querier
C), the hub, the portal — holding that party's data directory (every database, every key file) and every secret
in its key store; and the broker operator, holding every topic's records and no key. One history runs through
three hub-mode agency nodes, a hub and a portal on the in-memory broker: B protects X with four eyes, A files X
and Z, the person signs in at the portal with X's and Z's cards, C asks A about X (held for staff) and Z
(answered automatically), A's records reach the hub and the portal's pages; B links X's number to a new one,
then reports X's move to A, which takes over (the handover through the hub); a support centre (a fourth node)
asks A to keep Z from automatic answers, and A does with the request named.

Each insider reflects every table of every database it holds, reads every row, decodes the node's event log,
tries every stored byte string as a message sealed to it (under every name) with its own sealing key; an agency's
insider also tries every secret it holds as another agency's code secret and as the hub's person-id secret. What
it finds must be what the table says it holds — and the search is shown able to find (each party's own codes,
the texts it does hold), so each "not found" could have failed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import MetaData, create_engine, select

from ledger.app import Actor
from ledger.errors import FlagLedgerError
from ledger.hub.log import HubStore, open_hub_store
from ledger.hub.portal_feed import PortalFeed
from ledger.hub.tables import (
    hub_body_requests,
    hub_link_makers,
    hub_moves,
    hub_parked,
    hub_records,
    hub_sealed_records,
    metadata,
)
from ledger.linkage.agency import AgencyEnd
from ledger.linkage.buckets import BUCKETS
from ledger.linkage.codes import agency_code, hub_person, portal_code
from ledger.linkage.directory import Directory
from ledger.linkage.keys import PartyKeys
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import read_header, sealing_key_from_hex, unseal
from ledger.linkage.transport import MemoryTransport, Topics
from ledger.log.datakeys import AesKek
from ledger.log.keyed_hash import KeyedHash
from ledger.portal.service import PortalService, sign_in
from ledger.portal.store import PortalStore, open_portal_store
from ledger.portal.wire_keys import WIRE_KEYS_FILE, PortalWireKeys
from ledger.runtime.bootstrap import Node
from ledger.runtime.linkage import SEALING, code_secret_name, party_keys, subject_of
from ledger.runtime.tables import linkage_body_outcomes, linkage_body_requests, linkage_handovers
from tests.conftest import NodeFactory
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes, hub_nodes, set_flag
from tests.support.hub_world import A, B, C
from tests.support.key_probe import hmac_candidates
from tests.support.people import individual_number

JUNK = b"FLS1 junk on the hub's topic"  # what the broker operator itself wrote, parked by the hub
SC = "SC-TOKYO"  # a support centre: a protection body that asks A to protect Z
AGENCIES = (A, B, C, SC)
NAMES = (HUB, PORTAL, *AGENCIES)  # every name a blob could be sealed to: the insider tries its key under each


def names(text: str, agency: str) -> bool:
    """Whether ``text`` names ``agency``: its code standing alone, not six digits inside a hex id or a time."""
    return re.search(rf"(?<![0-9a-fA-F.]){agency}(?![0-9a-fA-F])", text) is not None


@dataclass
class Found:
    """What an insider opened: every file's bytes, every row and decoded event as text, what its key opened."""

    files: bytes = b""
    texts: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)  # kinds of the stored blobs that opened with its key
    blobs: int = 0  # stored byte strings tried

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    def holds(self, needle: str) -> bool:
        return needle in self.text or needle.encode() in self.files

    def read_databases(self, directory: Path, key: X25519PrivateKey, keys: Directory, at: datetime) -> None:
        """Every SQLite database under ``directory``: every table, every row; byte strings tried as sealed."""
        self.files = b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())
        for path in sorted(directory.rglob("*")):
            if not path.is_file() or path.read_bytes()[:16] != b"SQLite format 3\x00":
                continue
            engine = create_engine(f"sqlite:///{path}")
            meta = MetaData()
            meta.reflect(engine)
            with engine.connect() as conn:
                for table in meta.sorted_tables:
                    for row in conn.execute(select(table)):
                        for value in row:
                            self.value(value, key, keys, at)
            engine.dispose()

    def value(self, value: object, key: X25519PrivateKey, keys: Directory, at: datetime) -> None:
        if not isinstance(value, bytes | memoryview):
            self.texts.append(str(value))
            return
        raw = bytes(value)
        self.blobs += 1
        self.texts.append(raw.decode("utf-8", "replace"))
        for me in NAMES:
            try:
                opened = unseal(key, me, raw, keys.sender_keys(at))
            except FlagLedgerError:
                continue
            self.opened.append(opened.kind)
            self.texts.append(opened.payload.decode("utf-8", "replace"))


@dataclass
class Party:
    secrets: list[bytes]  # every secret it holds that could key an HMAC (code secrets, the person-id secret)


@dataclass
class Scene:
    w: HubNodes
    hub_dir: Path
    portal_dir: Path
    portal: PortalService
    portal_store: PortalStore
    portal_keys: PartyKeys
    x: str
    z: str
    data: str  # the answer A's node gave C about Z

    def code(self, agency: str, number: str) -> str:
        return agency_code(secret_of(self.w.nodes[agency]), agency, number)


def secret_of(node: Node) -> KeyedHash:
    """The agency's code secret as its HMAC, computed where it lives (inside the token with ``pkcs11``)."""
    agency = next(iter(node.app.hosted))
    return node.keys.store.keyed_hash(code_secret_name(agency))


def node_secrets(node: Node) -> list[bytes | KeyedHash]:
    """Every secret in the node's key store that could be an HMAC key (signing keys left out)."""
    return hmac_candidates(node.keys.store)


def forms(code: str) -> tuple[str, ...]:
    """A code as any table could spell it: itself, as a node's subject, its bare digits."""
    return (code, subject_of(code), code[1:]) if code.startswith("a") else (code, code[1:])


@pytest.fixture
def scene(make_node: NodeFactory, tmp_path: Path) -> Iterator[Scene]:
    hub_dir, portal_dir = tmp_path / "hub-data", tmp_path / "portal-data"
    hub_dir.mkdir()
    portal_dir.mkdir()
    store: HubStore = open_hub_store(f"sqlite:///{hub_dir / 'hub.sqlite'}", "hub-1")
    w = hub_nodes(make_node, store, AGENCIES, kinds={SC: "support_centre"})
    keys = w.portal_keys  # the portal the nodes seal their records' contents to (in the hub's directory)
    assert keys is not None
    now = w.nodes[A].app.clock
    pstore = open_portal_store(f"sqlite:///{portal_dir / 'portal.sqlite'}")
    wires = PortalWireKeys(portal_dir / WIRE_KEYS_FILE, AesKek(os.urandom(32)))  # the providers' wire keys
    portal = PortalService(pstore, MemoryTransport(w.broker, PORTAL), keys, w.hub.directory, now, wires=wires)
    feed = PortalFeed(store, w.hub_keys, w.hub.directory)

    def settle() -> None:
        for _ in range(10):
            moved = portal.step(timeout_ms=20)
            w.settle()
            fed = feed.step()
            w.settle()
            kept = portal.step(timeout_ms=20)
            if not (moved.sent or fed or kept.kept or kept.sent):
                return

    x, z = individual_number(), individual_number()
    set_flag(w.nodes[B], B, x, "NON_DISCLOSURE")
    w.bridges[A].file_person(x)
    w.bridges[A].file_person(z)
    sign_in(pstore, keys, w.hub.directory, x)
    sign_in(pstore, keys, w.hub.directory, z)
    settle()
    asked_x = w.bridges[C].ask(Actor(C, "counter"), A, x, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    asked_z = w.bridges[C].ask(Actor(C, "counter"), A, z, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
    settle()
    # X's number changes at B (B links it, four eyes); then X moves on from B to A, which takes over
    b = w.nodes[B].app
    b.approve_link(Actor(B, "apr"), b.request_link(Actor(B, "req"), x, individual_number(), "個人番号の変更"))
    settle()
    assert b.record_move(Actor(B, "req"), x, to_agency=A, moved_on=date(2026, 9, 1)) is not None
    settle()
    set_flag(w.nodes[A], A, x, "NON_DISCLOSURE")
    settle()
    # the support centre asks A to keep Z from automatic answers; A does, with the request named
    body = w.nodes[SC].app.send_body_request(Actor(SC, "req"), A, z, ["NO_AUTO_RESPONSE"], "stalking")
    settle()
    (routed,) = w.nodes[A].app.body_inbox(Actor(A, "req"))
    rid = w.nodes[A].app.request_flags(
        Actor(A, "req"), z, ["NO_AUTO_RESPONSE"], body_request_id=UUID(routed["body_request_id"])
    )
    w.nodes[A].app.approve_request(Actor(A, "apr"), rid)
    w.nodes[A].app.execute_request(Actor(A, "op"), rid)
    settle()
    assert w.nodes[SC].app.body_request_outcome(Actor(SC, "req"), body)["status"] == "executed"
    # the hub parks two messages: junk it keeps as it came, and B's registration of X under a replaced code
    # secret (it opens, holds X's number, and conflicts): kept without its bytes
    w.broker.append(Topics().inbox(HUB), JUNK)
    again = AgencyEnd(
        replace(party_keys(w.nodes[B]), secret=os.urandom(32)), MemoryTransport(w.broker, B), w.hub.directory, now
    )
    again.file_person(x)
    settle()
    with store.engine.connect() as conn:
        assert sorted(r.code for r in conn.execute(select(hub_parked))) == ["conflict", "malformed"]
    assert w.bridges[C].query(asked_x)["status"] == "in_progress"
    answered = w.bridges[C].query(asked_z)
    assert answered["status"] == "answered"
    try:
        yield Scene(w, hub_dir, portal_dir, portal, pstore, keys, x, z, str(answered["data"]))
    finally:
        w.close()
        pstore.close()
        wires.close()
        store.close()


def agency_view(s: Scene, agency: str) -> Found:
    node = s.w.nodes[agency]
    found = Found()
    key = sealing_key_from_hex(node.keys.store.get(SEALING))
    found.read_databases(node.config.data_dir, key, s.w.hub.directory, node.app.clock())
    if node.engine.url.get_backend_name() != "sqlite":  # pragma: no cover - the fixture is on SQLite
        raise AssertionError("the insider's databases are read from the data directory")
    found.texts += [str(plain(node.app.signed_mapper.decode(env).__dict__)) for _, _, env in node.app.envelopes()]
    return found


def plain(value: object) -> object:
    """``value`` with every time in ISO form: a ``datetime(...)`` repr spells its microseconds as a bare number,
    which ``names`` would take for an agency code once in a million times (a CI run failed on 131032 µs)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def test_each_party_finds_what_the_table_says_and_nothing_more(scene: Scene) -> None:
    """Insider at each party (agency A, B, C in hub mode; the hub; the portal) with its whole data directory and
    every secret it holds; the broker operator with every topic: docs/linkage.md's "Who stores what", row by
    row."""
    s, x, z = scene, scene.x, scene.z
    codes = {(a, n): s.code(a, n) for a in AGENCIES for n in (x, z)}
    persons = {n: hub_person(s.w.hub_keys.secret, n) for n in (x, z)}
    portal_codes = {n: portal_code(s.portal_keys.secret, n) for n in (x, z)}
    record_texts = (PROCEDURE, INFO)

    # -- agency nodes: their own codes only; no number, no person id, no portal code -------------------------
    for agency in AGENCIES:
        found = agency_view(s, agency)
        assert found.blobs, f"{agency}: no stored byte string tried"
        assert found.opened == [], f"{agency} opened {found.opened}"  # registrations are sealed to the hub
        for number in (x, z):
            assert not found.holds(number), f"{agency} holds a number"
            assert not any(found.holds(f) for f in forms(persons[number])), f"{agency} holds a person id"
            assert not any(found.holds(f) for f in forms(portal_codes[number])), f"{agency} holds a portal code"
            for other in AGENCIES:
                if other != agency:
                    assert not any(found.holds(f) for f in forms(codes[other, number])), f"{agency}: {other}'s code"
        for secret in node_secrets(s.w.nodes[agency]):  # no secret it holds computes another party's code or id
            for number in (x, z):
                assert hub_person(secret, number) != persons[number]
                assert {agency_code(secret, o, number) for o in AGENCIES if o != agency}.isdisjoint(codes.values())
        # the search can find: its own code for each person it met
        met = {A: (x, z), B: (x,), C: (x, z), SC: (z,)}[agency]
        assert all(found.holds(subject_of(codes[agency, n])) for n in met)
        if agency != B:  # a non-holder finds nothing naming the holder
            assert not names(found.text, B), f"{agency} names the holder"
        assert "datetime(" not in found.text  # a repr's bare microseconds would read as an agency code
        if agency == B:  # the holder is consulted, never told who asked
            assert not names(found.text, C), "the holder learns the querier"
            assert names(found.text, A)  # ... but the provider, by design (the consultation names it)
        # handovers: A was asked under its own code, naming no one; B was told A (it named A itself) took over
        with s.w.nodes[agency].engine.connect() as conn:
            kept = [(r.direction, r.subject, r.to_agency, r.flags) for r in conn.execute(select(linkage_handovers))]
        expected = {
            A: [("in", subject_of(codes[A, x]), A, "NON_DISCLOSURE")],
            B: [("out", subject_of(codes[B, x]), A, "NON_DISCLOSURE")],
            C: [],
            SC: [],
        }
        assert kept == expected[agency], f"{agency}'s handovers"
        # body requests: A keeps the one routed to it under its own code; the centre, the steps of A's answer
        with s.w.nodes[agency].engine.connect() as conn:
            asked = [(r.body, r.subject, r.flags) for r in conn.execute(select(linkage_body_requests))]
            steps = [(r.municipality, r.status) for r in conn.execute(select(linkage_body_outcomes))]
        assert asked == ([(SC, subject_of(codes[A, z]), "NO_AUTO_RESPONSE")] if agency == A else []), agency
        answered = [(A, "requested"), (A, "approved"), (A, "executed")]
        assert steps == (answered if agency == SC else []), agency

    # -- the hub: codes, person ids, routes; no number; record text only where the gap is ----------------------
    hub = Found()
    hub.read_databases(s.hub_dir, s.w.hub_keys.sealing, s.w.hub.directory, s.w.nodes[A].app.clock())
    assert (
        hub.blobs and hub.opened == []
    )  # nothing the hub keeps opens with its key (parked messages that opened keep no bytes)
    for number in (x, z):
        assert not hub.holds(number), "the hub holds a number"
        assert hub.holds(persons[number])
    assert all(hub.holds(codes[key]) for key in ((A, x), (A, z), (B, x), (C, x), (C, z)))
    assert all(hub.holds(portal_codes[n]) for n in (x, z))
    if s.data:
        assert not hub.holds(s.data), "the hub keeps an answer's data"
    with s.w.hub.store.engine.connect() as conn:  # the move by person id and the reporter's code; the link's maker
        moves = [(r.sender, r.sender_code, r.person, r.to_agency, r.flags) for r in conn.execute(select(hub_moves))]
        makers = [(r.old, r.linker) for r in conn.execute(select(hub_link_makers))]
    assert moves == [(B, codes[B, x], persons[x], A, "NON_DISCLOSURE")]
    assert makers == [(persons[x], B)]
    with s.w.hub.store.engine.connect() as conn:  # the route of the centre's request: ids and parties, no words
        routes = [
            (r.body, r.municipality, r.person, r.flags, r.delivered) for r in conn.execute(select(hub_body_requests))
        ]
    assert routes == [(SC, A, persons[z], "NO_AUTO_RESPONSE", True)]
    # an agency node in hub mode seals its records' contents to the portal (hub_sealed_records): no record text
    # in any table of the hub, hub_records (clear records, refused since) stays empty
    with s.w.hub.store.engine.connect() as conn:
        assert conn.execute(select(hub_records)).all() == []
        assert conn.execute(select(hub_sealed_records)).all() != []
        everywhere = [str(v) for t in metadata.sorted_tables for r in conn.execute(select(t)) for v in r]
    assert not any(text in "\n".join(everywhere) for text in record_texts)

    # -- the portal: its own codes and the person's pages; no number, no agency code, no person id, no holder -----
    portal = Found()
    portal.read_databases(s.portal_dir, s.portal_keys.sealing, s.w.hub.directory, s.w.nodes[A].app.clock())
    assert portal.blobs and portal.opened == []  # pages are kept opened; the outbox (sealed to the hub) is empty
    for number in (x, z):
        assert not portal.holds(number), "the portal holds a number"
        assert portal.holds(portal_codes[number])
        assert not any(portal.holds(f) for f in forms(persons[number])), "the portal holds a person id"
        assert not any(portal.holds(f) for a in AGENCIES for f in forms(codes[a, number])), "an agency code"
    assert portal.holds(PROCEDURE)  # Z's record, shown: the search can find record text
    assert not names(portal.text, B), "the portal names the holder"
    page_x = s.portal_store.page(portal_codes[x])
    assert page_x is not None and page_x.records == () and page_x.hidden and page_x.protected

    # -- the broker operator: headers and ciphertext of bucket sizes, nothing else -----------------------------
    everything = [codes[k] for k in codes] + list(persons.values()) + list(portal_codes.values())
    clear = [x, z, *record_texts, "NON_DISCLOSURE", "registration", "routed_query", "answer", "portal_page"]
    clear += ["handover", "handed_over", "number_link", "moved_on", "body_request", "body_outcome", "stalking"]
    seen = 0
    for topic, messages in s.w.broker.topics.items():
        for m in messages:
            if m == JUNK:
                continue
            seen += 1
            header = read_header(m)
            assert header.sender in NAMES and header.recipient in NAMES and topic.endswith(header.recipient)
            assert re.fullmatch(r"[0-9a-f]{32}", header.event_id)
            framing = 4 + 2 + sum(2 + len(f.encode()) for f in (header.sender, header.recipient, header.event_id))
            assert len(m) - framing - 32 - 16 in BUCKETS, f"{len(m)} bytes on {topic}: not a bucket"
            for needle in (*everything, *(c[1:] for c in everything), *clear):
                assert needle.encode() not in m, f"{needle!r} readable on {topic}"
    assert seen > 10
