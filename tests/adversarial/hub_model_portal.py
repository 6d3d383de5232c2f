"""The hub model's Mynaportal acts (``hub_model.py``): cards signing in at the portal, and proxies registered,
approved by a holder's two people, withdrawn and cancelled (by the registering agency, a peer, or another holder
of the person)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from uuid import UUID

from ledger.app import Actor
from ledger.errors import Code, FlagLedgerError
from ledger.linkage.codes import Registration, portal_code
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import seal
from ledger.linkage.transport import MemoryTransport
from tests.adversarial.hub_model_parties import AGENCIES
from tests.support.hub_nodes import HubNodes
from tests.support.people import individual_number


class PortalActs:
    # the model's state, kept by :class:`tests.adversarial.hub_model.Model` (a dataclass mixing this in)
    w: HubNodes
    rng: random.Random
    person: dict[str, int]
    chain: dict[int, list[str]]
    held: dict[tuple[str, str], set[str]]
    proxies: dict[tuple[str, str], str]
    approvals: dict[tuple[str, str, str], UUID]
    cards: dict[str, str]
    proxy_cards: dict[str, str]
    refused: Counter[str]

    # -- Mynaportal proxies ----------------------------------------------------------------------------------------
    def register_proxy(self, agency: str, number: str) -> str | None:
        """``agency``'s counter registers a proxy (a new person, who signs in at the portal with their own card)
        for the person — the hub takes it only from a holder while a flag applies (parked otherwise)."""
        proxy = individual_number(self.rng)
        self.w.nodes[agency].app.register_proxy(Actor(agency, "req"), number, proxy)
        self.chain[len(self.chain)] = [proxy]  # a person too (who may be asked about, protected, …)
        self.person[proxy] = len(self.chain) - 1
        self.proxies[number, proxy] = agency
        self.sign_in(proxy, proxy=True)
        return proxy

    def cancel_proxy(self, pair: tuple[str, str] | None = None, by: str | None = None) -> bool:
        """A registered proxy (``pair``: this one) cancelled by the agency that registered it, or by another
        (``by``; at random sometimes): a holder of the person, or a peer, whose node refuses it (``wrong_agency``)
        unless it holds a flag on the person's number now — taken, its bridge sends it and the hub cancels the
        registration wherever it was made. Whether it was taken."""
        if not self.proxies:
            return False
        (number, proxy), agency = (pair, self.proxies[pair]) if pair else self.rng.choice(sorted(self.proxies.items()))
        if by is None and self.rng.random() < 0.3:
            by = self.rng.choice(AGENCIES)  # a peer, or the registering agency itself
        who = by or agency
        try:
            self.w.nodes[who].app.cancel_proxy(Actor(who, "req"), number, proxy, "model: cancelled")
        except FlagLedgerError as exc:
            if exc.code != Code.WRONG_AGENCY or who == agency:
                raise
            assert not self.held.get((who, number)), "a holder's node refused its cancellation"
            self.refused["proxy_cancel_wrong_agency"] += 1
            return False
        assert who == agency or self.held.get((who, number)), "a peer's node took another agency's cancellation"
        del self.proxies[number, proxy]
        return True

    def approve_proxy(self, holder: str, number: str, proxy: str) -> bool:
        """``holder``'s requester proposes and its approver approves the proxy (each signing with their own
        staff key); refused by the holder's node unless it holds a flag on the person now."""
        app = self.w.nodes[holder].app
        try:
            aid = app.propose_proxy_approval(Actor(holder, "req"), number, proxy, "model: the person asked")
            app.approve_proxy_approval(Actor(holder, "apr"), aid)
        except FlagLedgerError as exc:
            if exc.code not in (Code.WRONG_AGENCY, Code.CONFLICT):
                raise
            self.refused[f"proxy_{exc.code}"] += 1
            return False
        self.approvals[holder, number, proxy] = aid
        return True

    def withdraw_proxy(self, key: tuple[str, str, str] | None = None) -> None:
        """A holder's two people withdraw an approval in force (``key``: this one)."""
        if self.approvals:
            (holder, number, proxy), aid = (
                (key, self.approvals[key]) if key else self.rng.choice(sorted(self.approvals.items()))
            )
            app = self.w.nodes[holder].app
            app.propose_proxy_withdrawal(Actor(holder, "req"), aid, "model: consent withdrawn")
            app.withdraw_proxy_approval(Actor(holder, "apr"), aid)
            del self.approvals[holder, number, proxy]

    def proxy_act(self) -> None:
        """One of: register a proxy, approve one as a holder, withdraw an approval, cancel a registration (by the
        registering agency, a peer, or another holder of the person)."""
        others = [
            (k, h) for k, a in sorted(self.proxies.items()) for h in AGENCIES if h != a and self.held.get((h, k[0]))
        ]
        if others and self.rng.random() < 0.4:  # another holder of the person: rare in a history, so sought out
            self.cancel_proxy(*self.rng.choice(others))
            return
        roll = self.rng.random()
        if roll < 0.35 or not self.proxies:
            holdings = sorted(k for k, v in self.held.items() if v)
            if holdings and self.rng.random() < 0.6:  # a holder registers (the usual case while protected)
                self.register_proxy(*self.rng.choice(holdings))
            else:
                self.register_proxy(self.rng.choice(AGENCIES), self.any_number())
        elif roll < 0.7:
            number, proxy = self.rng.choice(sorted(self.proxies))
            holders = sorted(a for a in AGENCIES if self.held.get((a, number)))
            self.approve_proxy(self.rng.choice(holders or list(AGENCIES)), number, proxy)
        elif roll < 0.85:
            self.withdraw_proxy()
        else:
            self.cancel_proxy()

    def sign_in(self, number: str, proxy: bool = False) -> None:
        """Someone signs in at the portal with the card of ``number``: the portal registers its code for it at
        the hub, as ``ledger.portal.service.sign_in`` owes it (the portal's loop sends it). ``proxy``: a proxy
        with their own card, to read another's page (their own page is not checked: it costs every hub turn)."""
        keys = self.w.portal_keys
        assert keys is not None
        code = portal_code(keys.secret, number)
        if code not in self.cards and code not in self.proxy_cards:
            payload = Registration(PORTAL, code, number).encode()
            hub_key = self.w.hub.directory.sealing_key(HUB)
            sealed = seal(keys.signer, hub_key, HUB, uuid.uuid4().hex, "registration", payload)
            MemoryTransport(self.w.broker, PORTAL).send(HUB, sealed)
            (self.proxy_cards if proxy else self.cards)[code] = number
