"""One gate in front of another: the bridge's gate chain (``consumers.linkage_bridge``) lets the portal's delivery
messages and the witnesses' kinds be taken by their own links before the flag map's gate sees them, so the map
never parks a kind it does not know but another link owns."""

from __future__ import annotations

from collections.abc import Callable

from ledger.linkage.messages import Message

__all__ = ["Handler", "taken_first"]

Handler = Callable[[Message], Message | None]


def taken_first(take: Callable[[Message], bool], inner: Handler) -> Handler:
    """``inner`` with each message offered to ``take`` first: one it takes (True) goes no further — ``inner``
    would not know its kind — and it answers nothing; any other is ``inner``'s."""

    def gated(message: Message) -> Message | None:
        return None if take(message) else inner(message)

    return gated
