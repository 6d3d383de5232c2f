"""CLI: ``audit views`` (logic in ledger.audit.views_check)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ledger.cli.main import EXTENSIONS, GROUPS, _node, command, out, progress_printer


def _progress() -> Callable[[str, int, int], None]:
    printers: dict[str, Callable[[int, int], None]] = {}

    def show(phase: str, done: int, total: int) -> None:
        printer = printers.get(phase)
        if printer is None:
            printer = printers[phase] = progress_printer(phase)
        printer(done, total)

    return show


@command("audit views")
def _audit_views(args: argparse.Namespace) -> int:
    from ledger.audit.views_check import check_views

    report = check_views(_node(args), scratch=args.scratch, page=args.page,
                         progress=None if args.quiet else _progress())
    out(report.to_json())
    if report.first_difference is not None:
        print(f"FAILED: the views differ from a rebuild from the log at position {report.position}: "
              f"{report.first_difference}", file=sys.stderr)
        print("Next: someone changed the views database (or a projection is wrong). Decisions do not read these "
              "rows; staff listings do. Keep a copy of views.sqlite (or the views schema) as evidence, find who "
              "had write access, then `flagledger projections rebuild` and run `flagledger audit views` again.",
              file=sys.stderr)
        return 6
    return 0


def _register(groups: Any, sub: Any, actor: Any) -> None:
    s = sub(GROUPS["audit"], "views",
            "rebuild every view from the log into a scratch location and compare it with the live views "
            "(exit 6 naming the first differing row)")
    s.add_argument("--scratch", default=None, metavar="URL_OR_PATH",
                   help="an empty SQLite file or postgresql:// database to rebuild into (default: a temporary file "
                        "under DATA_DIR/audit/, or a temporary schema in the node's PostgreSQL database)")
    s.add_argument("--page", type=int, default=1000, help="events per transaction of the rebuild (default 1000)")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(cmd="audit views")


EXTENSIONS.append(_register)
