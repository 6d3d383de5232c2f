"""``flagledger audit …``: verification of the log and of the views; the proofs and the auditors' reads are in
``audit_proofs`` and ``audit_replay``, composed into the one ``audit`` group here."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ledger.capacity import ONE_SHOT
from ledger.cli import audit_proofs, audit_replay
from ledger.cli.base import adopt, command, data_dir, group, node, out, progress_printer
from ledger.cli.parsing import WHOLE, option


@command(None, "verify", help="check every signature and chain link")
@option("--quiet", is_flag=True)
@option(
    "--against",
    "--checkpoint",
    "checkpoint",
    multiple=True,
    metavar="HEAD_FILE",
    help="also check a signed tree head kept outside this log (`audit head --out`, or a peer's "
    "`audit latest-checkpoint --export`): catches a truncated log; repeatable",
)
@option(
    "--workers",
    type=WHOLE,
    default=None,
    metavar="N",
    help="processes checking signatures (default: one per CPU; a log under 50,000 events is checked in one)",
)
def verify(quiet: bool, checkpoint: tuple[str, ...], workers: int | None) -> int:
    from ledger.audit.verify import verify_log
    from ledger.runtime.bootstrap import open_node

    trusted = [audit_proofs.load_checkpoint(f) for f in checkpoint]
    # opened for the audit: a log in envelope v1 is read, a key event that fails is named below
    app = adopt(open_node(data_dir(), pools=ONE_SHOT, audit=True)).app
    report = verify_log(app, progress=None if quiet else progress_printer("verify"), trusted=trusted, workers=workers)
    for found in report.staff_findings:
        print(f"staff signature: {found} [{found.code}]", file=sys.stderr)
    if report.first_bad is not None:
        print(f"FAILED: first bad event at {report.first_bad} [{report.first_bad.code}]", file=sys.stderr)
        if report.first_bad.index is not None:
            print(f"first bad leaf index: {report.first_bad.index}", file=sys.stderr)
        print(
            "Next: restore the database from a backup and check it with `flagledger audit verify`; "
            "the events before this position verified.",
            file=sys.stderr,
        )
        return 6
    out(
        {
            "ok": True,
            "events": report.events,
            "streams": report.streams,
            "signed_batches": report.batches,
            "checkpoints": report.checkpoints,
            "log_size": report.tree_size,
            **({"v1_events": report.v1_events} if report.v1_events else {}),
            "staff_signed_events": report.staff_signed,
            # events whose person was erased (issue 22): verified, content gone; when and by which approval
            **(
                {
                    "erased_events": [
                        {"position": p, "topic": t, "key": ref, **report.erasures[ref]}
                        for p, _, _, t, ref in report.erased
                    ]
                }
                if report.erased
                else {}
            ),
            # an old log's flag events from before its agency's staff roster: listed, never passed silently
            **(
                {"before_staff_signing": [str(f) for f in report.before_staff_signing]}
                if report.before_staff_signing
                else {}
            ),
            # signed by certified people whose roles the roster does not record (opened before roles travelled)
            **(
                {"before_staff_roles": [str(f) for f in report.before_staff_roles]} if report.before_staff_roles else {}
            ),
        }
    )
    return 0


def _phases() -> Callable[[str, int, int], None]:
    printers: dict[str, Callable[[int, int], None]] = {}

    def show(phase: str, done: int, total: int) -> None:
        printer = printers.get(phase)
        if printer is None:
            printer = printers[phase] = progress_printer(phase)
        printer(done, total)

    return show


@command(
    None,
    "views",
    help="rebuild every view from the log into a scratch location and compare it with the "
    "live views (exit 6 naming the first differing row)",
)
@option(
    "--scratch",
    default=None,
    metavar="URL_OR_PATH",
    help="an empty SQLite file or postgresql:// database to rebuild into (default: a temporary file under "
    "DATA_DIR/audit/, or a temporary schema in the node's PostgreSQL database)",
)
@option("--page", type=WHOLE, default=1000, help="events per transaction of the rebuild (default 1000)")
@option("--quiet", is_flag=True, help="no progress on stderr")
def views(scratch: str | None, page: int, quiet: bool) -> int:
    from ledger.audit.views_check import check_views

    report = check_views(node(), scratch=scratch, page=page, progress=None if quiet else _phases())
    out(report.to_json())
    if report.first_difference is not None:
        print(
            f"FAILED: the views differ from a rebuild from the log at position {report.position}: "
            f"{report.first_difference}",
            file=sys.stderr,
        )
        print(
            "Next: someone changed the views database (or a projection is wrong). Decisions do not read these "
            "rows; staff listings do. Keep a copy of views.sqlite (or the views schema) as evidence, find who "
            "had write access, then `flagledger projections rebuild` and run `flagledger audit views` again.",
            file=sys.stderr,
        )
        return 6
    return 0


audit = group(
    "audit",
    "verification, proofs, replay and reports",
    [
        verify,
        audit_proofs.checkpoint,
        audit_proofs.head,
        audit_proofs.latest_checkpoint,
        audit_proofs.prove,
        audit_proofs.check_proof,
        audit_proofs.holds,
        audit_proofs.release,
        audit_replay.replay,
        audit_replay.timeline,
        audit_replay.report,
        views,
    ],
)
