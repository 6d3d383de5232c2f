"""CLI: ``audit replay``, ``audit timeline``, ``audit report`` (auditors; logic in projections.audit_*)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ledger.cli.main import EXTENSIONS, GROUPS, _node, command, out, progress_printer
from ledger.errors import InputError


def _need(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        raise InputError(f"{args.cmd} needs {', '.join(missing)} here")


@command("audit replay")
def _replay(args: argparse.Namespace) -> int:
    from ledger.audit.replay import parse_instant, safe_url
    from ledger.audit.views import audit_replay, flags_then, would_hold_then

    if (args.as_of is None) == (args.until_position is None):
        raise InputError("give exactly one of --as-of TIMESTAMP or --until-position N")
    as_of = parse_instant(args.as_of) if args.as_of is not None else None
    if args.would_hold:
        _need(args, "subject", "requester")
    elif args.requester:
        raise InputError("--requester goes with --would-hold")
    if args.subject:
        _need(args, "purpose")
    if args.reuse:
        _need(args, "target")
    node = _node(args)
    if args.subject:  # a bad number fails now, not after a long replay
        node.app.subject(args.subject)
    url, engine, summary = audit_replay(
        node, args.actor, as_of=as_of, until=args.until_position, target=args.target, reuse=args.reuse,
        progress=None if args.quiet else progress_printer("replay"), page=args.page)
    try:
        out({"replay": dataclasses.asdict(summary), "target": safe_url(url)})
        if args.would_hold:
            out({"would_hold": dataclasses.asdict(
                would_hold_then(node, args.actor, engine, args.subject, args.requester, args.purpose))})
        elif args.subject:
            out({"flags": dataclasses.asdict(flags_then(node, args.actor, engine, args.subject, args.purpose))})
    finally:
        engine.dispose()
    return 0


@command("audit timeline")
def _timeline(args: argparse.Namespace) -> int:
    from ledger.audit.views import audit_timeline

    for e in audit_timeline(_node(args), args.actor, args.subject, args.purpose):
        out(dataclasses.asdict(e))
    return 0


@command("audit report")
def _report(args: argparse.Namespace) -> int:
    from ledger.audit.replay import parse_instant
    from ledger.audit.report import audit_report

    start, end = parse_instant(args.start, "--from"), parse_instant(args.end, "--to")
    result = audit_report(
        _node(args), args.actor, start, end, Path(args.out),
        progress=None if args.quiet else progress_printer("report"),
        verify_progress=None if args.quiet else progress_printer("verify"))
    out({"out": str(result.out_dir), "files": [p.name for p in result.files], "rows": result.rows,
         "verified": result.verification.ok, "merkle_tree_size": result.tree_size,
         "merkle_root": result.root_hex})
    return 0 if result.verification.ok else 6


def _register(groups: Any, sub: Any, actor: Any) -> None:
    g = GROUPS["audit"]
    s = sub(g, "replay", "rebuild every projection as it stood at a past instant, into a separate database")
    actor(s)
    s.add_argument("--as-of", default=None, metavar="TIMESTAMP",
                   help="ISO 8601 with UTC offset, e.g. 2026-11-25T10:00:00+09:00: events recorded at or before it")
    s.add_argument("--until-position", type=int, default=None, metavar="N",
                   help="instead of --as-of: the log prefix up to position N (what this node knew then)")
    s.add_argument("--target", default=None, metavar="URL_OR_PATH",
                   help="empty postgresql:// database or SQLite file (default: new file under DATA_DIR/audit/)")
    s.add_argument("--reuse", action="store_true",
                   help="answer from a finished replay in --target as of the same instant")
    s.add_argument("--subject", default=None, help="which flags applied to this person then (number or pseudonym)")
    s.add_argument("--would-hold", action="store_true",
                   help="would a provision request about --subject from --requester have been held then")
    s.add_argument("--requester", default=None, metavar="AGENCY", help="the querying agency (with --would-hold)")
    s.add_argument("--purpose", default=None, help="why the person's protection is read (recorded)")
    s.add_argument("--page", type=int, default=1000, help="events per transaction (default 1000)")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(cmd="audit replay")

    s = sub(g, "timeline", "every event about a person (all their numbers), with actors and approvals")
    actor(s)
    s.add_argument("subject", help="individual number or pseudonym")
    s.add_argument("--purpose", required=True, help="why the timeline is read (recorded)")
    s.set_defaults(cmd="audit timeline")

    s = sub(g, "report", "write an HTML + CSV audit report for a period")
    actor(s)
    s.add_argument("--from", dest="start", required=True, metavar="TIMESTAMP", help="ISO 8601 with UTC offset")
    s.add_argument("--to", dest="end", required=True, metavar="TIMESTAMP", help="ISO 8601 with UTC offset")
    s.add_argument("--out", required=True, metavar="DIR", help="directory for report.html and the CSV files")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(cmd="audit report")


EXTENSIONS.append(_register)
