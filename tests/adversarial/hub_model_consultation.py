"""The hub model's consultation acts (``hub_model.py``): a querier's counter asks a provider, holders' reviewers
advise, the provider's two staff decide, the hub's clock passes the consultation's window; and what the provider
routed."""

from __future__ import annotations

import random
from datetime import timedelta
from uuid import UUID

from sqlalchemy import select

from consumers import linkage_decisions as decisions
from consumers.linkage_receipt import NOBODY, NOBODY_SENT
from ledger.app import Actor
from ledger.app.answers import run_batches
from ledger.hub.consultations import WINDOW
from ledger.runtime.tables import linkage_routed
from tests.support.hub_nodes import INFO, ITEM, PROCEDURE, HubNodes
from tests.support.hub_world import A, C


class ConsultationActs:
    # the model's state, kept by :class:`tests.adversarial.hub_model.Model` (a dataclass mixing this in)
    w: HubNodes
    rng: random.Random
    asked: dict[str, tuple[str, str]]
    decided: set[str]
    advised: dict[tuple[str, str], str]

    def ask(self, number: str, querier: str = C, provider: str = A) -> str:
        """``querier``'s counter asks ``provider`` about the person (whose node has filed them: a resident)."""
        self.w.bridges[provider].file_person(number)
        rid = self.w.bridges[querier].ask(
            Actor(querier, "counter"), provider, number, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO
        )
        self.asked[rid] = (querier, number)
        return rid

    # -- the consultation --------------------------------------------------------------------------------------
    def advise(self, holder: str, every: bool = False) -> None:
        """``holder``'s reviewer advises on some of its consultations (``every``: all)."""
        node = self.w.nodes[holder]
        for c in self.w.bridges[holder].consultations():
            key = (holder, str(c["request_id"]))
            if key not in self.advised and (every or self.rng.random() < 0.7):
                self.advised[key] = self.rng.choice(("do_not_disclose", "may_disclose"))
                decisions.advise(node.app, node.engine, Actor(holder, "rev"), key[1], self.advised[key])

    def decide(self, provider: str = A, local: str | None = None) -> None:
        """The provider's reviewer and approver decide one held routed request the holders advised on (or that
        escalated, or that the hub reopened; ``local``: that one), each signing with their own staff key; its
        batch releases it."""
        a = self.w.nodes[provider]
        ready = [c for c in decisions.cases(a.engine) if c["basis"] and c["answered"] not in (NOBODY, NOBODY_SENT)]
        ready = [c for c in ready if c["request_id"] and local in (None, c["request_id"])]
        # held: not decided yet, or reopened (the hub refused a decision taken before late advice: decide again)
        ready = [c for c in ready if a.app.provision_request(UUID(c["request_id"])).status == "held"]
        if not ready:
            return
        case = self.rng.choice(ready)
        local = UUID(case["request_id"])
        decision = self.rng.choice(("provide", "refuse"))
        decisions.propose(a.app, a.engine, Actor(provider, "rev"), local, decision, "unknown")
        version = a.app.provision_request(local).proposal_version
        assert version is not None
        decisions.approve(a.app, a.engine, Actor(provider, "apr"), local, version)
        self.decided.add(case["request_id"])
        run_batches(a.app, a.app.clock() + timedelta(days=2))

    def deadline(self) -> None:
        """The hub's clock passes the consultation's window: silent holders are escalated, never answered."""
        later = self.w.hub.now() + WINDOW + timedelta(minutes=1)
        self.w.hub.now = lambda: later

    def routed_at(self, provider: str) -> dict[str, tuple[str, str]]:
        """The provider's routed requests: the hub's id → (its local request id, how it was answered)."""
        with self.w.nodes[provider].engine.connect() as conn:
            lr = linkage_routed.c
            rows = conn.execute(select(lr.hub_request_id, lr.local_request_id, lr.answered))
            return {str(r.hub_request_id): (str(r.local_request_id), str(r.answered)) for r in rows}
