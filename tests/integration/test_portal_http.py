"""The portal's page over HTTP (issue 19, ``ledger.api.portal``): card sign-in by challenge and certificate, then
the page — against the real app, the portal's own store (SQLite, and PostgreSQL), fed by a real hub on the
in-memory transport.

Threat: the perpetrator — anyone who can reach the portal over HTTP, with someone else's card number but not
their card. A hidden record stays hidden through HTTP; a number without its card signs no one in and reads
nothing; a proxy who is not the person's learns nothing of whether the person exists or is protected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.portal import create_portal_app
from ledger.errors import Code
from ledger.hub.log import HubStore
from ledger.linkage.codes import portal_code
from ledger.linkage.hiding import HIDDEN_NOTE
from ledger.linkage.transport import MemoryBroker, MemoryTransport
from ledger.portal.cards import Card, CardIssuer
from ledger.portal.sign_ins import CardSignIns, SignInSettings
from tests.support.hub_world import A, B, C, Cast, D
from tests.support.people import individual_number
from tests.support.portal_world import PortalWorld
from tests.support.postgres import temp_database

PROCEDURE, ITEM, INFO = "児童手当", 74, "地方税関係情報"
MADE = "2026-12-07T12:00:00+09:00"


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


class Portal:
    """The portal's HTTP app over a PortalWorld, a trusted issuer (J-LIS's stand-in) and a clock."""

    def __init__(self, pw: PortalWorld) -> None:
        self.pw, self.clock, self.jlis = pw, Clock(), CardIssuer("J-LIS")
        self.sign_ins = CardSignIns(
            pw.store,
            pw.keys,
            lambda: pw.world.hub.directory,
            lambda: {self.jlis.name: self.jlis.key.public_key()},  # the portal's config; generated here
            SignInSettings(challenge_seconds=120, session_seconds=600),
            self.clock,
        )
        self.http = TestClient(create_portal_app(self.sign_ins))

    def card(self, number: str, issuer: CardIssuer | None = None) -> Card:
        at = self.clock()
        return (issuer or self.jlis).issue(
            number, self.pw.keys.sealing.public_key(), at - timedelta(days=1), at + timedelta(days=3650)
        )

    def challenge(self) -> bytes:
        answer = self.http.post("/portal/v1/challenges")
        assert answer.status_code == 201, answer.text
        return bytes.fromhex(answer.json()["challenge"])

    def attempt(self, card: Card, challenge: bytes | None = None, signature: str | None = None) -> Any:
        challenge = challenge if challenge is not None else self.challenge()
        body = {
            "challenge": challenge.hex(),
            "certificate": card.certificate.encode(),
            "signature": signature or card.sign(challenge),
        }
        return self.http.post("/portal/v1/sign-in", json=body)

    def sign_in(self, card: Card) -> dict[str, str]:
        answer = self.attempt(card)
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def page(self, auth: dict[str, str], viewer: str = "self") -> Any:
        return self.http.get("/portal/v1/page", params={"viewer": viewer}, headers=auth)

    def proxy_page(self, auth: dict[str, str], number: str) -> Any:
        return self.http.post("/portal/v1/proxy-page", json={"number": number}, headers=auth)


@pytest.fixture
def portal(hub: HubStore, backend: str | None, tmp_path: Path) -> Iterator[Portal]:
    broker = MemoryBroker()
    with temp_database() if backend else _none() as url:
        pw = PortalWorld.open(
            Cast.of(A, B, C, D), hub, tmp_path / "portal.sqlite", lambda p: MemoryTransport(broker, p), portal_url=url
        )
        try:
            yield Portal(pw)
        finally:
            pw.close()


class _none:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def code_of(answer: Any) -> str:
    return str(answer.json()["code"])


def protected_with_two_records(portal: Portal) -> str:
    """X: a record from B for C, then A's non-disclosure, then a record for D (where X moved) — hidden."""
    x = individual_number()
    agencies = portal.pw.world.agencies
    agencies[B].record(x, C, PROCEDURE, ITEM, INFO, "provided", MADE)
    agencies[A].flag(x, "NON_DISCLOSURE", "set")
    agencies[B].record(x, D, PROCEDURE, ITEM, INFO, "provided", MADE)
    return x


