"""What every command shares: printing a result, progress on stderr, the ``--data-dir`` and ``--as`` options,
and opening the node (closed by Click when the command's context ends, also after an error)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ledger.app import Actor
from ledger.app.capacity import ONE_SHOT, PoolSizes
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
    many requests passes ``pools=None`` for its configured capacity (``ledger.app.capacity``).

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


def as_actor(required: bool = True, help_: str = "who acts, e.g. 131016/tanaka") -> Callable[[F], F]:
    # (no explicit default=None: to Click a default given is a value present, and --as would not be required)
    return option("--as", "actor", type=ACTOR, required=required, metavar="AGENCY/STAFF", help=help_)


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
    """Unlock ``actor``'s staff key for this command (their own signature on what they do); returns ``actor``.
    A key this process already unlocked (the test suite, the demo) is not asked for again."""
    from ledger.errors import PermissionDenied

    app = node().app
    try:
        app.signer_for(actor)
    except PermissionDenied:
        app.unlock(actor.agency, actor.staff, password_for(actor))
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
