"""The test cast as people, and staff changes through the two-administrator path.

People: enrolled with a one-time code, activated with their own (generated) password, keys unlocked in this
test process; and staff evidence for tests that build Protection events by hand, signed by those keys exactly
as ``FlagLedger.execute_request`` signs them (docs/staff-signing.md).

Privileged roles: granting approver, operator or administrator takes a second administrator (docs/staff.md).
Test nodes are made with one administrator per agency (``admin``), so the first privileged grant gives the
agency its second, ``admin2``, exactly as ``flagledger init --second-admin admin2`` records it at set-up
(``Staff.Enrolled`` by the node); ``admin2`` then approves what ``admin`` proposed. Each grant is still a
proposal and an approval in the log, as in production.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from ledger.app import SYSTEM, Actor, FlagLedger
from ledger.domain.agencies import Staff
from ledger.domain.staff_acts import (
    APPROVED,
    EXECUTED,
    REQUESTED,
    act_statement,
    details_digest,
    note_digest,
    request_digest,
)
from ledger.domain.types import Role
from ledger.runtime.bootstrap import Node

__all__ = [
    "activate_admin",
    "activate_second_administrator",
    "activation",
    "cli_env",
    "enrol",
    "enrol_approved",
    "grant_approved",
    "password_env",
    "password_of",
    "run_in_process",
    "second_administrator",
    "signed_evidence",
]


def password_of(agency: str, who: str) -> str:
    """The test cast's passwords (generated per person, the same in every test)."""
    return f"pw-{agency}-{who}-correct-horse"


def activate_admin(node: Node, agency: str, who: str = "admin", *, second: bool = True) -> None:
    """Activate the first administrator with the code set-up issued (or a bootstrap code on an old log), so
    that it signs the cast's enrolment codes; its key stays unlocked in this process. ``second``: admin2 is
    registered first, as `init --second-admin admin2` names it (False: an agency with a single administrator)."""
    app = node.app
    roster = app.roster(agency)
    if roster is not None and roster.current_key(who) is not None:
        app.unlock(agency, who, password_of(agency, who))
        return
    if roster is None and second and who != SECOND_ADMIN:
        set_up_second_administrator(node, agency)
    code = app.first_codes.pop(agency, None) or app.issue_enrolment_code(Actor(agency, who), who)
    app.activate_credential(agency, who, code, password_of(agency, who))


SECOND_ADMIN = "admin2"


def enrol(node: Node, actor: Actor, who: str, roles: Sequence[str], name: str | None = None) -> None:
    """Enrol ``who`` the way a person is: the administrator enrols (a second administrator approving each
    privileged role at once) and issues a code, the person activates it with their own password; the key stays
    unlocked in this process (as `flagledger staff activate` leaves it)."""
    pending = node.app.enrol(actor, who, name or who, roles)
    if pending:
        second = second_administrator(node, actor.agency, actor.staff)
        for g in pending:
            node.app.approve_grant(second, g.id)
    code = node.app.issue_enrolment_code(actor, who)
    node.app.activate_credential(actor.agency, who, code, password_of(actor.agency, who))


def enrol_approved(node: Node, admin: Actor, who: str, roles: Sequence[str], name: str | None = None) -> str:
    """:func:`enrol`, returning the staff id."""
    enrol(node, admin, who, roles, name)
    return who


def second_administrator(node: Node, code: str, first: str = "admin") -> Actor:
    """An administrator of ``code`` other than ``first``: ``admin2``, made as set-up makes it if missing."""
    who = SECOND_ADMIN if first != SECOND_ADMIN else "admin"
    set_up_second_administrator(node, code, who)
    # an administrator signs the grants they approve with their own staff key (docs/staff-signing.md, "Roles
    # at peers"): activated with a code ``first`` signs as an administrator's, so the roster counts them as one
    roster = node.app.roster(code)
    if roster is not None and roster.current_key(who) is None and roster.current_key(first) is not None:
        issued = node.app.issue_enrolment_code(Actor(code, first), who)
        node.app.activate_credential(code, who, issued, password_of(code, who))
    return Actor(code, who)


def set_up_second_administrator(node: Node, code: str, who: str = SECOND_ADMIN) -> None:
    """The second administrator as `init --second-admin` registers it, if missing. Only one registered before
    the first administrator activates is named at set-up in the roster (docs/staff-signing.md); one made later
    is refused there as a stand-in (tests/unit/test_staff_roles.py)."""
    sid = node.app.ids.staff(code, who)
    if node.app.find(Staff, sid) is None:
        node.app.save_as(
            code, Staff(id=sid, agency=code, staff_id=who, name=who, roles=[Role.ADMINISTRATOR.value], by=SYSTEM)
        )


def activate_second_administrator(node: Node, code: str, first: str = "admin") -> Actor:
    """:func:`second_administrator`, who also activates a code ``first`` issues, so that they can sign in (a
    command acts only as someone signed in, ledger/cli/session.py)."""
    second = second_administrator(node, code, first)
    roster = node.app.roster(code)
    if roster is None or roster.current_key(second.staff) is None:
        issued = node.app.issue_enrolment_code(Actor(code, first), second.staff)
        node.app.activate_credential(code, second.staff, issued, password_of(code, second.staff))
    return second


