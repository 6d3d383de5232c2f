"""The command line's parameters: every value within its field's bound, and no error echoing a value.

Click's own messages quote what was typed (``'1234-5678-…' is not a valid integer``, ``No such command …``,
``Got unexpected extra argument (…)``): a mistyped individual number would land on the terminal, in shell
history scrapers and in job logs. Here every refusal names the parameter and says what is expected, never the
value. Bytes that are not UTF-8 (Python hands them over as surrogate escapes) and control characters are
refused before anything runs, instead of failing later with a traceback.

Every parameter is a :class:`Option` or :class:`Argument` from here (through :func:`option` and
:func:`argument`), every command a :class:`SafeCommand`, every group a :class:`SafeGroup`;
tests/unit/test_cli_bounds.py walks the command tree and checks that every text parameter has a bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import click

from ledger.app import Actor
from ledger.domain import bounds
from ledger.domain.bounds import Bound
from ledger.domain.disclosures import REFERENCE
from ledger.domain.types import parse_day
from ledger.errors import InputError

__all__ = ["CLI_BOUNDS", "Argument", "Option", "SafeCommand", "SafeGroup", "argument", "option"]

_HOST = Bound(255)
_HEX_KEY = Bound(64)
_EVENT_ID = Bound(64)
_LIAISON = Bound(24)  # L-<20 hex>
_TTL = Bound(16)  # 900, 15m, 8h
_UUID = Bound(45)  # a request or case id (UUID text, or urn:uuid:…)
_PARKED_ID = Bound(18)  # a parked message's row id
_PROPOSAL = Bound(10)  # a held request's proposal version

# parameter name (Click's ``param.name``) → the bound of the field it fills (tests/unit/test_cli_bounds.py checks
# that every text parameter of every command is here)
CLI_BOUNDS: dict[str, Bound] = {
    # free text
    "procedure": bounds.PROCEDURE,
    "info_kind": bounds.INFO_KIND,
    "value": bounds.PROCEDURE,  # `policy manual --value`: an item number, a procedure or an information kind
    "batch_times": Bound(60),  # `policy answers --batch-times`: up to eight HH:MM, comma-separated
    "notes": bounds.NOTE,
    "note": bounds.NOTE,
    "explanation": bounds.NOTE,
    "reason": bounds.NOTE,
    "purpose": bounds.PURPOSE,
    "name": bounds.NAME,
    # identifiers
    "actor": bounds.ACTOR,
    "admin": bounds.STAFF_ID,
    "second_admin": bounds.STAFF_ID,
    "staff": bounds.STAFF_ID,
    "account": bounds.STAFF_ID,  # a system account (ledger/cli/system.py)
    "one_time_code": Bound(8),  # a TOTP code (staff token --code)
    "agency": bounds.AGENCY_CODE,
    "provider": bounds.AGENCY_CODE,
    "municipality": bounds.AGENCY_CODE,
    "requester": bounds.AGENCY_CODE,
    "subject": bounds.SUBJECT,
    "victim": bounds.SUBJECT,
    "perpetrator": bounds.SUBJECT,
    "proxy": bounds.SUBJECT,
    "companion": bounds.SUBJECT,
    "guardian": bounds.SUBJECT,
    "old": bounds.SUBJECT,
    "new": bounds.SUBJECT,
    "viewer": bounds.SUBJECT,
    "asked_by": bounds.SUBJECT,  # `disclosure request|printout --asked-by`: the person's proxy
    "reference": REFERENCE,  # `disclosure … --reference`: the agency's own number for the request (受付番号)
    "card": bounds.SUBJECT,  # `portal page --card`: an individual number
    "proxy_card": bounds.SUBJECT,  # `portal page --proxy-card`: the proxy's own individual number
    "topic_prefix": Bound(100),  # `init --role hub|portal --topic-prefix`
    "issuer": Bound(64),  # `portal trust-issuer --issuer`: a card issuer's name (its certificates' `issuer`)
    "public_hex": _HEX_KEY,  # `portal trust-issuer --public-hex`: its Ed25519 public key
    "key_id": bounds.KEY_ID,
    "request_id": _UUID,
    "case": _UUID,
    "bar_id": _UUID,
    "approval_id": _UUID,
    "body_request": _UUID,
    "body_request_id": _UUID,
    "public_key": _HEX_KEY,
    "event_id": _EVENT_ID,
    "hub_request": Bound(32),  # `provision asked`: a query's id through the hub (uuid4 hex)
    "enrolment_code": Bound(64),  # `staff activate --code` (secrets.token_urlsafe(24): 32 characters)
    "token": _LIAISON,
    "role": bounds.ENUM,
    "incident_id": _UUID,
    "incident": _UUID,
    "grant": _UUID,
    "id": _PARKED_ID,
    "proposal": _PROPOSAL,
    "to_agency": bounds.AGENCY_CODE,  # a residence change (flagledger year move)
    "from_agency": bounds.AGENCY_CODE,
    "decision_id": _UUID,
    "risk": bounds.NOTE,
    "grant_id": _UUID,  # `staff co-approve --grant` (break-glass from the prefecture's node)
    "digest": Bound(64),  # a grant's SHA-256, hex
    # times
    "valid_from": bounds.TIME,
    "as_of": bounds.TIME,
    "start": bounds.TIME,
    "end": bounds.TIME,
    "review_date": bounds.DATE,
    "today": bounds.DATE,
    "moved_on": bounds.DATE,
    "applied_on": bounds.DATE,
    "requested_on": bounds.DATE,
    "ttl": _TTL,
    "since": bounds.TIME,
    "until": bounds.TIME,
    # places
    "data_dir": bounds.PATH,
    "demo_dir": bounds.PATH,
    "database_url": bounds.PATH,
    "checkpoint": bounds.PATH,
    "export": bounds.PATH,
    "grant_file": bounds.PATH,  # `staff co-approve --grant-file`: the municipality's `staff export-grant`
    "co_file": bounds.PATH,  # `staff approve-grant --break-glass-from`: the prefecture's signed co-approval
    "file": bounds.PATH,
    "out": bounds.PATH,
    "output": bounds.PATH,
    "target": bounds.PATH,
    "scratch": bounds.PATH,
    "pseudonym_key_file": bounds.PATH,
    "linkage_hub": bounds.PATH,
    "signing_key_file": bounds.PATH,
    "host": _HOST,
    "metrics_host": _HOST,
    "serve_host": _HOST,
}


# -- value types: each refusal says what is expected, never what was typed -----------------------------------
class _Type(click.ParamType[Any]):
    """A type whose conversion is ``parse(text)``; ValueError/InputError become ``expected`` (or the
    InputError's own text when ``own_message``), without the value."""

    def __init__(self, name: str, parse: Callable[[str], Any], expected: str, own_message: bool = False) -> None:
        self.name, self.parse, self.expected, self.own_message = name, parse, expected, own_message

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # a default, already of its type
            return value
        try:
            return self.parse(value)
        except InputError as exc:
            self.fail(str(exc) if self.own_message else self.expected, param, ctx)
        except (ValueError, OverflowError):
            self.fail(self.expected, param, ctx)


class OneOf(click.ParamType[str]):
    """A fixed set of words (Click's Choice quotes the refused value)."""

    name = "choice"

    def __init__(self, choices: Iterable[str]) -> None:
        self.choices = tuple(choices)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "{" + ",".join(self.choices) + "}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value not in self.choices:
            self.fail(f"choose from {', '.join(self.choices)}", param, ctx)
        return value


def _uuid(value: str) -> UUID:
    return UUID(value)


def _date(value: str) -> date:
    return parse_day(value, "the date")


def _proposal_version(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 10 and 1 <= int(value) < 2**31):
        raise ValueError(value)
    return int(value)


def _parked_id(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise ValueError(value)
    return int(value)


def _ttl(value: str) -> timedelta:
    """``900``, ``15m``, ``8h`` → a timedelta; ``inf``, ``nan`` and overflowing values are refused."""
    units = {"s": 1, "m": 60, "h": 3600}
    unit = units.get(value[-1:])
    seconds = float(value[:-1]) * unit if unit else float(value)
    if not math.isfinite(seconds):
        raise ValueError(value)
    return timedelta(seconds=seconds)


WHOLE = _Type("integer", int, "must be a whole number")
NUMBER = _Type("float", float, "must be a number")
PATH = _Type("path", Path, "must be a path")
UUID_ID = _Type("uuid", _uuid, "not a request/case id (UUID)")
DAY = _Type("date", _date, "not a date", own_message=True)
PROPOSAL_VERSION = _Type(
    "version", _proposal_version, "not a proposal version (a positive whole number from `view queue`)"
)
PARKED_ID = _Type("id", _parked_id, "not a parked message id (see `consumers parked`)")
TTL = _Type("ttl", _ttl, "not a lifetime: give 30 seconds to 12 hours, e.g. 900, 15m, 8h")
ACTOR = _Type("actor", Actor.parse, "not AGENCY/STAFF", own_message=True)
NUMBER_TYPES = (WHOLE, NUMBER)  # numbers: refused without echo by their type, so they need no text bound


def choices(enum: Any) -> OneOf:
    return OneOf(m.value for m in enum)


# -- parameters ----------------------------------------------------------------------------------------------
def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _texts(v)


class _Checked(click.Parameter):
    """Refuses text that is not UTF-8, holds control characters or is over the parameter's bound, before its
    type reads it."""

    def type_cast_value(self, ctx: click.Context, value: Any) -> Any:
        bound = CLI_BOUNDS.get(self.name or "")
        for text in _texts(value):
            why = bounds.bad_text(text)
            if why is not None:
                raise click.BadParameter(f"the value {why}", ctx, self)
            if bound is not None and len(text) > bound.max:
                raise click.BadParameter(f"at most {bound.max} characters", ctx, self)
        return super().type_cast_value(ctx, value)


class Option(_Checked, click.Option):
    pass


class Argument(_Checked, click.Argument):
    pass


F = TypeVar("F", bound=Callable[..., Any])


def option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    return click.option(*decls, cls=Option, **attrs)


def argument(*decls: str, **attrs: Any) -> Callable[[F], F]:
    return click.argument(*decls, cls=Argument, **attrs)


def hint(param: click.Parameter | None) -> str:
    """How argparse named a parameter in its messages, kept for scripts that read them: ``--opt`` (all its
    spellings joined by /) or the argument's name."""
    if param is None:
        return "value"
    if isinstance(param, click.Option):
        return "/".join(param.opts)
    return param.name or "value"


# -- commands and groups -------------------------------------------------------------------------------------
HELP = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class SafeCommand(click.Command):
    """A command that counts stray arguments instead of quoting them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", HELP)
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        allowed, ctx.allow_extra_args = ctx.allow_extra_args, True
        try:
            rest = super().parse_args(ctx, args)
        finally:
            ctx.allow_extra_args = allowed
        if rest and not allowed:
            raise click.UsageError(f"{len(rest)} unrecognized argument(s); see --help", ctx)
        return rest


class SafeGroup(click.Group):
    """A group whose sub-commands are :class:`SafeCommand` and :class:`SafeGroup`, listed in the order they
    were added (the order of the work, not the alphabet), and which names a mistyped sub-command's choices
    without quoting it."""

    command_class = SafeCommand
    group_class = type

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", HELP)
        super().__init__(*args, **kwargs)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, c.get_short_help_str(limit=200)) for name, c in self.commands.items() if not c.hidden]
        if rows:  # each summary whole, wrapped (Click cuts them at the terminal's width with "...")
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            raise click.UsageError(f"argument COMMAND: choose from {', '.join(self.commands)}", ctx)
        return super().resolve_command(ctx, args)
