"""CLI: ``incident report`` (the facts for a breach report to the PPC) and ``incident ack``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from consumers.incident_report import DEFAULT_PURPOSE, draft, render_markdown, write_private
from ledger.app.incidents import acknowledge
from ledger.cli.main import EXTENSIONS, _node, _uuid, command, out
from ledger.errors import InputError


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--{name} is not an ISO 8601 time with a UTC offset") from None
    if at.tzinfo is None:
        raise InputError(f"--{name} needs a UTC offset (+09:00 or Z): a bare local time is refused, not guessed")
    return at


@command("incident report")
def _report(args: argparse.Namespace) -> int:
    node = _node(args)
    destination = str(Path(args.out).resolve()) if args.out else "stdout"
    result = draft(node, args.actor, since=_time(args.since, "from"), until=_time(args.until, "to"),
                   ids=args.incident or None, purpose=args.purpose, destination=destination)
    text = json.dumps(result.facts, ensure_ascii=False, indent=2) + "\n" if args.json else render_markdown(result.facts)
    if args.out:
        write_private(Path(args.out), text)
        print(f"wrote {args.out} (mode 0600; the draft names people by pseudonym: keep it like case records)",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


@command("incident ack")
def _ack(args: argparse.Namespace) -> int:
    incident = acknowledge(_node(args).app, args.actor, args.incident_id, args.note)
    out({"incident": str(incident.id), "acknowledged_by": str(args.actor), "at": incident.acknowledged_at})
    return 0


def _register(groups: Any, sub: Any, actor: Any) -> None:
    about = "security incidents: forged signatures, forks, foreign writers, revoked keys"
    g = sub(groups, "incident", about).add_subparsers(dest="sub", required=True)
    s = sub(g, "report", "draft the facts for a breach report to the PPC (個人情報保護委員会); the read is recorded")
    actor(s)
    s.add_argument("--from", dest="since", default=None, help="incidents first seen at or after (ISO 8601 + offset)")
    s.add_argument("--to", dest="until", default=None, help="… and before this time")
    s.add_argument("--incident", action="append", type=_uuid, default=[], help="only this incident (repeatable)")
    s.add_argument("--purpose", default=DEFAULT_PURPOSE, help="why the report is drafted (recorded with the read)")
    s.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    s.add_argument("--out", default=None, metavar="FILE", help="write to FILE (mode 0600) instead of stdout")
    s.set_defaults(cmd="incident report")
    s = sub(g, "ack", "acknowledge an incident raised for your agency, saying what was done")
    actor(s)
    s.add_argument("incident_id", type=_uuid)
    s.add_argument("--note", required=True, help="what was done (e.g. person contacted, sender called)")
    s.set_defaults(cmd="incident ack")


EXTENSIONS.append(_register)
