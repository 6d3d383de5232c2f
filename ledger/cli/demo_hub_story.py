"""The scenes of ``flagledger demo --topology hub`` (the parties are in ``demo_hub_world``, the storage table in
``demo_hub_storage``): B protects X with four eyes and records her arrival from A (転入 at B: A is never told);
Y applies at a pension office D, and D asks A about X, about Y and about Z (unprotected, the control) through
the hub; A holds X's query for its staff without learning B; the portal hides X's record and shows Y nothing of
her; X moves on from B to C and C takes over protection through the hub (re-relocation, A → B → C); A and D
learn neither B nor C; and what each party stores. Every step records what was expected to hold; a miss makes
the command exit 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ledger.app import Actor
from ledger.cli.demo_hub_storage import who_stores_what
from ledger.cli.demo_hub_world import Z_NUMBER, HubWorld, sqlite_rows, x_code
from ledger.cli.demo_story import demo_password
from ledger.cli.demo_tables import CAST, NAMES, NAR, ND, SAFE, X_NUMBER, Y_NUMBER, A, B, C, D, Step, Table
from ledger.errors import FlagLedgerError
from ledger.linkage.names import PORTAL
from ledger.portal.service import read_page, sign_in
from ledger.runtime.bootstrap import Node
from ledger.runtime.linkage import subject_of

# the pension procedure Y applies for at D (his household's tax data, spouse included): the former table 2 item
# 48, 国民年金 — asked by 厚生労働大臣 (a national agency's pension office acts for him), provided by 市町村長
ITEM, PROCEDURE, INFO = 48, "国民年金", "地方税関係情報"
STAFF = {
    A: ("apr",),
    B: ("req", "apr", "op", "rev"),
    C: ("req", "apr", "op"),
    D: ("counter",),
}  # who acts in this demo, per agency


def names(text: str, agency: str) -> bool:
    """Whether ``text`` names ``agency``: its code standing alone (not six digits inside a hex id or a time) or
    its name."""
    return NAMES[agency] in text or re.search(rf"(?<![0-9a-fA-F.]){agency}(?![0-9a-fA-F])", text) is not None


class HubDemo:
    def __init__(self, world: HubWorld, emit: Callable[[Step], None]) -> None:
        self.w = world
        self.emit = emit
        self.steps: list[Step] = []
        self.asked: dict[str, str] = {}

    def step(self, title: str, protected: bool) -> Step:
        s = Step(len(self.steps) + 1, title, protected)
        self.steps.append(s)
        return s

    def done(self, s: Step) -> None:
        self.emit(s)

    def run(self) -> list[Step]:
        self.setup()
        self.protect_at_b()
        self.arrival_at_b()
        self.d_asks_a()
        self.portal_pages()
        self.handover_to_c()
        self.never_learn()
        s = self.step("Who stores what: each party's own database, and the broker between them", False)
        who_stores_what(self.w, s)
        self.done(s)
        return self.steps

    # -- staff: one-time codes and passwords, as in the one-node demo, but only the people who act here --------
    def _enrol_all(self, node: Node, code: str) -> None:
        """Each person's password is stretched (argon2) at activation: the hub demo enrols only its actors, and
        activation leaves their staff keys open for this process (the one-node demo shows the sign-in)."""
        app = node.app
        admin, second = Actor(code, "admin"), Actor(code, "admin2")
        app.activate_credential(code, "admin", app.first_codes.pop(code), demo_password(code, "admin"))
        granted = any(r in ("approver", "operator", "reviewer") for who in STAFF[code] for r in CAST[who])
        if granted:
            app.activate_credential(
                code, "admin2", app.issue_enrolment_code(admin, "admin2"), demo_password(code, "admin2")
            )
        for who in STAFF[code]:
            app.enroll_staff(admin, who, who, CAST[who])
            app.activate_credential(code, who, app.issue_enrolment_code(admin, who), demo_password(code, who))
        for grant in (
            app.role_grants(second) if granted else []
        ):  # approvers, operators, reviewers: a second administrator
            app.approve_grant(second, grant.id)

    def setup(self) -> None:
        s = self.step("Set-up: six parties, six data directories, one broker object between them", False)
        t = Table("the parties", ["party", "data directory", "its database", "knows the keys of"])
        for code in (A, B, C, D):
            self._enrol_all(self.w.nodes[code], code)
            t.add(f"{NAMES[code]} ({code})", f"{self.w.root.name}/{self.w.party_dir(code).name}", "views.sqlite, "
                  "ledger.sqlite", "the hub (linkage.mode: hub)")  # fmt: skip
        t.add("hub", f"{self.w.root.name}/hub", "hub.sqlite", "A, B, C, D, the portal (published entries)")
        t.add("portal", f"{self.w.root.name}/portal", "portal.sqlite", "the hub")
        s.show(t)
        s.say(
            "each agency node hosts one municipality and names people by its own agency code (機関別符号)",
            f"{NAMES[D]} ({D}) is a national agency's pension office, where Y applies",
            "staff: B's req, apr, op and rev, A's apr, C's req, apr and op, D's counter — each enrolled with a "
            "one-time code and a password (demo-password-AGENCY-STAFF), as in the one-node demo",
            "the parties exchanged public keys only (linkage directory export/import); each loop runs in this "
            "process on a MemoryTransport: the broker object is all they share",
        )
        self.done(s)

    def protect_at_b(self) -> None:
        s = self.step("B protects X with four eyes (X fled from A to B)", False)
        b = self.w.nodes[B].app
        rid = b.request_flags(Actor(B, "req"), X_NUMBER, [NAR, ND])
        s.say("B/req requests NO_AUTO_RESPONSE + NON_DISCLOSURE on X")
        try:
            b.approve_request(Actor(B, "req"), rid)
            s.expect(False, "the requester could approve their own request")
        except FlagLedgerError as exc:
            s.say(f"B/req tries to approve it → refused ({exc.code}): a second person approves")
        status = b.approve_request(Actor(B, "apr"), rid)
        s.say(f"B/apr approves → {status}")
        b.execute_request(Actor(B, "op"), rid)
        s.say("B/op executes: B's own chain, signed; the bridge sends the flag change sealed to the hub")
        self.w.bridges[A].file_person(X_NUMBER)  # A, X's old municipality, still holds her tax data
        self.w.bridges[A].file_person(Z_NUMBER)
        self.w.bridges[A].file_person(Y_NUMBER)
        self.w.settle()
        with self.w.hub_store.engine.connect() as conn:
            from sqlalchemy import select

            from ledger.hub.tables import hub_flag_changes

            changes = conn.execute(select(hub_flag_changes).order_by(hub_flag_changes.c.seq)).all()
        t = Table("the hub's flag changes (who holds is the hub's to know, and no one else's)",
                  ["seq", "person (hub's id)", "holder", "flag", "action"])  # fmt: skip
        for r in changes:
            t.add(str(r.seq), r.person[:12] + "…", f"{NAMES.get(r.holder, r.holder)} ({r.holder})", r.flag, r.action)
        s.show(t)
        s.expect({(r.holder, r.flag) for r in changes} == {(B, NAR), (B, ND)}, "the hub filed B's two flags")
        s.say("A files X, Y and Z as residents whose tax data it provides (their registrations go to the hub)")
        self.done(s)

    def arrival_at_b(self) -> None:
        s = self.step("X's first move, A → B, is recorded at B (転入), never at A: A is told nothing", True)
        from datetime import date

        from sqlalchemy import select

        from ledger.hub.tables import hub_moves

        w = self.w
        a_inbox = sum(len(ms) for t, ms in w.broker.topics.items() if t.endswith(f".{A}"))
        w.nodes[B].app.record_move(Actor(B, "req"), X_NUMBER, from_agency=A, to_agency=B, moved_on=date(2026, 4, 1))
        s.say(
            "B/req records X's 転入 from A (her old address is on the form she hands B); the bridge sends it to "
            "the hub: B holds X's flags, so the hub takes it from B, and B holds already, so no one is asked"
        )
        w.settle()
        with w.hub_store.engine.connect() as conn:
            moves = conn.execute(select(hub_moves.c.sender, hub_moves.c.from_agency, hub_moves.c.to_agency)).all()
        t = Table("the hub's moves (the residence it saw: where the next move must start)",
                  ["sender", "from", "to", "A told"])  # fmt: skip
        after = sum(len(ms) for t_, ms in w.broker.topics.items() if t_.endswith(f".{A}"))
        for sender, from_, to in moves:
            t.add(NAMES[sender], NAMES.get(from_, from_), NAMES[to], "no" if after == a_inbox else "yes",
                  marks=["", "", "", SAFE])  # fmt: skip
        s.show(t)
        s.expect([tuple(m) for m in moves] == [(B, A, B)], "the hub filed the move A → B from B")
        s.expect(after == a_inbox, "A's inbox received nothing for X's move")
        s.expect(w.nodes[B].app.handovers_for(B) == [], "B, holding already, is asked to take over nothing")
        self.done(s)

    def d_asks_a(self) -> None:
        s = self.step("Y applies at the pension office D: D asks A about X through the hub, held for A's staff", True)
        d = self.w.bridges[D]
        counter = Actor(D, "counter")
        for label, number in (("X", X_NUMBER), ("Y", Y_NUMBER), ("Z", Z_NUMBER)):
            self.asked[label] = d.ask(counter, A, number, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
        queued = {k: d.query(v)["status"] for k, v in self.asked.items()}
        s.say(
            f"Y applies at D for a benefit that needs his household's tax data; D's counter asks A about X (his "
            f"spouse, A's resident on 1 January), about Y himself, and about Z (the control) → {queued['X']}"
        )
        self.w.settle()
        t = Table("D's counter (what Y can be told there): its queries through the hub",
                  ["about", "provider", "status", "names a holder or where X lives"])  # fmt: skip
        got = {}
        for label, rid in self.asked.items():
            got[label] = d.query(rid)
            leak = any(names(json.dumps(got[label]), where) for where in (B, C))
            t.add(label, f"{NAMES[A]} ({A})", got[label]["status"], "yes" if leak else "no",
                  marks=["", "", SAFE if label == "X" else "", ""])  # fmt: skip
        s.show(t)
        s.expect(got["X"]["status"] == "in_progress", "D hears 'in progress' about X: held, not automatic")
        s.expect(got["Y"]["status"] == "answered", "Y himself, unprotected, is answered automatically")
        s.expect(got["Z"]["status"] == "answered", "Z, unprotected, is answered automatically (the control)")
        s.expect(not any(names(json.dumps(got), where) for where in (B, C)), "nothing D hears names B or C")
        self.a_queue(s)
        cons = self.w.bridges[B].consultations()
        t2 = Table("B's consultations (shown to B's reviewers: a query about a person B protects)",
                   ["provider asked", "subject (B's own code)", "procedure", "querier"])  # fmt: skip
        for row in cons:
            t2.add(f"{NAMES[A]} ({row['provider']})", str(row["subject"])[:12] + "…", str(row["procedure"]),
                   "(not told)", marks=["", "", "", SAFE])  # fmt: skip
        s.show(t2)
        s.expect([r["provider"] for r in cons] == [A], "B is consulted about A's held request")
        s.expect(not any(names(json.dumps(r), D) for r in cons), "the consultation does not name D")
        self.done(s)

    def a_queue(self, s: Step) -> Any:
        from projections import views

        node = self.w.nodes[A]
        q = views.work_queue(node, Actor(A, "apr"))
        mine = {subject_of(x_code(node, A, n)): label for label, n in (("X", X_NUMBER), ("Y", Y_NUMBER),
                                                                        ("Z", Z_NUMBER))}  # fmt: skip
        t = Table("A's work queue: held requests", ["subject", "from", "procedure", "received", "reason shown"])
        for h in q.held:
            t.add(mine.get(h.subject, h.subject[:9] + "…"), f"{NAMES.get(h.querier, h.querier)} ({h.querier})",
                  h.procedure, h.received_at[11:19], "flagged elsewhere (no holder named)", marks=["", "", "", "",
                  SAFE])  # fmt: skip
        s.show(t)
        held = [mine.get(h.subject) for h in q.held]
        s.expect(held == ["X"] and q.held[0].querier == D, "A holds D's query about X, and only that one")
        s.expect(not any(names(row, B) for r in t.rows for row in r), "A's queue names no B")
        return q

    def never_learn(self) -> None:
        s = self.step("A (X's old municipality) and D (where Y applied) never learn B or C: files, rows, events",
                      False)  # fmt: skip
        t = Table("searched in A's and D's data directories", ["party", "what", "where", "found"])
        for party in (A, D):
            self._search(s, t, party)
        s.show(t)
        self.done(s)

    def _search(self, s: Step, t: Table, party: str) -> None:
        node = self.w.nodes[party]
        codes = [x_code(self.w.nodes[at], at) for at in (B, C)]
        blob = b"".join(p.read_bytes() for p in sorted(self.w.party_dir(party).rglob("*")) if p.is_file())
        rows = "\n".join(sqlite_rows(self.w.party_dir(party)))
        events = [str(node.app.signed_mapper.decode(env).__dict__) for _, _, env in node.app.envelopes()]
        found_code = any(f.encode() in blob or f in rows for c in codes for f in (c, subject_of(c), c[1:]))
        named = sum(1 for e in events if names(e, B) or names(e, C))
        who = f"{NAMES[party]}"
        t.add(who, "B's and C's codes for X (3 spellings each)",
              f"{len(blob)} bytes of files, {rows.count(chr(10)) + 1} rows", "yes" if found_code else "no",
              marks=["", "", "", "" if found_code else SAFE])  # fmt: skip
        t.add(who, f"B's or C's name or number ({NAMES[B]}, {B}, {NAMES[C]}, {C})",
              f"{len(events)} decoded events of its log", str(named),
              marks=["", "", "", "" if named else SAFE])  # fmt: skip
        s.expect(not found_code and not named, f"nothing in {NAMES[party]}'s directory names B or C or holds "
                 "their codes for X")  # fmt: skip
        if party == A:
            own = subject_of(x_code(node, A)) in rows
            t.add(who, "A's own code for X (the search works)", "the same rows", "yes" if own else "no")
            s.expect(own, "the search finds A's own code for X (it can find)")

    def portal_pages(self) -> None:
        s = self.step("The portal: X's page hides the record; Y's shows his own, nothing of X; Z's shows its record",
                      True)  # fmt: skip
        w = self.w
        for number in (X_NUMBER, Y_NUMBER, Z_NUMBER):
            sign_in(w.portal_store, w.portal_role.keys, w.portal.directory, number)
        s.say("X, Y and Z sign in at the portal with their cards (the portal keeps its own code, never the number)")
        w.settle()
        t = Table("what the portal shows (portal page --card …)",
                  ["card", "viewer", "records shown", "querier 照会機関", "note"])  # fmt: skip
        shown: dict[str, Any] = {}
        for label, number, viewer in (("X", X_NUMBER, "self"), ("Y", Y_NUMBER, "self"), ("Z", Z_NUMBER, "self"),
                                      ("X", X_NUMBER, "proxy")):  # fmt: skip
            try:
                page = read_page(w.portal_store, w.portal_role.keys, w.portal.directory, number, viewer)
            except FlagLedgerError as exc:
                t.add(label, viewer, "—", "—", f"refused: {exc.code}", marks=["", "", "", "", SAFE])
                shown[label + viewer] = exc.code
                continue
            shown[label + viewer] = page
            queriers = ", ".join(f"{NAMES.get(r.querier, r.querier)} ({r.querier})" for r in page.records) or "—"
            t.add(label, viewer, str(len(page.records)), queriers, page.note or "—",
                  marks=["", "", SAFE if label == "X" else "", "", ""])  # fmt: skip
        s.show(t)
        x_page, z_page = shown["Xself"], shown["Zself"]
        s.expect(not isinstance(x_page, str) and not x_page.records and bool(x_page.note), "X's record is hidden")
        s.expect(not isinstance(z_page, str) and len(z_page.records) == 1, "Z's record is shown (the control)")
        s.expect(shown["Xproxy"] == "proxy_refused", "a proxy of X is refused while X is protected")
        y_page = shown["Yself"]
        s.expect(not isinstance(y_page, str) and [r.querier for r in y_page.records] == [D],
                 "Y's page shows his own record: D asked A about him")  # fmt: skip
        s.expect(not any(names(str(y_page), where) for where in (B, C)), "Y's page names neither B nor C")
        with w.hub_store.engine.connect() as conn:
            from sqlalchemy import func, select

            from ledger.hub.tables import hub_sealed_records

            records = int(conn.execute(select(func.count()).select_from(hub_sealed_records)).scalar_one())
        s.say(
            f"the hub holds {records} provision record(s) (A's about X, Y and Z), their contents sealed to the"
            " portal: the hub files and hides them, only the portal reads them"
        )
        s.expect(records == len(self.asked), "the hub filed A's record of each of D's queries")
        s.expect(PORTAL in w.hub.directory.sealing, "the portal is known to the hub")
        self.done(s)

    def handover_to_c(self) -> None:
        s = self.step("X moves on from B to C (転出/転入): C takes over protection through the hub", True)
        from datetime import date

        w = self.w
        b, c = w.nodes[B].app, w.nodes[C].app
        b.record_move(Actor(B, "req"), X_NUMBER, to_agency=C, moved_on=date(2026, 9, 1))
        s.say(
            "B/req records X's move to C; the bridge sends it to the hub under B's code (the hub takes a move "
            "only from a municipality that protects X or where X lives, starting where it last saw her: B)"
        )
        w.settle()
        w.bridges[C].file_person(X_NUMBER)
        s.say("X registers at C (転入): C files her under its own code, and the hub, which had kept the handover "
              "until C knew her, sends it")  # fmt: skip
        w.settle()
        asked = c.handovers_for(C)
        t = Table("C's handover queue (the hub's request, under C's own code)",
                  ["subject (C's code)", "moved on", "flags to take over", "names B or A"])  # fmt: skip
        for h in asked:
            t.add(str(h["subject"])[:12] + "…", str(h["moved_on"]), ", ".join(h["flags_to_take_over"]),
                  "yes" if names(json.dumps(h), B) or names(json.dumps(h), A) else "no",
                  marks=["", "", "", SAFE])  # fmt: skip
        s.show(t)
        s.expect(
            [sorted(h["flags_to_take_over"]) for h in asked] == [sorted([NAR, ND])], "C is asked to take over both"
        )
        s.expect(not any(names(json.dumps(h), B) or names(json.dumps(h), A) for h in asked),
                 "the handover names no holder and no earlier municipality (neither B nor A)")  # fmt: skip
        s.say("until C holds, B releases only with an approved decision naming the risk (handover_pending)")
        rid = c.request_flags(Actor(C, "req"), X_NUMBER, [NAR, ND])
        c.approve_request(Actor(C, "apr"), rid)
        c.execute_request(Actor(C, "op"), rid)
        s.say("C/req, C/apr, C/op take over with C's own four eyes; the hub tells B that C holds")
        w.settle()
        held = b.holders_anywhere(b.subject(X_NUMBER))
        s.expect(all(C in held.get(f, []) for f in (NAR, ND)), "B hears from the hub that C holds both flags")
        s.expect(c.handovers_for(C) == [], "C's handover queue is empty once it holds")
        self._release_at_b()
        w.settle()
        s.say("B/req, B/apr, B/op release B's flags: no decision naming a risk is needed, C holds")
        self.done(s)

    def _release_at_b(self) -> None:
        b = self.w.nodes[B].app
        rid = b.request_flags(Actor(B, "req"), X_NUMBER, [NAR, ND], kind="release", explanation="moved to C")
        b.approve_request(Actor(B, "apr"), rid)
        b.execute_request(Actor(B, "op"), rid)
