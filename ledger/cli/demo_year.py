"""The one-node demo's scenes from a protected person's year (issue 21, docs/year.md): X's child K attached to
X's case as a companion and held like X, and X's move to C handed over — C takes over through its own chain,
told what to take over but not who held it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.cli.demo_tables import NAMES, NAR, ND, SAFE, A, B, C, DemoViews, Step, Table


class YearScenes(DemoViews):
    case: UUID  # X's protection case at B (opened at intake)

    def companion(self) -> None:
        s = self.step("Companion: X's child K, attached to X's case, is held like X", True)
        rid = self.app.propose_companion(self.who(B, "req"), self.case, self.k, relation="child")
        s.say("B/req lists K (X's child, who fled with her) on X's case, with a request for the flags X holds at B")
        self.approve_and_execute(s, B, rid)
        s.say("the attachment is the request: approved by others, executed by the operator (nothing protects K before)")
        listed = self.app.companions(self.who(B, "req"), self.case)
        s.expect([c["subject"] for c in listed] == [self.k], "K is X's case's companion")
        ans = self.app.request_provision(
            self.who(A, "counter"), B, self.k, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        )
        s.say("Y applies for K's child allowance at A; A's counter queries B about K")
        s.expect(ans.status == "in_progress", "A's query about K is held, like one about X")
        q = self.queue_table(s, B)
        s.expect(any(h.subject == self.k and h.querier == A for h in q.held), "B's queue holds A's request about K")
        t = self.portal_table(s, "K's provision records, Y as K's parent (K's card)", self.k, self.k)
        s.expect(not t.rows, "no record about K is shown")
        self.done(s)

    def handover(self) -> None:
        s = self.step("Handover: X's move to C is recorded; C takes over through its own chain", True)
        moved_on = self.app.clock().date()
        self.app.record_move(self.who(C, "req"), self.x, to_agency=C, moved_on=moved_on)
        s.say(f"C/req records X's move in (転入, {moved_on}); the move is shared because X is protected somewhere")
        before = self.handover_table(s, "C's year queue: handovers (before)")
        s.expect(
            [(h["subject"], h["flags_to_take_over"]) for h in before] == [(self.x, sorted([NAR, ND]))],
            "C is asked to take over both of X's flags",
        )
        rid = self.app.request_flags(self.who(C, "req"), self.x, [NAR, ND])
        s.say("C/req requests NO_AUTO_RESPONSE + NON_DISCLOSURE on X: C's own request, C's own approvers")
        self.approve_and_execute(s, C, rid)
        after = self.handover_table(s, "C's year queue: handovers (after)")
        s.expect(not after, "the handover leaves C's queue once C holds every flag")
        rows = self.flags_table(s, C)
        s.expect({(r.subject, r.flag) for r in rows if r.active} == {(self.x, ND), (self.x, NAR)}, "C holds both flags")
        cv = self.views.nationwide_view(self.node, self.who(A, "counter"), self.x)
        s.expect(cv.protected and cv.holders is None, "A's counter sees X protected, not by whom")
        self.done(s)

    def handover_table(self, s: Step, title: str) -> list[dict[str, Any]]:
        items = self.app.handovers_for(C)
        t = Table(title, ["subject", "moved on", "flags to take over", "protected until now by"])
        for h in items:
            t.add(self.person(h["subject"]), str(h["moved_on"]), ", ".join(h["flags_to_take_over"]), "(not shown)",
                  marks=["", "", "", SAFE])  # fmt: skip
        s.show(t)
        return items

    def release_all(self, s: Step) -> list[Any]:
        """Every holder lets go: B (X, Y and the companion K, whose flags do not follow X's), then C; the last
        holder of each flag needs one approval more (docs/year.md)."""
        for agency, subject, flags in (
            (B, self.x, [NAR, ND]),
            (B, self.y, [ND]),
            (B, self.k, [NAR, ND]),
            (C, self.x, [NAR, ND]),
        ):
            rid = self.app.request_flags(
                self.who(agency, "req"),
                subject,
                flags,
                kind="release",
                explanation="explained which restrictions are lifted (Point 6)",
            )
            s.say(f"{NAMES[agency][0]}/req requests release of {'+'.join(flags)} on {self.person(subject)}")
            self.approve_and_execute(s, agency, rid)
        rows = self.flags_table(s, B) + self.flags_table(s, C)
        s.expect(not any(r.active for r in rows), "neither B nor C holds an active flag any more")
        return rows
