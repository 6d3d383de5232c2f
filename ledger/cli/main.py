"""``flagledger``: the one command line of a node — set-up, daily work, audit, and running the node.

Built on Click rather than Typer: every refusal must name the parameter without repeating what was typed (an
individual number in the wrong option must not reach the terminal or job logs), which needs our own value
types, parameter classes and error text (``ledger.cli.parsing``) — Click's extension points, which Typer
wraps behind type annotations; Typer's rich tracebacks would also print local variables (personal data) on a
crash. Each group lives in the module named for it and is composed here, once: no registry filled at import.

Exit codes: 0 ok, 1 the demo found a leak, 2 bad input, 3 not found, 4 permission, 5 rule, 6 integrity,
7 storage or configuration, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ledger.cli import (
    agency,
    audit,
    body,
    case,
    consumers,
    demo,
    disclosure,
    erase,
    flag,
    identity,
    incident,
    init,
    key,
    linkage,
    login,
    node,
    permission,
    policy,
    portal,
    projections,
    provision,
    proxy,
    retention,
    serve,
    staff,
    system,
    topics,
    view,
    year,
)
from ledger.cli.base import data_dir_option
from ledger.cli.parsing import SafeGroup, hint
from ledger.errors import (
    AuthError,
    ConfigurationError,
    FlagLedgerError,
    InputError,
    IntegrityError,
    NotFoundError,
    PermissionDenied,
    RuleViolation,
    StorageError,
)
from ledger.files import private_umask

EXIT = {
    NotFoundError: 3,
    PermissionDenied: 4,
    AuthError: 4,  # not authenticated: a wrong password, a locked or missing credential
    RuleViolation: 5,
    IntegrityError: 6,
    StorageError: 7,
    ConfigurationError: 7,
    InputError: 2,
}

# the top-level help lists the commands under these headings, in this order
SECTIONS: dict[str, list[click.Command]] = {
    "Signing in": [login.login, login.logout, login.whoami],
    "Set-up": [
        init.init,
        agency.agency,
        staff.staff,
        system.system,
        permission.permission,
        policy.policy,
        key.key,
        linkage.linkage,
    ],
    "Daily work": [
        case.case,
        flag.flag,
        body.body,
        provision.provision,
        identity.identity,
        proxy.proxy,
        view.view,
        year.year,
        portal.portal,
        disclosure.disclosure,
    ],
    "Audit and incidents": [
        audit.audit,
        incident.incident,
        projections.projections,
        retention.retention,
        erase.erase,
    ],
    "Running a node": [
        node.node_,
        node.relay,
        node.consume,
        consumers.consumers,
        topics.topics,
        serve.serve,
        serve.openapi,
    ],
    "Trying it": [demo.demo],
}


class Root(SafeGroup):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for heading, commands in SECTIONS.items():
            with formatter.section(heading):
                formatter.write_dl([(c.name or "", c.get_short_help_str(limit=200)) for c in commands])


@click.group(
    "flagledger",
    cls=Root,
    epilog="`flagledger COMMAND --help` for each command's options. "
    "Exit codes: 0 ok, 2 bad input, 3 not found, 4 permission, 5 rule, 6 integrity, 7 storage/config.",
)
@data_dir_option(top=True)
def cli() -> None:
    """flagledger keeps an agency's protection flags for victims of DV and stalking (不開示 NON_DISCLOSURE,
    自動応答不可 NO_AUTO_RESPONSE) in a signed, event-sourced ledger, shares them with the other agencies over
    Kafka, and answers each reader — counter staff, Mynaportal, an auditor — only what they may see.

    Start with `flagledger demo`; a node begins with `flagledger init`.
    """


for _commands in SECTIONS.values():
    for _command in _commands:
        cli.add_command(_command)


def _refusal(exc: click.UsageError) -> str:
    """argparse's wording, which scripts and tests read: ``argument --opt: what is expected``; never the
    value (Click's own messages quote it)."""
    if isinstance(exc, click.NoSuchOption):
        return "unrecognized argument(s); see --help"
    if isinstance(exc, click.MissingParameter):
        return f"the following arguments are required: {hint(exc.param)}"
    if isinstance(exc, click.BadParameter):
        return f"argument {hint(exc.param)}: {exc.message}"
    if exc.message == "Missing command.":
        return "the following arguments are required: COMMAND"
    return exc.message


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code is returned. Bad arguments and ``--help`` raise SystemExit (2 and 0) before
    anything runs, as argparse did."""
    private_umask()  # every file this process (and its children) creates: 0600, directories 0700
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with cli.make_context("flagledger", args) as ctx:
            return int(cli.invoke(ctx) or 0)
    except click.exceptions.Exit as stop:  # --help, shown
        raise SystemExit(stop.exit_code) from None
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)
        raise SystemExit(2) from None
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "flagledger"
        if exc.ctx is not None:
            print(exc.ctx.get_usage(), file=sys.stderr)
            print(f"Try '{where} --help' for help.", file=sys.stderr)
        print(f"{where}: error: {_refusal(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    except FlagLedgerError as exc:
        code = next((v for k, v in EXIT.items() if isinstance(exc, k)), 1)
        print(f"flagledger: error [{exc.code}]: {exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
