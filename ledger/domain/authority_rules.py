"""The writer-authority table itself: one :class:`Rule` per shared event type (who may write it, which payload
fields must name the signer, which key fields must be the signer's keys, which node kinds may originate it).
The rows are kept by subject in the ``authority_rules_*`` modules and the row's shape in
:mod:`ledger.domain.authority_row`; the checks that apply it and the page that renders it are in
:mod:`ledger.domain.authority`."""

from __future__ import annotations

from ledger.domain.authority_row import AGENCY_NODES, DOMAIN_PREFIX, NodeKind, Rule, Writer
from ledger.domain.authority_rules_cases import case_rules
from ledger.domain.authority_rules_identity import identity_rules
from ledger.domain.authority_rules_integrity import integrity_rules
from ledger.domain.authority_rules_provision import provision_rules
from ledger.domain.authority_rules_staff import staff_rules

__all__ = ["AGENCY_NODES", "DOMAIN_PREFIX", "TABLE", "NodeKind", "Rule", "Writer"]


def _rules() -> list[Rule]:
    # the order is the page's (docs/authority.md lists the rows as the table holds them)
    return [*staff_rules(), *case_rules(), *provision_rules(), *identity_rules(), *integrity_rules()]


TABLE: dict[str, Rule] = {r.topic: r for r in _rules()}