def test_a_hidden_record_stays_hidden_through_http(portal: Portal) -> None:
    """Threat: the perpetrator reading X's page (or X's own page shown on a shared screen) for where X moved:
    over HTTP the page is exactly what the portal's rules show — the record made before the flag hidden too,
    the fixed note, no holder, no D — and the first sign-in is what registers the card with the hub."""
    x = protected_with_two_records(portal)
    card = portal.card(x)
    auth = portal.sign_in(card)
    pending = portal.page(auth)
    assert pending.status_code == 404 and code_of(pending) == Code.NOT_FOUND  # registered now, not fed yet
    portal.pw.settle()
    shown = portal.page(auth)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"records": [], "note": HIDDEN_NOTE}
    assert A not in shown.text and D not in shown.text
    assert shown.headers["Cache-Control"] == "no-store"
    assert shown.json()["records"] == [r.__dict__ for r in portal.pw.page(x).records]  # what the CLI shows
    guardian = portal.page(auth, "guardian")
    assert guardian.status_code == 403 and code_of(guardian) == Code.PROXY_REFUSED

    portal.pw.world.agencies[A].flag(x, "NON_DISCLOSURE", "release")
    portal.pw.world.agencies[B].record(x, C, PROCEDURE, ITEM, INFO, "answered", MADE)
    portal.pw.settle()
    released = portal.page(portal.sign_in(card)).json()
    assert [r["outcome"] for r in released["records"]] == ["answered"] and released["note"] == HIDDEN_NOTE
    assert D not in str(released)  # released: what was hidden stays hidden


def test_a_guessed_number_without_the_card_gets_nothing(portal: Portal) -> None:
    """Threat: the perpetrator Q knows X's number and has their own real card, not X's. A certificate they make
    for X's number (their own issuer, or J-LIS's name with another key), X's certificate copied and signed with
    another key, no token or a made-up one: all 401, nothing registered for X. Q's own card, as X's "proxy":
    403 ``proxy_refused`` — the same answer, byte for byte, for X (protected), for Y (signed in, unprotected) and
    for a number no one ever used."""
    x = protected_with_two_records(portal)
    y, q, nobody = individual_number(), individual_number(), individual_number()
    portal.pw.world.agencies[B].record(y, C, PROCEDURE, ITEM, INFO, "provided", MADE)

    rogue = portal.card(x, CardIssuer("ROGUE"))
    assert code_of(portal.attempt(rogue)) == Code.CARD_ISSUER_UNKNOWN
    forged = portal.card(x, CardIssuer("J-LIS"))  # the trusted name, another key
    assert code_of(portal.attempt(forged)) == Code.CARD_CERTIFICATE
    real = portal.card(x)  # X's card: Q copied its certificate, has not its key
    stolen = Card(CardIssuer("Q").key, real.certificate)
    answer = portal.attempt(stolen)
    assert answer.status_code == 401 and code_of(answer) == Code.CARD_SIGNATURE
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    for headers in ({}, {"Authorization": "Bearer " + os.urandom(16).hex()}, {"Authorization": "Basic eDp4"}):
        answer = portal.http.get("/portal/v1/page", headers=headers)
        assert answer.status_code == 401 and code_of(answer) == Code.UNAUTHENTICATED
    assert not portal.pw.store.has_card(portal_code(portal.pw.keys.secret, x))  # X was never signed in
    assert portal.pw.store.owed() == []

    portal.sign_in(portal.card(y))  # Y signs in once: Y's page exists
    own = portal.sign_in(portal.card(q))
    portal.pw.settle()
    answers = [portal.proxy_page(own, number) for number in (x, y, nobody)]
    assert {a.status_code for a in answers} == {403}
    assert len({a.content for a in answers}) == 1 and code_of(answers[0]) == Code.PROXY_REFUSED
    for number in (x, nobody):  # a proxy's request registers no one
        assert not portal.pw.store.has_card(portal_code(portal.pw.keys.secret, number))


def test_the_registered_proxy_reads_with_their_own_card_once_approved(portal: Portal) -> None:
    """Threat: the perpetrator as X's registered proxy. Refused while A's flag applies; A's approval of P lets P
    (their own card) read X's page — the same page X sees, hidden records still hidden."""
    x, p = protected_with_two_records(portal), individual_number()
    portal.pw.world.agencies[A].register_proxy(x, p)
    own = portal.sign_in(portal.card(x))
    proxy = portal.sign_in(portal.card(p))
    portal.pw.settle()
    assert code_of(portal.proxy_page(proxy, x)) == Code.PROXY_REFUSED
    portal.pw.world.agencies[A].approve_proxy(x, p)
    portal.pw.settle()
    seen = portal.proxy_page(proxy, x)
    assert seen.status_code == 200, seen.text
    assert seen.json() == portal.page(own).json() == {"records": [], "note": HIDDEN_NOTE}


