"""The fields of the console's flag-request form, read once for both of its posts: the WebAuthn options
(ledger/api/console_acts.py, which must sign exactly what will be requested) and the request itself
(ledger/api/console_requests.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form

from ledger.domain import bounds
from ledger.domain.types import Reason, RequestKind

__all__ = ["FlagRequestFields", "FlagRequestForm"]


@dataclass(frozen=True)
class FlagRequestFields:
    subject: str
    flags: list[str]
    kind: str
    reason: str
    explanation: str


def _fields(
    subject: Annotated[str, Form(max_length=bounds.SUBJECT.max)],
    flags: Annotated[list[str], Form(max_length=4)],
    kind: Annotated[str, Form(max_length=16)] = RequestKind.SET.value,
    reason: Annotated[str, Form(max_length=32)] = Reason.DV.value,
    explanation: Annotated[str, Form(max_length=bounds.NOTE.max)] = "",
) -> FlagRequestFields:
    return FlagRequestFields(subject, flags, kind, reason, explanation)


FlagRequestForm = Annotated[FlagRequestFields, Depends(_fields)]
