"""The scenes of ``flagledger demo --topology hub`` (the parties are in ``demo_hub_world``, the storage table in
``demo_hub_storage``): B protects X with four eyes; C asks A about X and about Z (unprotected, the control)
through the hub; A holds X's query for its staff without learning B; the portal hides X's record; X moves on
from B to C and C takes over protection through the hub (re-relocation, A → B → C); and what each party
stores. Every step records what was expected to hold; a miss makes the command exit 1.
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
from ledger.cli.demo_tables import CAST, NAMES, NAR, ND, SAFE, X_NUMBER, A, B, C, Step, Table
from ledger.errors import FlagLedgerError
from ledger.linkage.names import PORTAL
from ledger.portal.service import read_page, sign_in
from ledger.runtime.bootstrap import Node
from ledger.runtime.linkage import subject_of

ITEM, PROCEDURE, INFO = 74, "児童手当", "地方税関係情報"
STAFF = {
    A: ("apr",),
    B: ("req", "apr", "op", "rev"),
    C: ("counter", "req", "apr", "op"),
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
        self.c_asks_a()
        self.a_never_learns_b()
        self.portal_pages()
        self.handover_to_c()
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
        granted = any(r in ("approver", "operator") for who in STAFF[code] for r in CAST[who])
        if granted:
            app.activate_credential(
                code, "admin2", app.issue_enrolment_code(admin, "admin2"), demo_password(code, "admin2")
            )
        for who in STAFF[code]:
            app.enroll_staff(admin, who, who, CAST[who])
            app.activate_credential(code, who, app.issue_enrolment_code(admin, who), demo_password(code, who))
        for grant in app.role_grants(second) if granted else []:  # approvers, operators: a second administrator
            app.approve_grant(second, grant.id)

    def setup(self) -> None:
        s = self.step("Set-up: five parties, five data directories, one broker object between them", False)
        t = Table("the parties", ["party", "data directory", "its database", "knows the keys of"])
        for code in (A, B, C):
            self._enrol_all(self.w.nodes[code], code)
            t.add(f"{NAMES[code]} ({code})", f"{self.w.root.name}/{self.w.party_dir(code).name}", "views.sqlite, "
                  "ledger.sqlite", "the hub (linkage.mode: hub)")  # fmt: skip
        t.add("hub", f"{self.w.root.name}/hub", "hub.sqlite", "A, B, C, the portal (published entries)")
        t.add("portal", f"{self.w.root.name}/portal", "portal.sqlite", "the hub")
        s.show(t)
        s.say(
            "each agency node hosts one municipality and names people by its own agency code (機関別符号)",
            "staff: B's req, apr, op and rev, A's apr, C's counter, req, apr and op — each enrolled with a one-time "
            "code and a password (demo-password-AGENCY-STAFF), as in the one-node demo",
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
        s.say("A files X and Z as residents whose tax data it provides (their registrations go to the hub)")
        self.done(s)

    def c_asks_a(self) -> None:
        s = self.step("C asks A about X through the hub: held for A's staff, never automatic", True)
        c = self.w.bridges[C]
        counter = Actor(C, "counter")
        for label, number in (("X", X_NUMBER), ("Z", Z_NUMBER)):
            self.asked[label] = c.ask(counter, A, number, legal_item=ITEM, procedure=PROCEDURE, info_kind=INFO)
        queued = {k: c.query(v)["status"] for k, v in self.asked.items()}
        s.say(f"Y applies at C; C's counter asks A about X, and about Z (the control) → {queued['X']}")
        self.w.settle()
        t = Table("C's counter: its queries through the hub", ["about", "provider", "status", "names the holder"])
        got = {}
        for label, rid in self.asked.items():
            got[label] = c.query(rid)
            t.add(label, f"{NAMES[A]} ({A})", got[label]["status"], "yes" if names(json.dumps(got[label]), B) else
                  "no", marks=["", "", SAFE if label == "X" else "", ""])  # fmt: skip
        s.show(t)
        s.expect(got["X"]["status"] == "in_progress", "C hears 'in progress' about X: held, not automatic")
        s.expect(got["Z"]["status"] == "answered", "Z, unprotected, is answered automatically (the control)")
        s.expect(not names(json.dumps(got), B), "nothing C hears names B")
        self.a_queue(s)
        cons = self.w.bridges[B].consultations()
        t2 = Table("B's consultations (shown to B's reviewers: a query about a person B protects)",
                   ["provider asked", "subject (B's own code)", "procedure", "querier"])  # fmt: skip
        for row in cons:
            t2.add(f"{NAMES[A]} ({row['provider']})", str(row["subject"])[:12] + "…", str(row["procedure"]),
                   "(not told)", marks=["", "", "", SAFE])  # fmt: skip
        s.show(t2)
        s.expect([r["provider"] for r in cons] == [A], "B is consulted about A's held request")
        s.expect(not any(names(json.dumps(r), C) for r in cons), "the consultation does not name C")
        self.done(s)

    def a_queue(self, s: Step) -> Any:
        from projections import views

        node = self.w.nodes[A]
        q = views.work_queue(node, Actor(A, "apr"))
        mine = {subject_of(x_code(node, A)): "X", subject_of(x_code(node, A, Z_NUMBER)): "Z"}
        t = Table("A's work queue: held requests", ["subject", "from", "procedure", "received", "reason shown"])
        for h in q.held:
            t.add(mine.get(h.subject, h.subject[:9] + "…"), f"{NAMES.get(h.querier, h.querier)} ({h.querier})",
                  h.procedure, h.received_at[11:19], "flagged elsewhere (no holder named)", marks=["", "", "", "",
                  SAFE])  # fmt: skip
        s.show(t)
        held = [mine.get(h.subject) for h in q.held]
        s.expect(held == ["X"] and q.held[0].querier == C, "A holds C's query about X, and only that one")
        s.expect(not any(names(row, B) for r in t.rows for row in r), "A's queue names no B")
        return q

    def a_never_learns_b(self) -> None:
        s = self.step("A never learns B: its files, every row of its databases and every event of its log", False)
        node_a, node_b = self.w.nodes[A], self.w.nodes[B]
        b_code = x_code(node_b, B)
        blob = b"".join(p.read_bytes() for p in sorted(self.w.party_dir(A).rglob("*")) if p.is_file())
        rows = "\n".join(sqlite_rows(self.w.party_dir(A)))
        events = [str(node_a.app.signed_mapper.decode(env).__dict__) for _, _, env in node_a.app.envelopes()]
        found_code = any(f.encode() in blob or f in rows for f in (b_code, subject_of(b_code), b_code[1:]))
        named = sum(1 for e in events if names(e, B))
        t = Table("searched in A's data directory", ["what", "where", "found"])
        t.add("B's code for X (3 spellings)", f"{len(blob)} bytes of files, {rows.count(chr(10)) + 1} rows",
              "yes" if found_code else "no", marks=["", "", "" if found_code else SAFE])  # fmt: skip
        t.add(f"B's name or number ({NAMES[B]}, {B})", f"{len(events)} decoded events of A's log", str(named),
              marks=["", "", "" if named else SAFE])  # fmt: skip
        t.add("A's own code for X (the search works)", "the same rows",
              "yes" if subject_of(x_code(node_a, A)) in rows else "no")  # fmt: skip
        s.show(t)
        s.expect(not found_code and not named, "nothing in A's directory names B or holds B's code for X")
        s.expect(subject_of(x_code(node_a, A)) in rows, "the search finds A's own code for X (it can find)")
        self.done(s)

    def portal_pages(self) -> None:
        s = self.step("The portal: X's page hides the record; Z's page (the control) shows its record", True)
        w = self.w
        for number in (X_NUMBER, Z_NUMBER):
            sign_in(w.portal_store, w.portal_role.keys, w.portal.directory, number)
        s.say("X and Z sign in at the portal with their cards (the portal keeps its own code, never the number)")
        w.settle()
        t = Table("what the portal shows (portal page --card …)",
                  ["card", "viewer", "records shown", "querier 照会機関", "note"])  # fmt: skip
        shown: dict[str, Any] = {}
        for label, number, viewer in (("X", X_NUMBER, "self"), ("Z", Z_NUMBER, "self"), ("X", X_NUMBER, "proxy")):
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
        with w.hub_store.engine.connect() as conn:
            from sqlalchemy import func, select

            from ledger.hub.tables import hub_sealed_records

            records = int(conn.execute(select(func.count()).select_from(hub_sealed_records)).scalar_one())
        s.say(
            f"the hub holds {records} provision record(s) (A's about X and about Z), their contents sealed to the"
            " portal: the hub files and hides them, only the portal reads them"
        )
        s.expect(records == 2, "the hub filed both records")
        s.expect(PORTAL in w.hub.directory.sealing, "the portal is known to the hub")
        self.done(s)

    def handover_to_c(self) -> None:
        s = self.step("X moves on from B to C (転出/転入): C takes over protection through the hub", True)
        from datetime import date

        w = self.w
        b, c = w.nodes[B].app, w.nodes[C].app
        b.record_move(Actor(B, "req"), X_NUMBER, to_agency=C, moved_on=date(2026, 9, 1))
        s.say("B/req records X's move to C; the bridge sends it to the hub under B's code (the hub takes a move "
              "only from a municipality that protects X or where X lives)")  # fmt: skip
        w.settle()
        asked = c.handovers_for(C)
        t = Table("C's handover queue (the hub's request, under C's own code)",
                  ["subject (C's code)", "moved on", "flags to take over", "names who protected X"])  # fmt: skip
        for h in asked:
            t.add(str(h["subject"])[:12] + "…", str(h["moved_on"]), ", ".join(h["flags_to_take_over"]),
                  "yes" if names(json.dumps(h), B) else "no", marks=["", "", "", SAFE])  # fmt: skip
        s.show(t)
        s.expect(
            [sorted(h["flags_to_take_over"]) for h in asked] == [sorted([NAR, ND])], "C is asked to take over both"
        )
        s.expect(not any(names(json.dumps(h), B) for h in asked), "the handover names neither B nor a holder")
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
