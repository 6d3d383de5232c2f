"""FlagLedger: the application every entry point drives, composed of its parts by area."""

from __future__ import annotations

from ledger.app.accounts import SystemAccountCommands
from ledger.app.agencies import AgencyCommands
from ledger.app.answers import AnswerCommands
from ledger.app.erasure import ErasureCommands
from ledger.app.identity import IdentityCommands
from ledger.app.one_time_codes import OneTimeCodeCommands
from ledger.app.provision import ProvisionCommands
from ledger.app.security_keys import SecurityKeyCommands
from ledger.app.year import YearCommands

__all__ = ["FlagLedger"]


class FlagLedger(
    AgencyCommands,
    YearCommands,
    ProvisionCommands,
    AnswerCommands,
    IdentityCommands,
    SecurityKeyCommands,
    OneTimeCodeCommands,
    SystemAccountCommands,
    ErasureCommands,
):
    """The ledger of one node: commands take and return ids and plain values.

    Wiring and the key ring: :mod:`ledger.app.wiring`; saving and loading: :mod:`ledger.app.store`; access:
    :mod:`ledger.app.access`; commands by area: :mod:`ledger.app.agencies`, :mod:`ledger.app.flags`,
    :mod:`ledger.app.provision`, :mod:`ledger.app.identity`, :mod:`ledger.app.security_keys`.
    """

    name = "flagledger"
