"""``flagledger demo`` (the seed, end to end, on a fresh node) and read-model queries (``flagledger view``).

The demo runs real ledger commands on a fresh SQLite data directory hosting municipalities A, B and C, and
prints what the real projections return: what Y (the perpetrator) can see on Mynaportal, at A's counter, with
X's card and as X's proxy, before and after B protects X, after X moves on to C, and after release. Every
table it prints is scanned for the victim's whereabouts (B, later C); a step after protection that shows
them, or whose expected outcome does not hold, makes the command exit 1 — the demo is also a check.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import func, select

from ledger.app import Actor
from ledger.cli.main import EXTENSIONS, _date, command, out
from ledger.errors import InputError, SelfApprovalError
from ledger.log.pseudonym import check_digit
from ledger.runtime.bootstrap import AgencySpec, Node, init_node

__all__ = ["Demo", "DemoResult", "run_demo"]

A, B, C = "131016", "131024", "131032"
NAMES = {A: "A市", B: "B市", C: "C市"}
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
            [
                f"{c} ⚠{LEAK}" if m == LEAK else (f"{c} 🔒" if m == SAFE else c)
                for c, m in zip(r, ms, strict=True)
            ]
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
        out_lines += [
            "  | " + " | ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)) + " |" for r in shown
        ]
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


# -- the story ----------------------------------------------------------------------------------------------
class Demo:
    """Plays the seed on ``node`` and collects one :class:`Step` per scene."""

    def __init__(self, node: Node, emit: Callable[[Step], None] = lambda s: None) -> None:
        from projections import views

        self.node = node
        self.app = node.app
        self.views = views
        self.emit = emit
        self.steps: list[Step] = []
        self.x = self.app.subject(X_NUMBER)
        self.y = self.app.subject(Y_NUMBER)
        self.labels = {self.x: "X", self.y: "Y"}
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
    def portal_table(
        self, s: Step, title: str, viewer: str, subject: str, *, released_at: str | None = None
    ) -> Table:
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
        t = Table(
            f"{NAMES[agency]}'s work queue", ["queue", "what", "subject", "from / by", "since", "state"]
        )
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
        for who in ("apr", "apr2"):
            status = self.app.approve_request(self.who(agency, who), rid)
            s.say(f"{LETTER[agency]}/{who} approves → {status}")
        self.app.execute_request(self.who(agency, "op"), rid)
        s.say(f"{LETTER[agency]}/op (designated operator) executes the request")

    # the scenes
    def run(self) -> list[Step]:
        self.setup()
        self.case1_unprotected()
        self.case2_unprotected()
        self.misuse_unprotected()
        self.intake_and_flags()
        self.case1_protected()
        self.case2_protected()
        self.card_misuse()
        self.proxy_misuse()
        self.move_to_c()
        self.release()
        self.audit()
        return self.steps

    def setup(self) -> None:
        s = self.step(
            "Set-up: one node hosting A, B, C; X and Y are spouses in A; Y is X's registered proxy", False
        )
        for code in (A, B, C):
            admin = self.who(code, "admin")
            for who, roles in CAST.items():
                self.app.enroll_staff(admin, who, who, roles)
        self.app.enroll_staff(self.who(B, "admin"), "chief", "chief", ["requester", "approver"])
        self.app.set_approval_policy(self.who(B, "admin"), 2)
        self.app.register_proxy(self.who(A, "req"), self.x, self.y)
        s.say(
            "staff at each agency: req, apr, apr2, op, counter, rev, aud (roles by name)",
            "B also has a section chief who may both request and approve",
            "B requires two approvals (approval chain, Point 2)",
            "A registers Y as X's Mynaportal proxy (they are still a couple)",
            "X flees from A to B.",
        )
        self.done(s)

    def case1_unprotected(self) -> None:
        s = self.step("Case 1 without flags: X applies at B; B queries A about Y", False)
        self.app.request_provision(
            self.who(B, "counter"),
            A,
            self.y,
            legal_item=74,
            procedure="児童手当",
            info_kind="地方税関係情報",
            applicant="unknown",
        )
        s.say("B's counter queries A for Y's local-tax information (別表第二 item 74, 児童手当)")
        self.secret = {B}
        self.portal_table(s, "Y's Mynaportal: provision records about Y", self.y, self.y)
        s.say("→ Y reads 'B queried A about me' and learns where X is.")
        self.done(s)

    def case2_unprotected(self) -> None:
        s = self.step("Case 2 without flags: X files her tax return at B; A queries B about X for Y", False)
        self.app.request_provision(
            self.who(A, "counter"),
            B,
            self.x,
            legal_item=74,
            procedure="児童手当(Yの申請)",
            info_kind="地方税関係情報",
        )
        s.say("Y applies at A; A's counter queries B for X's local-tax information; answered at once")
        self.counter_table(s, A, self.x)
        s.say("→ Y asks A's counter about the result and learns B.")
        self.done(s)

    def misuse_unprotected(self) -> None:
        s = self.step("Card and proxy misuse without flags: Y reads X's Mynaportal", False)
        self.portal_table(s, "X's provision records, opened with the card X left behind", self.x, self.x)
        self.self_info_table(s, "X's self-information (自己情報), same card", self.x, self.x)
        self.portal_table(s, "X's provision records, Y logged in as X's proxy", self.y, self.x)
        self.done(s)

    def intake_and_flags(self) -> None:
        s = self.step("Intake, approvals and flag setting at B", False)
        case = self.app.open_case(
            self.who(B, "req"),
            self.x,
            perpetrators=[self.y],
            reason="dv",
            checklist={
                "flag_restrictions_explained": True,
                "resident_record_move_recommended": True,
                "number_change_recommended": True,
                "proxy_cancellation_advised": True,
            },
            proxies_to_cancel=[self.y],
            notes="consultation; spouse Y lives in A",
        )
        s.say("B opens a protection case: victim X, perpetrator Y; restrictions explained (Point 1)")
        r_y = self.app.request_flags(self.who(B, "req"), self.y, [ND], case_id=case)
        r_x = self.app.request_flags(self.who(B, "chief"), self.x, [NAR, ND], case_id=case)
        s.say(
            "B/req requests NON_DISCLOSURE on Y (case 1); B/chief requests NO_AUTO_RESPONSE + "
            "NON_DISCLOSURE on X"
        )
        q = self.queue_table(s, B)
        s.expect(len(q.approvals) == 2, "B's queue lists both requests awaiting approval")
        try:
            self.app.approve_request(self.who(B, "chief"), r_x)
            s.expect(False, "the requester could approve their own request")
        except SelfApprovalError as exc:
            s.say(f"B/chief tries to approve the request they made → refused: {exc}")
        for rid in (r_y, r_x):
            self.approve_and_execute(s, B, rid)
        rows = self.flags_table(s, B)
        s.expect(
            {(r.subject, r.flag) for r in rows if r.active} == {(self.y, ND), (self.x, ND), (self.x, NAR)},
            "B holds NON_DISCLOSURE on Y and both flags on X",
        )
        self.done(s)

    def case1_protected(self) -> None:
        s = self.step("Case 1 with flags: B queries A about Y again", True)
        self.app.request_provision(
            self.who(B, "counter"), A, self.y, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        t = self.portal_table(s, "Y's Mynaportal: provision records about Y", self.y, self.y)
        s.expect(not t.rows, "no record about Y is shown, old or new")
        self.done(s)

    def case2_protected(self) -> None:
        s = self.step("Case 2 with flags: A queries B about X; the request is held", True)
        ans = self.app.request_provision(
            self.who(A, "counter"),
            B,
            self.x,
            legal_item=74,
            procedure="児童手当(Yの申請)",
            info_kind="地方税関係情報",
            applicant="unknown",
        )
        s.expect(ans.status == "in_progress", "A's query about X is held, answered like any manual answer")
        cv = self.counter_table(s, A, self.x)
        s.expect(
            cv.protection.protected and cv.protection.holders is None,
            "A's counter sees that X is protected, not who protects her",
        )
        q = self.queue_table(s, B)
        held = [h for h in q.held if h.subject == self.x]
        s.expect(len(held) == 1 and held[0].querier == A, "B's queue holds A's request")
        if held:
            rid = held[0].request_id
            from uuid import UUID

            self.app.propose_decision(
                self.who(B, "rev"),
                UUID(rid),
                "refuse",
                "known_perpetrator",
                "A confirms the applicant is Y (Point 5)",
            )
            # the approver approves the proposal the queue shows (by its version), nothing proposed later
            shown = self.views.work_queue(self.node, self.who(B, "apr"))
            version = next(h.proposal_version for h in shown.held if h.request_id == rid)
            assert version is not None
            self.app.approve_decision(self.who(B, "apr"), UUID(rid), version)
            s.say(
                "B/rev confirms with A: the applicant is the known perpetrator → propose refuse; "
                "B/apr approves"
            )
        cv = self.counter_table(s, A, self.x)
        s.expect(any(a.status == "not_provided" for a in cv.answers), "the held request ends refused")
        self.done(s)

    def card_misuse(self) -> None:
        s = self.step("Card misuse with flags: Y logs in with X's card", True)
        t = self.portal_table(s, "X's provision records (X's card)", self.x, self.x)
        s.expect(not t.rows, "no record about X is shown")
        si = self.self_info_table(s, "X's self-information (X's card)", self.x, self.x)
        s.expect(len(si.rows) == 1 and si.marks[0][0] == SAFE, "self-information is withheld")
        self.done(s)

    def proxy_misuse(self) -> None:
        s = self.step("Proxy misuse with flags: Y uses the proxy function, then the proxy is cancelled", True)
        t = self.portal_table(s, "X's provision records, Y as (still registered) proxy", self.y, self.x)
        s.expect(not t.rows, "the proxy sees exactly what X sees: nothing")
        self.app.cancel_proxy(self.who(B, "req"), self.x, self.y, "intake advice (Point 1)")
        s.say("B cancels Y's proxy registration, as advised at intake")
        view = self.views.portal_records(self.node, self.y, self.x)
        t2 = self.portal_table(s, "X's provision records, Y after the cancellation", self.y, self.x)
        s.expect(view.access == "none" and not t2.rows, "a cancelled proxy sees nothing")
        si = self.self_info_table(s, "X's self-information, Y after the cancellation", self.y, self.x)
        s.expect(not si.rows, "a cancelled proxy sees no self-information")
        self.done(s)

    def move_to_c(self) -> None:
        s = self.step("X moves on to C: protection holds at C with no flag set there", True)
        self.secret = {B, C}
        s.say("X moves to C and files her tax return there; nobody at C sets a flag")
        ans = self.app.request_provision(
            self.who(A, "counter"),
            C,
            self.x,
            legal_item=74,
            procedure="児童手当(Yの申請)",
            info_kind="地方税関係情報",
        )
        s.expect(ans.status == "in_progress", "A's query to C about X is held (nationwide NO_AUTO_RESPONSE)")
        self.app.request_provision(
            self.who(C, "counter"), A, self.y, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        s.say("case 2 at C: A queries C about X (held); case 1 at C: C queries A about Y")
        t = self.portal_table(s, "Y's Mynaportal: provision records about Y", self.y, self.y)
        s.expect(not t.rows, "Y sees no record mentioning C")
        self.counter_table(s, A, self.x)
        cv = self.views.nationwide_view(self.node, self.who(C, "counter"), self.x)
        t2 = Table(
            "C's counter screen: nationwide protection of X",
            ["protected", "flags", "liaison ref", "holding agency"],
        )
        t2.add(
            "yes" if cv.protected else "no",
            ", ".join(cv.flags),
            ", ".join(cv.liaison),
            "(not shown)" if cv.holders is None else ", ".join(cv.holders),
            marks=["", "", "", SAFE if cv.holders is None else ""],
        )
        self.scan(s, t2, [["", "", "", ",".join(cv.holders or ())]], {B})
        s.show(t2)
        s.expect(cv.protected and set(cv.flags) == {ND, NAR}, "C's staff see X protected with both flags")
        rows = self.flags_table(s, C)
        s.expect(not rows, "C holds no flag of its own")
        q = self.queue_table(s, C)
        s.expect(any(h.subject == self.x and h.querier == A for h in q.held), "C's queue holds A's request")
        if cv.liaison:
            target = self.views.resolve_liaison(self.node, self.who(B, "rev"), cv.liaison[0],
                                                purpose="C asks B to contact the protected person")
            s.say(
                f"C contacts the protecting side through {cv.liaison[0]}; B's contact point resolves "
                f"it to {self.person(target.subject)} ({', '.join(target.flags)})"
            )
            s.expect(target.subject == self.x, "the liaison reference leads B to X")
        self.done(s)

    def release(self) -> None:
        s = self.step("Release at the end: approvals, then old records stay hidden", True)
        for subject, flags in ((self.x, [NAR, ND]), (self.y, [ND])):
            rid = self.app.request_flags(
                self.who(B, "req"),
                subject,
                flags,
                kind="release",
                explanation="explained which restrictions are lifted (Point 6)",
            )
            s.say(f"B/req requests release of {'+'.join(flags)} on {self.person(subject)}")
            self.approve_and_execute(s, B, rid)
        rows = self.flags_table(s, B)
        s.expect(not any(r.active for r in rows), "B holds no active flag any more")
        nv = self.views.nationwide_view(self.node, self.who(A, "counter"), self.x)
        s.expect(not nv.protected, "X is released nationwide (no agency holds a flag)")
        released_at = max(h.at for r in rows for h in r.history)
        self.app.request_provision(
            self.who(C, "counter"), A, self.y, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        s.say("after release, C queries A about Y once more")
        t = self.portal_table(s, "Y's Mynaportal after release", self.y, self.y, released_at=released_at)
        s.expect(len(t.rows) == 1, "only the record created after release is shown")
        t.note += " — records up to the release stay hidden (sticky); newer ones are shown"
        t2 = self.portal_table(
            s, "X's provision records after release (X's card)", self.x, self.x, released_at=released_at
        )
        s.expect(not t2.rows, "X's records from before the release stay hidden")
        self.done(s)

    def audit(self) -> None:
        s = self.step("Auditor at B: X's timeline (every event, actor and approval)", False)
        entries = self.views.subject_timeline(self.node, self.who(B, "aud"), self.x, "demo: yearly audit")
        t = Table("subject timeline of X", ["#", "event", "agency", "actor"])
        for e in entries:
            t.add(str(e.position), e.event, self.agency(e.agency), e.actor or "—")
        s.show(t)
        s.expect(any(e.event == "FlagRequest.Approved" for e in entries), "approvals are on the timeline")
        self.done(s)


def print_step(step: Step, stream: TextIO = sys.stdout) -> None:
    tag = "  [after protection: checked]" if step.protected else ""
    print(f"\n== Step {step.number}. {step.title}{tag}", file=stream)
    for item in step.items:
        print(item.render() if isinstance(item, Table) else f"   · {item}", file=stream)
    for leak in step.leaks:
        verdict = "LEAK (fails the demo)" if step.protected else "leak (expected: not protected yet)"
        print(f"   ⚠ {verdict}: {leak}", file=stream)
    for f in step.failed:
        print(f"   ✗ expected, but did not hold: {f}", file=stream)
    if step.protected and not step.leaks and not step.failed:
        print("   ✓ no view Y can reach names B or C", file=stream)


@contextmanager
def _demo_environment() -> Iterator[None]:
    """The demo always runs on embedded SQLite with its own secrets: never on a deployment's database or keys
    that FLAGLEDGER_* variables may point at."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("FLAGLEDGER_")}
    try:
        yield
    finally:
        os.environ.update(saved)