def grant_approved(node: Node, admin: Actor, who: str, role: str) -> None:
    """Grant ``role`` to ``who``; if it takes two administrators, the second approves it at once."""
    pending = node.app.grant_role(admin, who, role)
    if pending is not None:
        node.app.approve_grant(second_administrator(node, admin.agency, admin.staff), pending)


def signed_evidence(
    app: FlagLedger,
    agency: str,
    kind: str,
    subject: str,
    flags: list[str],
    request_id: UUID,
    review_date: str | None,
    *,
    requester: str = "req",
    approvers: tuple[str, ...] = ("apr",),
    operator: str = "op",
) -> dict[str, Any]:
    """The ``evidence`` of a flag change of ``kind`` (set, renew, release) with genuine signatures."""
    details = details_digest("dv", "", None, None)
    digest = request_digest(agency, str(request_id), kind, subject, flags, review_date, len(approvers), details)
    acts = []
    for act, who in [(REQUESTED, requester), *((APPROVED, a) for a in approvers), (EXECUTED, operator)]:
        note = note_digest("")
        signed = app.signer_for(Actor(agency, who)).sign(act_statement(agency, act, str(request_id), digest, who, note))
        acts.append({"act": act, "staff": who, "note": note, **signed})
    return {"approvals_required": len(approvers), "details": details, "acts": acts}


# -- the command line: each person of the cast activates the code a command printed for them --------------
def cli_actor(argv: Sequence[str]) -> str | None:
    """The ``--as`` of a command line, if any."""
    args = list(argv)
    return args[args.index("--as") + 1] if "--as" in args and args.index("--as") + 1 < len(args) else None


def cli_env(
    argv: Sequence[str], env: dict[str, str], passwords: Callable[[str, str], str] | None = None
) -> dict[str, str]:
    """``env`` with FLAGLEDGER_PASSWORD set to the password of the person acting ``--as`` (as a script gives it)."""
    actor = cli_actor(argv)
    if actor is not None:
        agency, _, who = actor.partition("/")
        env = {**env, "FLAGLEDGER_PASSWORD": (passwords or password_of)(agency, who)}
    return env


# second administrators named at set-up (``init``/``agency add --second-admin``) whose first administrator is
# about to activate: that administrator then issues their code (signed by the new key), as a person would
_SECOND: dict[str, str] = {}


def _where(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    return ["--data-dir", args[args.index("--data-dir") + 1]] if "--data-dir" in args else []


def activation(argv: Sequence[str], out: str) -> list[str] | None:
    """The command the cast runs next after ``argv`` printed ``out`` (None: nothing): a person told their
    one-time code (by ``init``, ``agency add``, ``staff enroll`` or ``staff code``) activates it at once; a
    first administrator just activated issues the code of the second one named at set-up, so that both can
    sign in (docs/staff.md)."""
    args = list(argv)
    for line in out.splitlines():
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if not isinstance(answer, dict):
            continue
        if "activated" in answer and answer["activated"] in _SECOND:
            agency, _, admin = str(answer["activated"]).partition("/")
            second = _SECOND.pop(answer["activated"])
            return [*_where(args), "staff", "code", "--as", f"{agency}/{admin}", second]
        code = answer.get("enrolment_code")
        if not code:
            continue
        who = answer.get("enrolled") or answer.get("administrator") or answer.get("staff")
        if who is None and "agency" in answer:  # `agency add`: its --admin (default admin)
            who = f"{answer['agency']}/{args[args.index('--admin') + 1] if '--admin' in args else 'admin'}"
        if who is None:
            continue
        if "--second-admin" in args and ("init" in args or "add" in args):
            _SECOND[str(who)] = args[args.index("--second-admin") + 1]
        return [*_where(args), "staff", "activate", "--as", str(who), "--code", str(code)]
    return None


@contextmanager
def password_env(argv: Sequence[str]) -> Iterator[None]:
    """FLAGLEDGER_PASSWORD of the ``--as`` person for a command run in this process."""
    before = os.environ.get("FLAGLEDGER_PASSWORD")
    os.environ.update(cli_env(argv, {}))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FLAGLEDGER_PASSWORD", None)
        else:
            os.environ["FLAGLEDGER_PASSWORD"] = before


def run_in_process(argv: Sequence[str], capsys: Any) -> tuple[int, str, str]:
    """``flagledger ARGV`` in this process as the cast would run it: the ``--as`` person's password given, and a
    person told their enrolment code activating it at once (that command's output is not returned)."""
    from ledger.cli.main import main

    with password_env(argv):
        code = main(list(argv))
    captured = capsys.readouterr()
    follow = activation(argv, captured.out) if code == 0 else None
    while follow is not None:
        with password_env(follow):
            done = main(follow)
        after = capsys.readouterr()
        assert done == 0, after.err
        follow = activation(follow, after.out)
    return code, captured.out, captured.err
