"""The demo's scenes: the seed, played on a fresh node hosting municipalities A, B and C (``flagledger demo``).

X (the victim) flees Y (the perpetrator) from A to B, is protected there, moves on to C, and is released at
the end; each scene records what Y can see and what was expected to hold.
"""

from __future__ import annotations

from ledger.app import Actor
from ledger.app.answers import run_batches
from ledger.cli.demo_tables import (
    CAST,
    NAR,
    ND,
    SAFE,
    A,
    B,
    C,
    Step,
    Table,
)
from ledger.cli.demo_year import YearScenes
from ledger.cli.session import SESSION_TTL, open_session
from ledger.errors import SelfApprovalError


def demo_password(agency: str, who: str) -> str:
    """The demo cast's passwords, so that its data directory can be explored afterwards (a demo only: a
    person chooses their own, `flagledger staff activate`)."""
    return f"demo-password-{agency}-{who}"


class Demo(YearScenes):
    """Plays the seed on ``node`` and collects one :class:`Step` per scene."""

    # the scenes
    def run(self) -> list[Step]:
        self.setup()
        self.case1_unprotected()
        self.case2_unprotected()
        self.misuse_unprotected()
        self.intake_and_flags()
        self.case1_protected()
        self.case2_protected()
        self.companion()
        self.card_misuse()
        self.proxy_misuse()
        self.move_to_c()
        self.handover()
        self.release()
        self.audit()
        return self.steps

    def enrol(self, admin: Actor, who: str, roles: list[str]) -> None:
        """Enrol ``who`` as a person is: the administrator's signed one-time code, activated with a password;
        then they sign in."""
        self.app.enroll_staff(admin, who, who, roles)
        code = self.app.issue_enrolment_code(admin, who)
        self.app.activate_credential(admin.agency, who, code, demo_password(admin.agency, who))
        self.sign_in(admin.agency, who)

    def sign_in(self, agency: str, who: str) -> None:
        """``who`` signs in as on the command line (``flagledger login``: their password, recorded, their
        staff key opened for the session; ledger/cli/session.py); the demo keeps no session file."""
        self.app.lock(agency, who)  # (activation left it open: from here on it is the sign-in that opens it)
        open_session(self.node, Actor(agency, who), demo_password(agency, who), code=None, ttl=SESSION_TTL)

    def setup(self) -> None:
        s = self.step("Set-up: one node hosting A, B, C; X and Y are spouses in A; Y is X's registered proxy", False)
        for code in (A, B, C):
            admin = self.who(code, "admin")
            # the first administrator activates the code set-up printed; each person then activates their own
            # code with a password of their own (generated here), which unlocks their staff key in this process
            self.app.activate_credential(code, "admin", self.app.first_codes.pop(code), demo_password(code, "admin"))
            self.sign_in(code, "admin")
            # the second administrator, enrolled at set-up, activates a code the first one issues and signs in
            self.app.activate_credential(
                code, "admin2", self.app.issue_enrolment_code(admin, "admin2"), demo_password(code, "admin2")
            )
            self.sign_in(code, "admin2")
            for who, roles in CAST.items():
                self.enrol(admin, who, roles)
        self.enrol(self.who(B, "admin"), "chief", ["requester", "approver"])
        for code in (A, B, C):  # approver, operator and reviewer grants take a second administrator (docs/staff.md)
            second = self.who(code, "admin2")
            for grant in self.app.role_grants(second):
                self.app.approve_grant(second, grant.id)
        self.app.set_approval_policy(self.who(B, "admin"), 2)
        self.app.register_proxy(self.who(A, "req"), self.x, self.y)
        s.say(
            "staff at each agency: req, apr, apr2, op, counter, rev, aud (roles by name), each enrolled with a "
            "one-time code, signing in with their password (flagledger login, recorded) and signing their own "
            "acts with a key their password opens (demo passwords: demo-password-AGENCY-STAFF)",
            "B also has a section chief who may both request and approve",
            "each approver, operator and reviewer was proposed by admin and approved by admin2 (two administrators)",
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
            procedure="児童手当",
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
        case = self.case = self.app.open_case(
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
        s.say("B/req requests NON_DISCLOSURE on Y (case 1); B/chief requests NO_AUTO_RESPONSE + NON_DISCLOSURE on X")
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
            procedure="児童手当",
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
            s.say("B/rev confirms with A: the applicant is the known perpetrator → propose refuse; B/apr approves")
            waiting = self.app.querier_answer(UUID(rid)).status
            s.expect(waiting == "in_progress", "A still sees the held answer: decisions leave only at B's batch time")
            at = self.app.next_release(B, self.app.provision_request(UUID(rid)).modified_on)
            run_batches(self.app, at)  # the node loop's batch step, run here as at that time
            s.say(f"B's next batch time ({at.strftime('%H:%M')} JST) releases the decision to A")
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
            procedure="児童手当",
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
            target = self.views.resolve_liaison(
                self.node, self.who(B, "rev"), cv.liaison[0], purpose="C asks B to contact the protected person"
            )
            s.say(
                f"C contacts the protecting side through {cv.liaison[0]}; B's contact point resolves "
                f"it to {self.person(target.subject)} ({', '.join(target.flags)})"
            )
            s.expect(target.subject == self.x, "the liaison reference leads B to X")
        self.done(s)

    def release(self) -> None:
        s = self.step("Release at the end: approvals, then old records stay hidden", True)
        rows = self.release_all(s)
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