def run_demo(data_dir: Path, emit: Callable[[Step], None] = print_step) -> DemoResult:
    started = time.perf_counter()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise InputError(f"{data_dir} is not empty: the demo needs a fresh data directory")
    with _demo_environment():
        return _play(data_dir, emit, started)


def _play(data_dir: Path, emit: Callable[[Step], None], started: float) -> DemoResult:
    node = init_node(
        data_dir,
        [
            AgencySpec(A, "A市", "municipality"),
            AgencySpec(B, "B市", "municipality"),
            AgencySpec(C, "C市", "municipality"),
        ],
    )
    try:
        steps = Demo(node, emit).run()
    finally:
        node.close()
    return DemoResult(steps, data_dir, time.perf_counter() - started)


@command("demo")
def _demo(args: argparse.Namespace) -> int:
    data_dir = Path(args.demo_dir) if args.demo_dir else Path(tempfile.mkdtemp(prefix="flagledger-demo-"))
    print(f"flagledger demo — the seed, end to end, in {data_dir}")
    print(
        f"X (victim) = {X_NUMBER}, Y (perpetrator) = {Y_NUMBER} (fictitious numbers; the ledger stores "
        "only pseudonyms)"
    )
    result = run_demo(data_dir)
    late = [s for s in result.steps if s.protected and s.leaks]
    failed = [s for s in result.steps if s.failed]
    print(f"\n{len(result.steps)} steps in {result.seconds:.1f} s; data directory kept at {data_dir}")
    if result.ok:
        print(
            "OK: before protection Y learned B; after protection no view Y can reach named B or C, "
            "and every expected outcome held."
        )
        return 0
    print(
        f"FAILED: {len(late)} step(s) leaked after protection, {len(failed)} step(s) missed an expected "
        "outcome (see ⚠/✗ above).",
        file=sys.stderr,
    )
    return 1


