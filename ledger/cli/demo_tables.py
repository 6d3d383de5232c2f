"""The demo's cast, its tables and what each reader sees, as tables (``flagledger demo``; the scenes are in
``ledger.cli.demo_story``).

Every table is scanned for the victim's whereabouts: :meth:`DemoViews.scan` marks a cell that names a secret
agency, and the step records the leak.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ledger.app import Actor
from ledger.log.pseudonym import check_digit
from ledger.runtime.bootstrap import Node

A, B, C = "131016", "131024", "131032"
D = "JPS-D"  # a pension office (年金事務所) of a national agency: the hub demo's querier where Y applies
NAMES = {A: "A市", B: "B市", C: "C市", D: "D年金事務所"}
LETTER = {A: "A", B: "B", C: "C"}
CAST = {
    "req": ["requester"],
    "apr": ["approver"],
    "apr2": ["approver"],
    "op": ["operator"],
    "counter": ["counter"],
    "rev": ["reviewer"],
    "aud": ["auditor"],
}
ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
LEAK, SAFE = "LEAK", "protected"


def _number(first11: str) -> str:
    return first11 + str(check_digit(first11))


X_NUMBER = _number("12345678901")  # the victim (fictitious, valid check digit)
Y_NUMBER = _number("98765432109")  # the perpetrator
K_NUMBER = _number("11235813213")  # X's child, who fled with her (a companion, 同伴者)


# -- output -------------------------------------------------------------------------------------------------
def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


@dataclass
class Table:
    title: str
    columns: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    marks: list[list[str]] = field(default_factory=list)
    note: str = ""

    def add(self, *cells: str, marks: Sequence[str] = ()) -> None:
        self.rows.append([str(c) for c in cells])
        self.marks.append(list(marks) or [""] * len(cells))

    def render(self) -> str:
        shown = [
            [f"{c} ⚠{LEAK}" if m == LEAK else (f"{c} 🔒" if m == SAFE else c) for c, m in zip(r, ms, strict=True)]
            for r, ms in zip(self.rows, self.marks, strict=True)
        ]
        widths = [max([_width(h)] + [_width(r[i]) for r in shown]) for i, h in enumerate(self.columns)]
        line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        out_lines = [
            f"  {self.title}",
            "  " + line,
            "  | " + " | ".join(_pad(h, w) for h, w in zip(self.columns, widths, strict=True)) + " |",
            "  " + line,
        ]
        if not shown:
            out_lines.append("  | " + _pad("(nothing shown)", sum(widths) + 3 * (len(widths) - 1)) + " |")
        out_lines += ["  | " + " | ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)) + " |" for r in shown]
        out_lines.append("  " + line)
        if self.note:
            out_lines.append(f"  {self.note}")
        return "\n".join(out_lines)


@dataclass
class Step:
    number: int
    title: str
    protected: bool  # after protection: a leak here fails the demo
    items: list[str | Table] = field(default_factory=list)  # what happened and what was seen, in order
    leaks: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def say(self, *lines: str) -> None:
        self.items.extend(lines)

    def show(self, *tables: Table) -> None:
        self.items.extend(tables)

    @property
    def tables(self) -> list[Table]:
        return [t for t in self.items if isinstance(t, Table)]

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.failed.append(what)


@dataclass
class DemoResult:
    steps: list[Step]
    data_dir: Path
    seconds: float

    @property
    def ok(self) -> bool:
        return not any((s.leaks and s.protected) or s.failed for s in self.steps)


# -- what each reader sees, as tables --------------------------------------------------------------------------
class DemoViews:
    """The views the demo shows, each as a :class:`Table` scanned for leaks; the scenes are in ``Demo``."""

    def __init__(self, node: Node, emit: Callable[[Step], None] = lambda s: None) -> None:
        from projections import views

        self.node = node
        self.app = node.app
        self.views = views
        self.emit = emit
        self.steps: list[Step] = []
        self.x = self.app.subject(X_NUMBER)
        self.y = self.app.subject(Y_NUMBER)
        self.k = self.app.subject(K_NUMBER)
        self.labels = {self.x: "X", self.y: "Y", self.k: "K"}
        self.secret: set[str] = set()  # the victim's whereabouts, once she is protected

    # helpers
    def who(self, agency: str, staff: str) -> Actor:
        return Actor(agency, staff)

    def agency(self, code: str | None) -> str:
        return f"{NAMES.get(code, code)} ({code})" if code else "—"

    def person(self, pseudonym: str) -> str:
        return self.labels.get(pseudonym, pseudonym[:9] + "…")

    def scan(self, step: Step, table: Table, raw: Sequence[Sequence[str]], secret: Iterable[str]) -> None:
        """Mark every cell (by its raw value) that names a secret agency, and record the leak."""
        names = {s for code in secret for s in (code, NAMES.get(code, code))}
        for r, row in enumerate(raw):
            for c, value in enumerate(row):
                if value and any(n in value for n in names):
                    table.marks[r][c] = LEAK
                    step.leaks.append(f"{table.title}: {table.columns[c]} = {table.rows[r][c]}")

    def step(self, title: str, protected: bool) -> Step:
        s = Step(len(self.steps) + 1, title, protected)
        self.steps.append(s)
        return s

    def done(self, s: Step) -> None:
        self.emit(s)

    def ledger_count(self, subject: str) -> int:
        from projections.portal import portal_records

        with self.node.engine.connect() as conn:
            subs = self.views.aliases(conn, subject)
            return int(
                conn.execute(
                    select(func.count()).select_from(portal_records).where(portal_records.c.subject.in_(subs))
                ).scalar_one()
            )

    # views as tables
    def portal_table(self, s: Step, title: str, viewer: str, subject: str, *, released_at: str | None = None) -> Table:
        view = self.views.portal_records(self.node, viewer, subject)
        t = Table(
            title,
            ["created", "querier 照会機関", "provider 提供機関", "procedure", "item", "info", "outcome"],
        )
        raw = []
        for r in view.records:
            t.add(
                r.created_at[11:19],
                self.agency(r.querier),
                self.agency(r.provider),
                r.procedure,
                str(r.legal_item),
                r.info_kind,
                r.outcome,
            )
            raw.append(["", r.querier, r.provider, "", "", "", ""] if released_at is None else [""] * 7)
            if released_at is not None and r.created_at < released_at:
                # after release, any record from before it breaks the sticky rule, whoever it names
                t.marks[-1][0] = LEAK
                s.leaks.append(f"{title}: a record from before the release is shown ({r.created_at})")
        self.scan(s, t, raw, self.secret)
        total = self.ledger_count(subject)
        t.note = (
            f"access: {view.access}; the ledger holds {total} record(s) about {self.person(subject)}, "
            f"{len(view.records)} shown"
        )
        s.show(t)
        return t

    def self_info_table(self, s: Step, title: str, viewer: str, subject: str) -> Table:
        view = self.views.self_information(self.node, viewer, subject)
        t = Table(title, ["held by", "information", "since"])
        if view.withheld:
            t.add(self.views.SelfInfoView.MESSAGE, "", "", marks=[SAFE, "", ""])
        raw = []
        for h in view.holdings:
            t.add(self.agency(h.agency), h.info_kind, h.since[11:19])
            raw.append([h.agency, "", ""])
        self.scan(s, t, raw, self.secret)
        t.note = f"access: {view.access}; withheld (NO_AUTO_RESPONSE): {view.withheld}"
        s.show(t)
        return t

    def counter_table(self, s: Step, at: str, subject: str) -> Any:
        cv = self.views.counter_view(self.node, self.who(at, "counter"), subject)
        p = cv.protection
        t = Table(
            f"{NAMES[at]}'s counter, asked about {self.person(subject)}'s results",
            ["asked", "procedure", "status", "message", "provider 提供機関"],
        )
        raw = []
        for a in cv.answers:
            t.add(
                a.asked_at[11:19],
                a.procedure,
                a.status,
                a.message,
                self.agency(a.provider),
                marks=["", "", "", "", SAFE if a.provider is None and p.protected else ""],
            )
            raw.append(["", "", "", a.message, a.provider or ""])
        self.scan(s, t, raw, self.secret)
        notice = Table(
            f"{NAMES[at]}'s counter screen: nationwide protection of {self.person(subject)}",
            ["protected", "flags", "liaison ref", "holding agency"],
        )
        notice.add(
            "yes" if p.protected else "no",
            ", ".join(p.flags) or "—",
            ", ".join(p.liaison) or "—",
            ", ".join(p.holders) if p.holders is not None else "(not shown)",
            marks=["", "", "", SAFE if p.holders is None and p.protected else ""],
        )
        if p.protected:
            notice.note = cv.NOTICE
        self.scan(s, notice, [["", "", "", ",".join(p.holders or ())]], self.secret)
        s.show(notice, t)
        return cv

    def queue_table(self, s: Step, agency: str) -> Any:
        q = self.views.work_queue(self.node, self.who(agency, "apr"))
        t = Table(f"{NAMES[agency]}'s work queue", ["queue", "what", "subject", "from / by", "since", "state"])
        for a in q.approvals:
            t.add(
                "approval",
                f"{a.kind} {'+'.join(a.flags)}",
                self.person(a.subject),
                a.requested_by,
                a.requested_at[11:19],
                f"{a.status} ({len(a.approvals)}/{a.approvals_required} approvals)",
            )
        for h in q.held:
            t.add(
                "held request",
                f"{h.procedure} / {h.info_kind}",
                self.person(h.subject),
                self.agency(h.querier),
                h.received_at[11:19],
                f"applicant: {h.applicant}; proposal: {h.proposal or '—'}",
            )
        for d in q.reviews_due:
            t.add("review due", d.flag, self.person(d.subject), "", d.review_date, f"{d.days_left} days left")
        for b in q.body_requests:
            t.add(
                "body request",
                "+".join(b.flags),
                self.person(b.subject),
                self.agency(b.body),
                b.sent_at[11:19],
                b.outcome or "undecided",
            )
        for n in q.probes:
            t.add(
                "probe notice",
                f"{n.procedure} (item {n.legal_item})",
                self.person(n.subject),
                self.agency(n.querier),
                n.at[11:19],
                f"asked {self.agency(n.provider)}",
            )
        s.show(t)
        return q

    def flags_table(self, s: Step, agency: str) -> list[Any]:
        rows = self.views.agency_flag_state(self.node, self.who(agency, "apr"))
        t = Table(
            f"flags held by {NAMES[agency]} (per-municipality state)",
            ["subject", "flag", "active", "since", "review", "history"],
        )
        for r in rows:
            t.add(
                self.person(r.subject),
                r.flag,
                "yes" if r.active else "no",
                r.since[11:19],
                r.review_date or "—",
                " → ".join(h.action for h in r.history),
            )
        s.show(t)
        return rows

    def approve_and_execute(self, s: Step, agency: str, rid: Any) -> None:
        # (B's chief approves too where a release would leave nobody holding: one approval more, docs/year.md)
        for who in ("apr", "apr2", "chief"):
            status = self.app.approve_request(self.who(agency, who), rid)
            s.say(f"{LETTER[agency]}/{who} approves → {status}")
            if status == "approved":
                break
        self.app.execute_request(self.who(agency, "op"), rid)
        s.say(f"{LETTER[agency]}/op (designated operator) executes the request")
