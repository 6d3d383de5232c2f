"""The auditor's period report: one self-contained HTML file and one CSV file per section.

Sections, for events *recorded* in the period (inclusive bounds, signed event times) and signed by the
auditor's own agency (never another agency's: its flags would say who protects whom, issue 18):

* ``flags.csv`` — every flag set, released or renewed, per agency, with the operator who applied it;
  ``flag_summary.csv`` — counts per agency and flag.
* ``approvals.csv`` — every approval, rejection and execution of a flag request, with the staff member
  (and the name the agency enrolled them under) and the request it decided.
* ``held.csv`` — every provision request held in the period, who asked, and its outcome by the period's
  end (and later, if it was decided after the period).
* ``reads.csv`` — every recorded read of protected details (``AccessRecord``), who, what, why; every
  report generated (``ReportRecord``: the report lists people, so making one is recorded before it is written);
  and every disclosure document or counter printout handed out (``DisclosureRecord``: how many records shown and
  withheld, never which).
* ``tokens.csv`` — every API token issued (``TokenGrant``): by whom, to whom, which roles, until when, and how the
  person proved who they are (``via``: password, password_totp, password_key, oidc, …).
* ``staff.csv`` — every enrolment, role grant and revocation, deactivation, and role-grant proposal with its
  approval (naming both administrators; a break-glass co-approval is marked so), rejection or withdrawal
  (:mod:`ledger.audit.report_staff`); and every change of a hosted agency's permission table and approval
  policy.
* ``summary.csv`` — title, node, period, generation time and author, the verification result of the whole
  log (:func:`ledger.audit.verify.verify_log`, which also recomputes every checkpoint's root and checks its
  signature), the newest checkpoint a hosted agency signed at or before the period's end, and the Merkle root
  of the log as it stood at the period's end (:class:`ledger.log.tree.PrefixRoot`, same leaves).

The log is read once, a page at a time; rows go straight to their CSV file and to a part file of the HTML,
so memory does not grow with the period. Request context (kind, subject, outcome) comes from the live
projections, caught up first. Every value is HTML-escaped; CSV cells that a spreadsheet would run as a
formula are prefixed with ``'``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select

from ledger.app import Actor
from ledger.app.checkpoints import CHECKPOINT_TOPIC, Checkpoint
from ledger.audit.report_format import Section, StaffNames, flag_list, report_sections, write_html, write_summary
from ledger.audit.report_staff import STAFF_TOPICS, StaffChanges
from ledger.audit.verify import VerifyReport, verify_log
from ledger.domain.identity import LinkRequest
from ledger.domain.types import Action
from ledger.errors import InputError, StateConflict
from ledger.files import private_dir
from ledger.log.subject_payload import ErasedPayload
from ledger.log.tree import PrefixRoot
from projections.node import NodeParts
from projections.portal import canonical_time
from projections.queues import (
    HELD_APPLICANT,
    HELD_INFO_KIND,
    HELD_PROCEDURE,
    HELD_QUERIER,
    flag_queue,
    held_queue,
)

__all__ = ["ReportResult", "audit_report"]

Progress = Callable[[int, int], None]


@dataclass
class ReportResult:
    out_dir: Path
    files: list[Path]
    rows: dict[str, int]
    verification: VerifyReport
    tree_size: int
    root_hex: str
    root_position: int
    summary: dict[str, str] = field(default_factory=dict)


def audit_report(
    node: NodeParts,
    actor: Actor,
    start: datetime,
    end: datetime,
    out_dir: Path,
    *,
    progress: Progress | None = None,
    verify_progress: Progress | None = None,
) -> ReportResult:
    """Write the report for events recorded in ``[start, end]`` into ``out_dir`` (see the module docstring)."""
    _, author = node.app.authorise(actor, Action.AUDIT)
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("--from and --to need a UTC offset")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start > end:
        raise InputError(f"--from ({start.isoformat()}) is after --to ({end.isoformat()})")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is not a directory")
    if (out_dir / "report.html").exists():
        raise StateConflict(f"{out_dir} already holds a report: choose a new directory (reports are not overwritten)")
    node.app.record_report(actor, start, end, str(out_dir))
    private_dir(out_dir)  # a report names people: 0700, its files 0600 (ledger/files.py)
    generated = datetime.now(UTC)
    node.projector.catch_up()
    verification = verify_log(node.app, progress=verify_progress)

    names = StaffNames(node)
    sections = report_sections(out_dir)
    staff = StaffChanges(out_dir, names, node.app.hosted)
    sections["staff"] = staff.section
    summary_counts: Counter[tuple[str, str, str]] = Counter()
    tree = PrefixRoot(end)
    end_label = canonical_time(end.isoformat())
    total = node.app.max_position()
    checkpoint: Checkpoint | None = None
    try:
        for position, _, env in node.app.envelopes():
            tree.add(position, env)
            if progress is not None and position % 1000 == 0:
                progress(position, total)
            h = env.header
            t = h.timestamp.astimezone(UTC)
            if h.topic == CHECKPOINT_TOPIC and h.origin in node.app.hosted and t <= end:
                cp = Checkpoint.from_event(h.origin, node.app.signed_mapper.decode(env))
                if checkpoint is None or cp.tree_size >= checkpoint.tree_size:
                    checkpoint = cp
            in_period = start <= t <= end
            topic = h.topic.split(":", 1)[1] if ":" in h.topic else h.topic
            if h.origin != actor.agency:
                # only what the auditor's own agency signed (issue 18): another agency's flags would say who
                # protects whom, and its approvals, reads, tokens and staff are its own business
                continue
            if topic in STAFF_TOPICS:  # read before the period too: later events name no staff member
                ev_ = node.app.signed_mapper.decode(env)
                staff.add(topic, ev_, h.origin, str(h.stream), canonical_time(h.time), position, in_period)
                continue
            if not in_period or topic not in _WANTED:
                continue
            at = canonical_time(h.time)
            try:
                ev: Any = node.app.signed_mapper.decode(env)
            except ErasedPayload:  # a read about a person since erased (issue 22): that it happened, not what
                sections["reads"].add([at, h.origin, "", "", ERASED, ERASED, ERASED, position])
                continue
            if topic.startswith("Protection.Flags"):
                action = {"FlagsSet": "set", "FlagsReleased": "release", "FlagsRenewed": "renew"}[topic[11:]]
                for f in ev.flags:
                    summary_counts[(ev.agency, f, action)] += 1
                sections["flags"].add(
                    [
                        at,
                        ev.agency,
                        action,
                        flag_list(ev.flags),
                        ev.subject,
                        ev.request_id,
                        getattr(ev, "reason", ""),
                        getattr(ev, "review_date", ""),
                        ev.by,
                        names(ev.agency, ev.by),
                        position,
                    ]
                )
            elif topic.startswith("FlagRequest."):
                _approval(node, sections["approvals"], names, topic, ev, h.origin, h.stream, at, position)
            elif topic.startswith("LinkRequest."):  # four eyes on a number change (issue 18): same columns
                link = node.app.find(LinkRequest, UUID(h.stream))
                if link is not None:
                    step, note = topic.split(".", 1)[1].lower(), getattr(ev, "note", None) or getattr(ev, "reason", "")
                    sections["approvals"].add(
                        [at, link.agency, h.stream, step, ev.by, names(link.agency, ev.by), note, link.kind,
                         f"{link.old} → {link.new}", "", link.requested_by, 1, position]
                    )  # fmt: skip
            elif topic == "ProvisionRequest.Held":
                _held(node, sections["held"], h.origin, h.stream, at, ev, end_label, position)
            elif topic == "TokenGrant.Issued":
                sections["tokens"].add(
                    [
                        at,
                        ev.agency,
                        ev.issuer,
                        names(ev.agency, ev.issuer),
                        ev.staff,
                        names(ev.agency, ev.staff),
                        " ".join(ev.roles),
                        ev.expires_at,
                        ev.token_id,
                        getattr(ev, "via", "administrator"),  # how the person proved who they are
                        position,
                    ]
                )
            elif topic == "ReportRecord.Generated":
                sections["reads"].add(
                    [
                        at,
                        ev.agency,
                        ev.staff,
                        names(ev.agency, ev.staff),
                        "",
                        "audit report",
                        f"period {ev.period_from} to {ev.period_to}",
                        position,
                    ]
                )
            elif topic == "DisclosureRecord.Made":  # a person's records handed out (docs/channels.md)
                what = f"{ev.channel}: {ev.shown} shown, {ev.withheld} withheld"
                why = f"asked by {ev.access}" + (f", reference {ev.reference}" if ev.reference else "")
                sections["reads"].add(
                    [at, ev.agency, ev.staff, names(ev.agency, ev.staff), ev.subject, what, why, position]
                )
            else:
                sections["reads"].add(
                    [at, ev.agency, ev.staff, names(ev.agency, ev.staff), ev.subject, ev.what, ev.purpose, position]
                )
        if progress is not None:
            progress(total, total)
        summary_section = Section(
            out_dir, "flag_summary", "Flag changes per agency", ["agency", "flag", "set", "released", "renewed"]
        )
        for agency, flag in sorted({(a, f) for a, f, _ in summary_counts}):
            summary_section.add(
                [
                    agency,
                    flag,
                    summary_counts[(agency, flag, "set")],
                    summary_counts[(agency, flag, "release")],
                    summary_counts[(agency, flag, "renew")],
                ]
            )
        summary_section.close()
    finally:
        for s in sections.values():
            s.close()
    ordered = [summary_section, *sections.values()]

    hosted = ", ".join(f"{c} {node.app.agency(c).name}" for c in sorted(node.app.hosted))
    first_bad = verification.first_bad
    meta = {
        "title": "flagledger audit report",
        "node": hosted,
        "period_from": canonical_time(start.isoformat()),
        "period_to": end_label,
        "generated_at": canonical_time(generated.isoformat()),
        "generated_by": f"{actor} ({author.name})",
        "verification": "ok" if first_bad is None else "FAILED",
        "verified_events": str(verification.events),
        "verified_streams": str(verification.streams),
        "verified_signed_batches": str(verification.batches),
        "first_bad_event": "" if first_bad is None else f"{first_bad} [{first_bad.code}]",
        "checkpoint_at_period_end": "none signed"
        if checkpoint is None
        else (f"{checkpoint.origin} tree_size {checkpoint.tree_size} at {checkpoint.time} key {checkpoint.key_id}"),
        "checkpoint_root": "" if checkpoint is None else checkpoint.root.hex(),
        "checkpoint_tree_size": "" if checkpoint is None else str(checkpoint.tree_size),
        "merkle_leaf": "SHA-256(0x00 || signed envelope header) per log position (RFC 6962)",
        "merkle_tree_size_at_period_end": str(tree.size),
        "merkle_last_position_at_period_end": str(tree.last_position),
        "merkle_root_at_period_end": tree.root().hex(),
        **{f"rows_{s.name}": str(s.rows) for s in ordered},
    }
    summary_csv = out_dir / "summary.csv"
    write_summary(summary_csv, meta)
    report = out_dir / "report.html"
    write_html(report, meta, ordered, first_bad is None)
    for s in ordered:
        s.part.unlink(missing_ok=True)
    return ReportResult(
        out_dir,
        [report, summary_csv, *(s.path for s in ordered)],
        {s.name: s.rows for s in ordered},
        verification,
        tree.size,
        tree.root().hex(),
        tree.last_position,
        meta,
    )


ERASED = "(erased)"
_WANTED = frozenset(
    {
        "Protection.FlagsSet",
        "Protection.FlagsReleased",
        "Protection.FlagsRenewed",
        "FlagRequest.Approved",
        "FlagRequest.Rejected",
        "FlagRequest.Executed",
        "LinkRequest.Approved",
        "LinkRequest.Rejected",
        "ProvisionRequest.Held",
        "AccessRecord.ProtectedDetailsRead",
        "TokenGrant.Issued",
        "ReportRecord.Generated",
        "DisclosureRecord.Made",
    }
)


def _approval(
    node: NodeParts,
    section: Section,
    names: StaffNames,
    topic: str,
    ev: Any,
    origin: str,
    stream: str,
    at: str,
    position: int,
) -> None:
    with node.engine.connect() as conn:
        req = conn.execute(select(flag_queue).where(flag_queue.c.request_id == stream)).first()
    step = topic.split(".", 1)[1].lower()
    note = "" if step == "executed" else (getattr(ev, "note", None) or getattr(ev, "reason", ""))
    agency = req.agency if req is not None else origin
    section.add(
        [
            at,
            agency,
            stream,
            step,
            ev.by,
            names(agency, ev.by),
            note,
            req.kind if req else "",
            req.subject if req else "",
            req.flags if req else "",
            req.requested_by if req else "",
            req.approvals_required if req else "",
            position,
        ]
    )


def _held(
    node: NodeParts, section: Section, origin: str, stream: str, at: str, ev: Any, end_label: str, position: int
) -> None:
    with node.engine.connect() as conn:
        r = conn.execute(select(held_queue).where(held_queue.c.request_id == stream)).first()
    if r is None:  # projections not caught up with this request: still report the hold itself
        section.add(
            [at, origin, stream, "", "", "", "", "", "", flag_list(ev.flags), "", "", "held", "", "", "", position]
        )
        return
    decided = r.decided_at is not None and r.decided_at <= end_label
    then = r.status if decided else "held (pending)"
    cipher = node.projector.cipher

    def opened(column: str, cell: str) -> str:  # the view's sealed cell; "" once the person is erased
        return cipher.open(column, cell) or ""

    section.add(
        [
            at,
            r.provider,
            stream,
            opened(HELD_QUERIER, r.querier),
            r.subject,
            r.legal_item,
            opened(HELD_PROCEDURE, r.procedure),
            opened(HELD_INFO_KIND, r.info_kind),
            r.applicant_check or opened(HELD_APPLICANT, r.applicant),
            flag_list(ev.flags),
            r.proposal or "",
            r.proposed_by or "",
            then,
            r.status,
            r.decided_by or "",
            r.decided_at or "",
            position,
        ]
    )