# -- `flagledger view …`: read-model queries ----------------------------------------------------------------
def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _view_node(args: argparse.Namespace) -> Node:
    from ledger.runtime.bootstrap import open_node

    node = open_node(Path(args.data_dir))
    args._node = node
    return node


@command("view portal")
def _view_portal(args: argparse.Namespace) -> int:
    from projections.views import portal_records

    out(_json(portal_records(_view_node(args), args.viewer, args.subject)))
    return 0


@command("view self-info")
def _view_self(args: argparse.Namespace) -> int:
    from projections.views import self_information

    out(_json(self_information(_view_node(args), args.viewer, args.subject)))
    return 0


@command("view nationwide")
def _view_nationwide(args: argparse.Namespace) -> int:
    from projections.views import nationwide_view

    out(_json(nationwide_view(_view_node(args), args.actor, args.subject, purpose=args.purpose)))
    return 0


@command("view counter")
def _view_counter(args: argparse.Namespace) -> int:
    from projections.views import counter_view

    out(_json(counter_view(_view_node(args), args.actor, args.subject)))
    return 0


@command("view flags")
def _view_flags(args: argparse.Namespace) -> int:
    from projections.views import agency_flag_state

    for row in agency_flag_state(_view_node(args), args.actor, args.subject):
        out(_json(row))
    return 0