def test_a_challenge_is_used_once_and_expires(portal: Portal) -> None:
    """Threat: the perpetrator replaying a sign-in they saw (or a card's answer they got X to make): the same
    challenge twice — the second is refused even with a valid signature — or after its expiry."""
    card = portal.card(individual_number())
    challenge = portal.challenge()
    assert portal.attempt(card, challenge).status_code == 200
    replayed = portal.attempt(card, challenge)
    assert replayed.status_code == 401 and code_of(replayed) == Code.CHALLENGE_UNKNOWN

    burnt = portal.challenge()  # a wrong signature uses the challenge up: no second guess on it
    assert code_of(portal.attempt(card, burnt, signature="00" * 64)) == Code.CARD_SIGNATURE
    assert code_of(portal.attempt(card, burnt)) == Code.CHALLENGE_UNKNOWN
    assert code_of(portal.attempt(card, os.urandom(32))) == Code.CHALLENGE_UNKNOWN  # never handed out

    late = portal.challenge()
    portal.clock.at += timedelta(seconds=121)
    expired = portal.attempt(card, late)
    assert expired.status_code == 401 and code_of(expired) == Code.CHALLENGE_EXPIRED


def test_a_session_ends_and_a_number_change_revokes_the_old_card(portal: Portal) -> None:
    """Threat: the perpetrator keeping X's old card after X's number changed (or a token left on a shared
    computer). The old card's page is refused once the hub marks it replaced (``card_revoked``, as the CLI
    does); once the issuer lists the old card, it cannot sign in at all and its open session ends; a session
    ends by itself after ``session_seconds``."""
    old, new = individual_number(), individual_number()
    portal.pw.world.agencies[B].record(old, C, PROCEDURE, ITEM, INFO, "provided", MADE)
    old_card = portal.card(old)
    auth = portal.sign_in(old_card)
    portal.pw.settle()
    assert len(portal.page(auth).json()["records"]) == 1

    portal.pw.world.agencies[A].link(old, new)
    portal.pw.settle()
    answer = portal.page(auth)
    assert answer.status_code == 403 and code_of(answer) == Code.CARD_REVOKED  # the hub's "superseded"

    listed = portal.jlis.revoke([old_card.certificate.serial], portal.clock())
    assert portal.sign_ins.take_revocations(listed.encode()) == 1
    assert portal.sign_ins.take_revocations(listed.encode()) == 0  # listed once
    refused = portal.attempt(old_card)
    assert refused.status_code == 403 and code_of(refused) == Code.CARD_REVOKED
    assert code_of(portal.page(auth)) == Code.CARD_REVOKED

    new_auth = portal.sign_in(portal.card(new))
    portal.pw.settle()
    assert [r["provider"] for r in portal.page(new_auth).json()["records"]] == [B]
    portal.clock.at += timedelta(seconds=601)
    ended = portal.page(new_auth)
    assert ended.status_code == 401 and code_of(ended) == Code.SESSION_ENDED

    left = portal.sign_in(portal.card(new))  # signed out: the token reads nothing more
    assert portal.http.post("/portal/v1/sign-out", headers=left).status_code == 204
    gone = portal.page(left)
    assert gone.status_code == 401 and code_of(gone) == Code.UNAUTHENTICATED


def test_a_flood_of_challenges_is_bounded(portal: Portal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threat: anyone reaching the portal asking for challenges without end (no card needed to ask): past the
    bound of live ones a new one is refused 503 ``stopping`` (as a busy server), and expired ones are swept, so
    sign-ins go on once the flood's challenges expire."""
    monkeypatch.setattr("ledger.portal.sign_ins.MAX_OPEN_CHALLENGES", 2)  # the bound, made small to reach it
    portal.challenge()
    portal.challenge()
    full = portal.http.post("/portal/v1/challenges")
    assert full.status_code == 503 and code_of(full) == Code.STOPPING
    portal.clock.at += timedelta(seconds=121)
    assert portal.sign_in(portal.card(individual_number()))


def test_bad_input_is_a_clear_4xx_and_echoes_nothing(portal: Portal) -> None:
    """Threat: the perpetrator probing with malformed requests: each a 422 ``invalid_input`` naming the field,
    never echoing a number; an expired certificate is 401 ``card_expired``."""
    number = individual_number()
    bad = portal.http.post("/portal/v1/sign-in", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and code_of(bad) == Code.INVALID_INPUT
    extra = portal.http.post(
        "/portal/v1/sign-in",
        json={"challenge": "00" * 32, "certificate": "x", "signature": "00" * 64, "number": number},
    )
    assert extra.status_code == 422 and number not in extra.text
    auth = portal.sign_in(portal.card(individual_number()))
    typo = portal.proxy_page(auth, number[:-1] + str((int(number[-1]) + 1) % 10))  # check digit wrong
    assert typo.status_code == 422 and code_of(typo) == Code.INVALID_INPUT and number[:-1] not in typo.text
    viewer = portal.page(auth, "proxy")  # a proxy reads through /proxy-page only
    assert viewer.status_code == 422

    at = portal.clock()
    old = portal.jlis.issue(
        number, portal.pw.keys.sealing.public_key(), at - timedelta(days=20), at - timedelta(days=1)
    )
    expired = portal.attempt(old)
    assert expired.status_code == 401 and code_of(expired) == Code.CARD_EXPIRED
