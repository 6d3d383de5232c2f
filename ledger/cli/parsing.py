"""The command line's argument parser: every value within its field's bound, and no error echoing a value.

argparse's own messages quote what was typed (``invalid int value: '1234-5678-…'``, ``invalid choice: …``,
``unrecognized arguments: …``): a mistyped individual number would land on the terminal, in shell history
scrapers and in job logs. Here every refusal names the option and says what is expected, never the value.
Bytes that are not UTF-8 (Python hands them over as surrogate escapes) and control characters are refused
before anything runs, instead of failing later with a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ledger.domain import bounds
from ledger.domain.bounds import Bound

__all__ = ["CLI_BOUNDS", "SafeParser"]

_HOST = Bound(255)
_HEX_KEY = Bound(64)
_EVENT_ID = Bound(64)
_LIAISON = Bound(24)  # L-<20 hex>
_TTL = Bound(16)  # 900, 15m, 8h
_UUID = Bound(45)  # a request or case id (UUID text, or urn:uuid:…)
_PARKED_ID = Bound(18)  # a parked message's row id
_PROPOSAL = Bound(10)  # a held request's proposal version

# option (argparse ``dest``) → the bound of the field it fills (tests/unit/test_cli_bounds.py checks that every
# text option of every command is here)
CLI_BOUNDS: dict[str, Bound] = {
    # free text
    "procedure": bounds.PROCEDURE, "info_kind": bounds.INFO_KIND, "notes": bounds.NOTE, "note": bounds.NOTE,
    "explanation": bounds.NOTE, "reason": bounds.NOTE, "purpose": bounds.PURPOSE, "name": bounds.NAME,
    # identifiers
    "actor": bounds.ACTOR, "admin": bounds.STAFF_ID, "staff": bounds.STAFF_ID, "agency": bounds.AGENCY_CODE,
    "provider": bounds.AGENCY_CODE, "municipality": bounds.AGENCY_CODE, "requester": bounds.AGENCY_CODE,
    "subject": bounds.SUBJECT, "victim": bounds.SUBJECT, "perpetrator": bounds.SUBJECT, "proxy": bounds.SUBJECT,
    "old": bounds.SUBJECT, "new": bounds.SUBJECT, "viewer": bounds.SUBJECT, "key_id": bounds.KEY_ID,
    "request_id": _UUID, "case": _UUID, "body_request": _UUID, "public_key": _HEX_KEY, "event_id": _EVENT_ID,
    "token": _LIAISON, "role": bounds.ENUM, "incident_id": _UUID, "incident": _UUID, "id": _PARKED_ID,
    "proposal": _PROPOSAL,
    # times
    "valid_from": bounds.TIME, "as_of": bounds.TIME, "start": bounds.TIME, "end": bounds.TIME,
    "review_date": bounds.DATE, "today": bounds.DATE, "ttl": _TTL, "since": bounds.TIME, "until": bounds.TIME,
    # places
    "data_dir": bounds.PATH, "demo_dir": bounds.PATH, "database_url": bounds.PATH, "checkpoint": bounds.PATH,
    "export": bounds.PATH, "file": bounds.PATH, "out": bounds.PATH, "output": bounds.PATH,
    "target": bounds.PATH, "scratch": bounds.PATH, "pseudonym_key_file": bounds.PATH, "signing_key_file": bounds.PATH,
    "host": _HOST, "metrics_host": _HOST, "serve_host": _HOST,
}

_KINDS = {"int": "a whole number", "float": "a number"}


class SafeParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose refusals (exit 2) name the option and never quote the value."""

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        if isinstance(action, argparse._SubParsersAction):  # the sub-command's parser checks its own arguments
            return arg_string
        if isinstance(arg_string, str):
            why = bounds.bad_text(arg_string)
            if why is not None:
                raise argparse.ArgumentError(action, f"the value {why}")
            bound = CLI_BOUNDS.get(action.dest)
            if bound is not None and len(arg_string) > bound.max:
                raise argparse.ArgumentError(action, f"at most {bound.max} characters")
        type_func = self._registry_get("type", action.type, action.type)
        if not callable(type_func):
            raise argparse.ArgumentError(action, f"{type_func!r} is not callable")
        try:
            return type_func(arg_string)
        except argparse.ArgumentTypeError as exc:  # our own type functions say what is expected, no value
            raise argparse.ArgumentError(action, str(exc)) from None
        except (TypeError, ValueError):
            name = getattr(action.type, "__name__", "value")
            raise argparse.ArgumentError(action, f"must be {_KINDS.get(name, 'a valid ' + name)}") from None

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(action, f"choose from {choices}")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            self.error(f"{len(extra)} unrecognized argument(s); see --help")
        return parsed
