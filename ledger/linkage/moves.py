"""The handover of protection when a protected person moves (転出/転入, issue 21) as it travels through the hub
(issue 19): three kinds, each naming the person by its recipient's own code only.

=================  ==========================  ===========================================================
kind               from → to                   holds
=================  ==========================  ===========================================================
``move``           a municipality → hub        its own id for the move, its code, the municipalities moved
                                               from and to, the day
``handover``       hub → the new municipality  the hub's id, the new municipality's code, the day and the
                                               flags to take over — **not** who holds them, nor where from
``handed_over``    hub → the move's sender     the sender's move id and code, the new municipality (the
                                               sender named it) and the flags it now holds
``handed_on``      hub → an earlier move's     its move id and code, the flags now held where the person
                   sender                      moved on to — **not** which municipality that is
``handover_        hub → the municipality      its own code for the person: the request it was sent is
withdrawn``        asked before                withdrawn (the person moved on before, or while, it took over)
``last_holder``    a holder → hub              its own id for the warning, its code, the flags a release it
                                               was asked for would leave with no holder (as it sees them)
``last_holder_     hub → each other holder of  the hub's id, its own code, the flags no one else holds:
warning``          the person                  **not** who releases, nor who else holds
=================  ==========================  ===========================================================

Who may send a ``move`` is the hub's rule (``ledger.hub.moves``): one of the two municipalities, and only one
that protects the person now or is where the hub last saw them move to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from ledger.domain import bounds
from ledger.domain.types import agency_code
from ledger.errors import InputError
from ledger.linkage.codes import check_code
from ledger.linkage.messages import FLAGS, Message
from ledger.linkage.names import check_event_id

__all__ = [
    "HandedOn",
    "HandedOver",
    "HandoverMessage",
    "HandoverWithdrawn",
    "LastHolderMessage",
    "LastHolderWarned",
    "MoveMessage",
    "MoveRefused",
    "join_flags",
    "split_flags",
]


def split_flags(flags: str) -> tuple[str, ...]:
    """A comma-joined flag list, checked: each a flag the hub keeps, once, in order; at least one."""
    out = tuple(flags.split(","))
    if not flags or any(f not in FLAGS for f in out) or list(out) != sorted(set(out)):
        raise InputError("flags are NON_DISCLOSURE and/or NO_AUTO_RESPONSE, comma-joined, sorted", field="flags")
    return out


def join_flags(flags: object) -> str:
    return ",".join(sorted(set(flags)))  # type: ignore[call-overload]


def _day(value: str) -> None:
    bounds.check_text("moved_on", value, bounds.DATE)
    try:
        date.fromisoformat(value)
    except ValueError:
        raise InputError("moved_on is an ISO day", field="moved_on") from None


@dataclass(frozen=True)
class MoveMessage(Message):
    """A residence change recorded at the sender (``ResidenceChange.Recorded``), ``from_agency`` empty when
    not known there."""

    kind: ClassVar[str] = "move"
    move_id: str
    code: str  # the sender's code for the person
    from_agency: str
    to_agency: str
    moved_on: str

    def check(self) -> None:
        check_event_id(self.move_id)
        check_code(self.code)
        agency_code(self.to_agency, "to_agency")
        if self.from_agency:
            agency_code(self.from_agency, "from_agency")
        if self.from_agency == self.to_agency:
            raise InputError("a move needs two different municipalities", field="to_agency")
        _day(self.moved_on)


@dataclass(frozen=True)
class HandoverMessage(Message):
    """The hub asks the new municipality to take over: nothing in it names a holder or the old municipality."""

    kind: ClassVar[str] = "handover"
    handover_id: str  # the hub's, fresh
    code: str  # the new municipality's own code for the person
    moved_on: str
    flags: str  # comma-joined: the flags that apply and it does not hold

    def check(self) -> None:
        check_event_id(self.handover_id)
        check_code(self.code)
        _day(self.moved_on)
        split_flags(self.flags)


@dataclass(frozen=True)
class HandedOver(Message):
    """The hub tells the move's sender the new municipality now holds ``flags`` (all it holds of those asked)."""

    kind: ClassVar[str] = "handed_over"
    move_id: str  # the sender's own
    code: str  # the sender's code for the person
    to_agency: str
    flags: str

    def check(self) -> None:
        check_event_id(self.move_id)
        check_code(self.code)
        agency_code(self.to_agency, "to_agency")
        split_flags(self.flags)


@dataclass(frozen=True)
class HandoverWithdrawn(Message):
    """The hub withdraws its requests that this municipality take over protection of the person: a later move
    took them elsewhere. Only its own code: not where they went, nor who reported it, nor who holds."""

    kind: ClassVar[str] = "handover_withdrawn"
    code: str  # the municipality's own code for the person

    def check(self) -> None:
        check_code(self.code)


@dataclass(frozen=True)
class LastHolderMessage(Message):
    """A release requested at the sender would leave ``flags`` with no holder as far as its node can see
    (``LastHolderWarning.Raised``): the hub warns the person's other holders, if no one else holds them."""

    kind: ClassVar[str] = "last_holder"
    warning_id: str  # the sender's own, derived from its event
    code: str  # the sender's code for the person
    flags: str

    def check(self) -> None:
        check_event_id(self.warning_id)
        check_code(self.code)
        split_flags(self.flags)


@dataclass(frozen=True)
class LastHolderWarned(Message):
    """The hub warns a holder of the person that another holder asked to release ``flags``, which no one else
    holds: protection on them ends with that release unless someone takes them up. Nothing names the releasing
    holder nor any other."""

    kind: ClassVar[str] = "last_holder_warning"
    warning_id: str  # the hub's, one per warning and recipient (a resend is kept once)
    code: str  # the recipient's own code for the person
    flags: str

    def check(self) -> None:
        check_event_id(self.warning_id)
        check_code(self.code)
        split_flags(self.flags)


@dataclass(frozen=True)
class HandedOn(Message):
    """The hub tells the sender of a move the person moved on from before it was taken over that ``flags`` are
    now held where they live (the municipality is not named: the sender never named it)."""

    kind: ClassVar[str] = "handed_on"
    move_id: str  # the sender's own: its guard counts this only for that move
    code: str  # the sender's code for the person
    flags: str

    def check(self) -> None:
        check_event_id(self.move_id)
        check_code(self.code)
        split_flags(self.flags)


@dataclass(frozen=True)
class MoveRefused(Message):
    """The hub refused a move this municipality reported, entitled to report it but not starting where the hub last
    saw the person move to (``not_residence``): no handover is under way. Its own move id and code only — not
    where the person lives, nor who holds."""

    kind: ClassVar[str] = "move_refused"
    move_id: str  # the sender's own
    code: str  # the sender's code for the person
    reason: str  # the hub's refusal code (``not_residence``)

    def check(self) -> None:
        check_event_id(self.move_id)
        check_code(self.code)
        if self.reason != "not_residence":
            raise InputError("a move is reported refused as not_residence only", field="reason")
