"""``audit replay``, ``audit timeline``, ``audit report`` (auditors; logic in projections.audit_*), composed into
the ``audit`` group by ``ledger.cli.audit``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ledger.app import Actor
from ledger.cli.base import as_actor, command, node, progress_printer
from ledger.cli.base import out as emit  # (`out` is also the name of the --out option)
from ledger.cli.parsing import WHOLE, argument, option
from ledger.errors import InputError


def _need(command: str, **given: object) -> None:
    missing = [f"--{n.replace('_', '-')}" for n, v in given.items() if not v]
    if missing:
        raise InputError(f"{command} needs {', '.join(missing)} here")


@command(None, "replay", help="rebuild every projection as it stood at a past instant, into a separate database")
@as_actor()
@option(
    "--as-of",
    default=None,
    metavar="TIMESTAMP",
    help="ISO 8601 with UTC offset, e.g. 2026-11-25T10:00:00+09:00: events recorded at or before it",
)
@option(
    "--until-position",
    type=WHOLE,
    default=None,
    metavar="N",
    help="instead of --as-of: the log prefix up to position N (what this node knew then)",
)
@option(
    "--target",
    default=None,
    metavar="URL_OR_PATH",
    help="empty postgresql:// database or SQLite file (default: new file under DATA_DIR/audit/)",
)
@option("--reuse", is_flag=True, help="answer from a finished replay in --target as of the same instant")
@option("--subject", default=None, help="which flags applied to this person then (number or pseudonym)")
@option(
    "--would-hold", is_flag=True, help="would a provision request about --subject from --requester have been held then"
)
@option("--requester", default=None, metavar="AGENCY", help="the querying agency (with --would-hold)")
@option("--purpose", default=None, help="why the person's protection is read (recorded)")
@option("--page", type=WHOLE, default=1000, help="events per transaction (default 1000)")
@option("--quiet", is_flag=True, help="no progress on stderr")
def replay(
    actor: Actor,
    as_of: str | None,
    until_position: int | None,
    target: str | None,
    reuse: bool,
    subject: str | None,
    would_hold: bool,
    requester: str | None,
    purpose: str | None,
    page: int,
    quiet: bool,
) -> int:
    from ledger.audit.replay_target import parse_instant, safe_url
    from ledger.audit.views import audit_replay, flags_then, would_hold_then

    if (as_of is None) == (until_position is None):
        raise InputError("give exactly one of --as-of TIMESTAMP or --until-position N")
    instant = parse_instant(as_of) if as_of is not None else None
    if would_hold:
        _need("audit replay", subject=subject, requester=requester)
    elif requester:
        raise InputError("--requester goes with --would-hold")
    if subject:
        _need("audit replay", purpose=purpose)
    if reuse:
        _need("audit replay", target=target)
    opened = node()
    if subject:  # a bad number fails now, not after a long replay
        opened.app.subject(subject)
    url, engine, summary = audit_replay(
        opened,
        actor,
        as_of=instant,
        until=until_position,
        target=target,
        reuse=reuse,
        progress=None if quiet else progress_printer("replay"),
        page=page,
    )
    try:
        emit({"replay": dataclasses.asdict(summary), "target": safe_url(url)})
        if would_hold:
            assert subject is not None and requester is not None and purpose is not None
            emit(
                {"would_hold": dataclasses.asdict(would_hold_then(opened, actor, engine, subject, requester, purpose))}
            )
        elif subject:
            assert purpose is not None
            emit({"flags": dataclasses.asdict(flags_then(opened, actor, engine, subject, purpose))})
    finally:
        engine.dispose()
    return 0


@command(None, "timeline", help="every event about a person (all their numbers), with actors and approvals")
@as_actor()
@argument("subject")
@option("--purpose", required=True, help="why the timeline is read (recorded)")
def timeline(actor: Actor, subject: str, purpose: str) -> int:
    from ledger.audit.views import audit_timeline

    for e in audit_timeline(node(), actor, subject, purpose):
        emit(dataclasses.asdict(e))
    return 0


@command(None, "report", help="write an HTML + CSV audit report for a period")
@as_actor()
@option("--from", "start", required=True, metavar="TIMESTAMP", help="ISO 8601 with UTC offset")
@option("--to", "end", required=True, metavar="TIMESTAMP", help="ISO 8601 with UTC offset")
@option("--out", required=True, metavar="DIR", help="directory for report.html and the CSV files")
@option("--quiet", is_flag=True, help="no progress on stderr")
def report(actor: Actor, start: str, end: str, out: str, quiet: bool) -> int:
    from ledger.audit.replay_target import parse_instant
    from ledger.audit.report import audit_report

    since, until = parse_instant(start, "--from"), parse_instant(end, "--to")
    result = audit_report(
        node(),
        actor,
        since,
        until,
        Path(out),
        progress=None if quiet else progress_printer("report"),
        verify_progress=None if quiet else progress_printer("verify"),
    )
    emit(
        {
            "out": str(result.out_dir),
            "files": [p.name for p in result.files],
            "rows": result.rows,
            "verified": result.verification.ok,
            "merkle_tree_size": result.tree_size,
            "merkle_root": result.root_hex,
        }
    )
    return 0 if result.verification.ok else 6
