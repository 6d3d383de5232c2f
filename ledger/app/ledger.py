"""FlagLedger: the application every entry point drives, composed of its parts by area."""

from __future__ import annotations

from ledger.app.accounts import SystemAccountCommands
from ledger.app.agencies import AgencyCommands
from ledger.app.answers import AnswerCommands
from ledger.app.bodies import BodyCommands
from ledger.app.companions import CompanionCommands
from ledger.app.erasure import ErasureCommands
from ledger.app.one_time_codes import OneTimeCodeCommands
from ledger.app.provision import ProvisionCommands
from ledger.app.proxy_approvals import ProxyApprovalCommands
from ledger.app.security_keys import SecurityKeyCommands

__all__ = ["FlagLedger"]


class FlagLedger(
    AgencyCommands,
    CompanionCommands,
    BodyCommands,
    ProvisionCommands,
    AnswerCommands,
    ProxyApprovalCommands,
    SecurityKeyCommands,
    OneTimeCodeCommands,
    SystemAccountCommands,
    ErasureCommands,
):
    """The ledger of one node: commands take and return ids and plain values.

    Wiring and the key ring: :mod:`ledger.app.wiring`; saving and loading: :mod:`ledger.app.store`; access:
    :mod:`ledger.app.access`; commands by area: :mod:`ledger.app.agencies`, :mod:`ledger.app.flags`,
    :mod:`ledger.app.provision`, :mod:`ledger.app.identity`, :mod:`ledger.app.year`,
    :mod:`ledger.app.companions`, :mod:`ledger.app.guardians`, :mod:`ledger.app.proxy_approvals`,
    :mod:`ledger.app.bodies`, :mod:`ledger.app.security_keys`.
    """

    name = "flagledger"