@command("view queue")
def _view_queue(args: argparse.Namespace) -> int:
    from projections.views import work_queue

    out(_json(work_queue(_view_node(args), args.actor, args.today)))
    return 0


@command("view timeline")
def _view_timeline(args: argparse.Namespace) -> int:
    from projections.views import subject_timeline

    for entry in subject_timeline(_view_node(args), args.actor, args.subject, args.purpose):
        out(_json(entry))
    return 0


@command("view liaison")
def _view_liaison(args: argparse.Namespace) -> int:
    from projections.views import resolve_liaison

    # recorded (an AccessRecord) before it is printed, as the API's /queries/liaison
    out(_json(resolve_liaison(_view_node(args), args.actor, args.token, purpose=args.purpose)))
    return 0


@command("view positions")
def _view_positions(args: argparse.Namespace) -> int:
    node = _view_node(args)
    head = node.app.max_position()
    for name, pos in sorted(node.projector.positions().items()):
        out({"projection": name, "position": pos, "log_head": head, "behind": max(head - pos, 0)})
    return 0


def _extend(
    groups: Any, sub: Callable[..., argparse.ArgumentParser], actor: Callable[[argparse.ArgumentParser], None]
) -> None:
    d = groups.add_parser(
        "demo", help="play the seed scenario end to end on a fresh SQLite node (exit 1 on a leak)"
    )
    d.add_argument(
        "--data-dir",
        dest="demo_dir",
        default=None,
        help="an empty directory to keep the demo's node in (default: a new temporary directory)",
    )
    d.set_defaults(cmd="demo")

    g = sub(groups, "view", "read-model queries (portal, counter, queues, flags, timeline)").add_subparsers(
        dest="sub", required=True
    )
    for name, help_ in (
        ("portal", "Mynaportal provision records as a viewer sees them"),
        ("self-info", "Mynaportal self-information as a viewer sees it"),
    ):
        s = sub(g, name, help_)
        s.add_argument("--viewer", required=True, help="number or pseudonym whose credentials log in")
        s.add_argument("--subject", required=True, help="whose records are displayed")
        s.set_defaults(cmd=f"view {name}")
    s = sub(g, "nationwide", "is a person protected anywhere (role-filtered)")
    actor(s)
    s.add_argument("--subject", required=True)
    s.add_argument(
        "--purpose", default=None, help="with view_protected: show the holding agencies (recorded)"
    )
    s.set_defaults(cmd="view nationwide")
    s = sub(g, "counter", "what the counter may tell about this agency's queries on a person")
    actor(s)
    s.add_argument("--subject", required=True)
    s.set_defaults(cmd="view counter")
    s = sub(g, "flags", "flags held by the actor's agency, with history")
    actor(s)
    s.add_argument("--subject", default=None)
    s.set_defaults(cmd="view flags")
    s = sub(g, "queue", "approvals, held requests, reviews due, protection-body requests")
    actor(s)
    s.add_argument("--today", type=_date, default=None)
    s.set_defaults(cmd="view queue")
    s = sub(g, "timeline", "every event about a person (auditors; the read is recorded)")
    actor(s)
    s.add_argument("--subject", required=True)
    s.add_argument("--purpose", required=True)
    s.set_defaults(cmd="view timeline")
    s = sub(g, "liaison", "resolve a liaison reference to your agency's holding (the read is recorded)")
    actor(s)
    s.add_argument("token")
    s.add_argument("--purpose", required=True, help="why the protected person is looked up (recorded)")
    s.set_defaults(cmd="view liaison")
    sub(g, "positions", "each projection's position against the log head").set_defaults(cmd="view positions")


EXTENSIONS.append(_extend)
