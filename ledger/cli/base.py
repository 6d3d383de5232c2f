"""What every command shares: printing a result, progress on stderr, the ``--data-dir`` and ``--as`` options,
and opening the node (closed by Click when the command's context ends, also after an error)."""

from __future__ import annotations

import functools
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from ledger.app import Actor
from ledger.capacity import ONE_SHOT, PoolSizes
from ledger.cli.parsing import ACTOR, SafeCommand, SafeGroup, option
from ledger.runtime.bootstrap import Node, open_node

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DATA_DIR = "./flagledger-data"
_DATA_DIR = "flagledger.data_dir"  # key in ``ctx.meta``, shared by a command and the groups above it
_NODES = "flagledger.nodes"  # the nodes a command opened (``ctx.meta``), by pool sizes and audit mode


def out(value: Any) -> None:
    """One result as one line of JSON on stdout (scripts and tests parse it)."""
    print(json.dumps(value, ensure_ascii=False, default=str, indent=None))


def progress_printer(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        print(f"\r{label}: {done}/{total} ({pct:5.1f}%)", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)

    return show


def _remember_data_dir(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None:  # one given after the sub-command wins over the one (or the default) before it
        ctx.meta[_DATA_DIR] = value


def data_dir_option(top: bool = False) -> Callable[[F], F]:
    """``--data-dir``, accepted before the sub-command (``flagledger --data-dir D flag show``) and after it."""
    if top:
        return option(
            "--data-dir",
            envvar="FLAGLEDGER_DATA_DIR",
            default=DEFAULT_DATA_DIR,
            expose_value=False,
            callback=_remember_data_dir,
            show_envvar=True,
            help=f"node data directory (default {DEFAULT_DATA_DIR})",
        )
    return option(
        "--data-dir", default=None, expose_value=False, callback=_remember_data_dir, help="node data directory"
    )


def data_dir_text() -> str:
    """``--data-dir`` as typed (or its default)."""
    return str(click.get_current_context().meta.get(_DATA_DIR, DEFAULT_DATA_DIR))


def data_dir() -> Path:
    return Path(data_dir_text())


def node(pools: PoolSizes | None = ONE_SHOT, audit: bool = False) -> Node:
    """This command's node, holding one database connection per pool (a one-shot command); a process serving
    many requests passes ``pools=None`` for its configured capacity (``ledger.capacity``).

    Opened once per command however often it is asked for: ``flag request`` asked twice (the command and
    :func:`unlocked`) and so held two nodes' connections, six on PostgreSQL instead of three, to the end — the
    fifty-command burst then filled the server's connection table and commands timed out waiting for one."""
    opened: dict[tuple[PoolSizes | None, bool], Node] = click.get_current_context().meta.setdefault(_NODES, {})
    if (pools, audit) not in opened:
        opened[(pools, audit)] = adopt(open_node(data_dir(), pools=pools, audit=audit))
    return opened[(pools, audit)]


def adopt(opened: Node) -> Node:
    """Close ``opened`` when the command ends, however it ends."""
    click.get_current_context().call_on_close(opened.close)
    return opened


def as_actor(required: bool = True, help_: str = "", *, authenticate: bool = True) -> Callable[[F], F]:
    """``--as AGENCY/STAFF``, resolved to the person signed in (ledger/cli/session.py): the session, a
    ``FLAGLEDGER_TOKEN``, or ``--as`` with ``FLAGLEDGER_PASSWORD`` for this one command; ``--as`` alone proves
    nothing, and one naming someone else than the session is refused. ``required=False``: no person is needed
    (None when there is neither ``--as`` nor a session). ``authenticate=False``: the claim as typed, for the
    command to check itself (a system account's secret, the enrolment code, a first administrator's bootstrap)."""

    def decorate(fn: F) -> F:
        if not authenticate:
            # (no explicit default=None: to Click a default given is a value present, and --as would not be required)
            claim = option(
                "--as", "actor", type=ACTOR, required=required, metavar="AGENCY/STAFF", help=help_ or "who acts"
            )
            return claim(fn)

        @functools.wraps(fn)
        def resolved(*args: Any, **kwargs: Any) -> Any:
            given = kwargs.get("actor")
            if required or given is not None or has_credentials(data_dir()):
                kwargs["actor"] = signed_in(given)
            return fn(*args, **kwargs)

        text = help_ or "who acts (default: the person signed in, `flagledger login`); e.g. 131016/tanaka"
        return cast(F, option("--as", "actor", type=ACTOR, metavar="AGENCY/STAFF", help=text)(resolved))

    return decorate


def signed_in(given: Actor | None) -> Actor:
    """The person this command acts as (ledger/cli/session.py): ``given`` (``--as``) only if they signed in."""
    from ledger.cli.session import signed_in as authenticated

    return authenticated(node(), data_dir(), given)


def has_credentials(where: Path) -> bool:
    """Whether a token or a session file is at hand (ledger/cli/session.py)."""
    from ledger.cli.session import has_credentials as at_hand

    return at_hand(where)


def password_for(actor: Actor, *, new: bool = False) -> str:
    """The person's password: FLAGLEDGER_PASSWORD (scripts), else asked for on the terminal, hidden (twice when
    it is a new one)."""
    import os

    from ledger.errors import AuthError, Code

    given = os.environ.get("FLAGLEDGER_PASSWORD")
    if given:
        return given
    try:
        return str(click.prompt(f"password for {actor}", hide_input=True, confirmation_prompt=new, err=True))
    except (OSError, EOFError, click.Abort, io.UnsupportedOperation):
        raise AuthError(
            f"{actor}'s password is needed: run this in a terminal or set FLAGLEDGER_PASSWORD",
            code=Code.STAFF_SIGNATURE_REQUIRED,
        ) from None


def unlocked(actor: Actor) -> Actor:
    """Open ``actor``'s staff key for this command (their own signature on what they do); returns ``actor``:
    already open (a sign-in of this command, or of this process: the test suite, the demo), else the sealed
    copy of their session, else their password."""
    from ledger.cli.session import unseal
    from ledger.errors import PermissionDenied

    opened = node()
    try:
        opened.app.signer_for(actor)
    except PermissionDenied:
        if not unseal(opened, actor):
            opened.app.unlock(actor.agency, actor.staff, password_for(actor))
    return actor


def command(
    group: click.Group | None = None, name: str | None = None, **attrs: Any
) -> Callable[[Callable[..., Any]], click.Command]:
    """A command with ``--data-dir``, added to ``group`` when given (``help`` is its one-line summary)."""

    def make(fn: Callable[..., Any]) -> click.Command:
        cmd = click.command(name, cls=SafeCommand, **attrs)(data_dir_option()(fn))
        if group is not None:
            group.add_command(cmd)
        return cmd

    return make


def group(name: str, help_: str, commands: Sequence[click.Command] = ()) -> SafeGroup:
    """A command group holding ``commands`` (more are added where they are defined, by :func:`command`);
    ``--data-dir`` is accepted at its level too (``flagledger audit --data-dir D verify``)."""
    g = SafeGroup(name, help=help_)
    data_dir_option()(g)
    for c in commands:
        g.add_command(c)
    return g
