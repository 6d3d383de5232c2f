"""The permission matrix, exhaustively: every role × every command × own/other agency.

A probe staff member per staff role (and one with no role) is enrolled at municipality B and at support centre
SC, and a probe system account per system kind's role (``portal``, ``linkage``: issue 18, they are never a
staff member's) — threats: an insider or administrator widening a clerk's reach, a system caller acting as staff.
Each command runs on fresh objects: "own" objects belong to the probe's agency, "other" objects to A (for
commands that act on an agency's object), or the probe claims A's name (for commands that create). A command
is allowed exactly where ``DEFAULT_PERMISSIONS`` gives the role the command's action and the object is the
agency's own (and, for protection-body requests, the agency is a protection body); a refused command raises
``PermissionDenied`` and saves nothing. An allowed one may still meet a business rule (never a permission one).
Role grants (issue 18) are in it: proposing a privileged role, approving, rejecting, withdrawing and listing
grants are the administrator's, and only at its own agency; the probes with a privileged role were themselves
approved by a second administrator (tests/support/staff.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest

from ledger.app import Actor
from ledger.domain.types import DEFAULT_PERMISSIONS, SYSTEM_ROLES, Action, Role
from ledger.errors import Code, FlagLedgerError, NotFoundError, PermissionDenied, RuleViolation
from ledger.log.signing import Signer
from ledger.runtime.bootstrap import AgencySpec, Node, init_node
from projections import views
from projections.views_disclosure import counter_printout, disclosure_document
from tests.conftest import SC, A, B, C, enrol_standard_staff
from tests.support.people import individual_number
from tests.support.staff import enrol

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
ROLES: list[Role | None] = [*Role, None]
counter = itertools.count()


def probe(role: Role | None) -> str:
    return f"p-{role.value if role else 'none'}"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = init_node(
        tmp_path_factory.mktemp("perm") / "node",
        (
            AgencySpec(A, "A市", "municipality"),
            AgencySpec(B, "B市", "municipality"),
            AgencySpec(SC, "支援センター", "support_centre"),
        ),
    )
    enrol_standard_staff(n)
    kinds = {role: kind for kind, roles in SYSTEM_ROLES.items() for role in roles}
    for code in (B, SC):
        for role in ROLES:
            if role in kinds:  # a system kind's role: held by a system account of that kind, never by staff
                n.app.enroll_system_account(Actor(code, "admin"), probe(role), kinds[role].value)
            else:
                enrol(n, Actor(code, "admin"), probe(role), [role.value] if role else [])
    yield n
    n.close()


def fresh_name() -> str:
    return f"t{next(counter)}"


# -- set-ups: each makes the objects a command acts on, at ``owner``, with the standard cast --------------------
def flag_request(node: Node, owner: str) -> Any:
    return node.app.request_flags(Actor(owner, "req"), individual_number(), [ND])


def approved_request(node: Node, owner: str) -> Any:
    rid = flag_request(node, owner)
    node.app.approve_request(Actor(owner, "apr"), rid)
    return rid


def held_request(node: Node, owner: str, proposed: bool = False) -> Any:
    x = individual_number()
    rid = node.app.request_flags(Actor(owner, "req"), x, [NAR])
    node.app.approve_request(Actor(owner, "apr"), rid)
    node.app.execute_request(Actor(owner, "op"), rid)
    querier = A if owner != A else B
    from uuid import UUID

    held = UUID(
        node.app.request_provision(
            Actor(querier, "counter"), owner, x, legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        ).request_id
    )
    if proposed:
        node.app.propose_decision(Actor(owner, "rev"), held, "refuse", "unknown")
    return held


def case(node: Node, owner: str) -> Any:
    return node.app.open_case(Actor(owner, "req"), individual_number())


def proxy(node: Node, owner: str) -> Any:
    x, y = individual_number(), individual_number()
    node.app.register_proxy(Actor(owner, "req"), x, y)
    return x, y


def link_request(node: Node, owner: str) -> Any:
    return node.app.request_link(Actor(owner, "req"), individual_number(), individual_number(), "change notice")


def linked_number(node: Node, owner: str) -> Any:
    old = individual_number()
    node.app.approve_link(
        Actor(owner, "apr"), node.app.request_link(Actor(owner, "req"), old, individual_number(), "n")
    )
    return old


def throwaway_staff(node: Node, owner: str) -> Any:
    who = fresh_name()
    node.app.enroll_staff(Actor(owner, "admin"), who, who, ["counter"])
    return who


def pending_grant(node: Node, owner: str) -> Any:
    """A grant of operator to a fresh counter clerk, proposed by the owner's first administrator."""
    return node.app.grant_role(Actor(owner, "admin"), throwaway_staff(node, owner), "operator")


def rotated_old_key(node: Node, owner: str) -> Any:
    old = node.app.signers[owner].key_id
    node.app.rotate_key(Actor(owner, "admin"), Signer.generate(owner), datetime.now(UTC))
    return old


def nothing(node: Node, owner: str) -> Any:
    return None


def provisional_flag(node: Node, owner: str) -> Any:
    return node.app.set_provisional(Actor(owner, "op"), individual_number(), [ND], explanation="緊急")


def named_risk(node: Node, owner: str) -> Any:
    return node.app.propose_release_risk(Actor(owner, "req"), individual_number(), [ND], "C does not hold yet")


@dataclass(frozen=True)
class Command:
    name: str
    action: Action
    scoped: bool  # acts on an object that belongs to one agency
    setup: Callable[[Node, str], Any]
    run: Callable[[Node, Actor, Any], Any]
    undo: Callable[[Node, str, Any], None] | None = None


def _undo_grant(node: Node, owner: str, ctx: Any) -> None:
    node.app.revoke_permission(Actor(owner, "admin"), "counter", "audit")


def _undo_revoke(node: Node, owner: str, ctx: Any) -> None:
    node.app.grant_permission(Actor(owner, "admin"), "auditor", "audit")


COMMANDS = [
    Command("open_case", Action.OPEN_CASE, False, nothing, lambda n, a, c: n.app.open_case(a, individual_number())),
    Command(
        "add_perpetrator",
        Action.OPEN_CASE,
        True,
        case,
        lambda n, a, c: n.app.add_perpetrator(a, c, individual_number()),
    ),
    Command(
        "register_proxy",
        Action.OPEN_CASE,
        False,
        nothing,
        lambda n, a, c: n.app.register_proxy(a, individual_number(), individual_number()),
    ),
    Command("cancel_proxy", Action.OPEN_CASE, False, proxy, lambda n, a, c: n.app.cancel_proxy(a, *c, "advice")),
    Command(
        "request_flags",
        Action.REQUEST_FLAG,
        False,
        nothing,
        lambda n, a, c: n.app.request_flags(a, individual_number(), [ND]),
    ),
    Command(
        "request_link",
        Action.REQUEST_LINK,
        False,
        nothing,
        lambda n, a, c: n.app.request_link(a, individual_number(), individual_number(), "change notice"),
    ),
    Command(
        "request_unlink",
        Action.REQUEST_LINK,
        True,
        linked_number,
        lambda n, a, c: n.app.request_unlink(a, c, "wrong person"),
    ),
    Command("approve_link", Action.APPROVE_LINK, True, link_request, lambda n, a, c: n.app.approve_link(a, c)),
    Command("reject_link", Action.APPROVE_LINK, True, link_request, lambda n, a, c: n.app.reject_link(a, c, "no")),
    Command("approve_request", Action.APPROVE_FLAG, True, flag_request, lambda n, a, c: n.app.approve_request(a, c)),
    Command(
        "reject_request", Action.APPROVE_FLAG, True, flag_request, lambda n, a, c: n.app.reject_request(a, c, "no")
    ),
    Command(
        "execute_request", Action.EXECUTE_FLAG, True, approved_request, lambda n, a, c: n.app.execute_request(a, c)
    ),
    # a protected person's year (docs/year.md)
    Command(
        "set_provisional",
        Action.SET_PROVISIONAL,
        False,
        nothing,
        lambda n, a, c: n.app.set_provisional(a, individual_number(), [ND], explanation="緊急"),
    ),
    Command(
        "co_approve_provisional",
        Action.APPROVE_FLAG,
        True,
        provisional_flag,
        lambda n, a, c: n.app.co_approve_provisional(a, c),
    ),
    Command(
        "record_move",
        Action.REQUEST_FLAG,
        False,
        nothing,
        lambda n, a, c: n.app.record_move(a, individual_number(), to_agency=C, moved_on=date(2026, 12, 1)),
    ),
    Command(
        "propose_release_risk",
        Action.REQUEST_FLAG,
        False,
        nothing,
        lambda n, a, c: n.app.propose_release_risk(a, individual_number(), [ND], "C does not hold yet"),
    ),
    Command(
        "approve_release_risk", Action.APPROVE_FLAG, True, named_risk, lambda n, a, c: n.app.approve_release_risk(a, c)
    ),
    Command(
        "send_body_request",
        Action.SEND_BODY_REQUEST,
        False,
        nothing,
        lambda n, a, c: n.app.send_body_request(a, B, individual_number(), [ND, NAR]),
    ),
    Command(
        "request_provision",
        Action.REQUEST_PROVISION,
        False,
        nothing,
        lambda n, a, c: n.app.request_provision(
            a, A, individual_number(), legal_item=74, procedure="児童手当", info_kind="地方税関係情報"
        ),
    ),
    Command(
        "propose_decision",
        Action.REVIEW_HELD,
        True,
        held_request,
        lambda n, a, c: n.app.propose_decision(a, c, "provide", "unknown"),
    ),
    Command(
        "approve_decision",
        Action.APPROVE_HELD,
        True,
        lambda n, o: held_request(n, o, proposed=True),
        lambda n, a, c: n.app.approve_decision(a, c, n.app.provision_request(c).proposal_version),
    ),
    Command(
        "record_access",
        Action.VIEW_PROTECTED,
        False,
        nothing,
        lambda n, a, c: n.app.record_access(a, individual_number(), "details", "Point 5 check"),
    ),
    Command("resolve_liaison (view)", Action.VIEW_PROTECTED, False, nothing, lambda n, a, c: _liaison(n, a)),
    Command(
        "counter_view (view)",
        Action.COUNTER_LOOKUP,
        False,
        nothing,
        lambda n, a, c: views.counter_view(n, a, individual_number()),
    ),
    Command(
        "disclosure_document (view, recorded)",
        Action.COUNTER_LOOKUP,
        False,
        nothing,
        lambda n, a, c: disclosure_document(n, a, individual_number()),
    ),
    Command(
        "counter_printout (view, recorded)",
        Action.COUNTER_LOOKUP,
        False,
        nothing,
        lambda n, a, c: counter_printout(n, a, individual_number()),
    ),
    Command(
        "portal_records (view)",
        Action.READ_PORTAL,
        False,
        nothing,
        lambda n, a, c: views.portal_records_for(n, a, individual_number(), individual_number()),
    ),
    Command(
        "self_information (view)",
        Action.READ_PORTAL,
        False,
        nothing,
        lambda n, a, c: views.self_information_for(n, a, individual_number(), individual_number()),
    ),
    Command(
        "subject_timeline (view)",
        Action.AUDIT,
        False,
        nothing,
        lambda n, a, c: views.subject_timeline(n, a, individual_number(), "yearly audit"),
    ),
    Command(
        "enroll_staff",
        Action.ADMINISTER,
        False,
        nothing,
        lambda n, a, c: n.app.enroll_staff(a, fresh_name(), "new", ["counter"]),
    ),
    Command("grant_role", Action.ADMINISTER, True, throwaway_staff, lambda n, a, c: n.app.grant_role(a, c, "auditor")),
    Command(
        "grant_role (privileged: proposed)",
        Action.ADMINISTER,
        True,
        throwaway_staff,
        lambda n, a, c: n.app.grant_role(a, c, "approver"),
    ),
    Command(
        "enroll_staff (privileged: proposed)",
        Action.ADMINISTER,
        False,
        nothing,
        lambda n, a, c: n.app.enroll_staff(a, fresh_name(), "new", ["counter", "operator"]),
    ),
    Command("approve_grant", Action.ADMINISTER, True, pending_grant, lambda n, a, c: n.app.approve_grant(a, c)),
    Command("reject_grant", Action.ADMINISTER, True, pending_grant, lambda n, a, c: n.app.reject_grant(a, c, "no")),
    Command("withdraw_grant", Action.ADMINISTER, True, pending_grant, lambda n, a, c: n.app.withdraw_grant(a, c, "x")),
    Command("role_grants (list)", Action.ADMINISTER, False, nothing, lambda n, a, c: n.app.role_grants(a)),
    Command(
        "revoke_role", Action.ADMINISTER, True, throwaway_staff, lambda n, a, c: n.app.revoke_role(a, c, "counter")
    ),
    Command("deactivate_staff", Action.ADMINISTER, True, throwaway_staff, lambda n, a, c: n.app.deactivate_staff(a, c)),
    Command(  # issue 18: a one-time enrolment code, signed by the issuing administrator's own key
        "issue_enrolment_code",
        Action.ADMINISTER,
        True,
        throwaway_staff,
        lambda n, a, c: n.app.issue_enrolment_code(a, c),
    ),
    Command(
        "grant_permission",
        Action.ADMINISTER,
        False,
        nothing,
        lambda n, a, c: n.app.grant_permission(a, "counter", "audit"),
        _undo_grant,
    ),
    Command(
        "revoke_permission",
        Action.ADMINISTER,
        False,
        nothing,
        lambda n, a, c: n.app.revoke_permission(a, "auditor", "audit"),
        _undo_revoke,
    ),
    Command("set_approval_policy", Action.ADMINISTER, False, nothing, lambda n, a, c: n.app.set_approval_policy(a, 1)),
    Command("register_remote_agency", Action.ADMINISTER, False, nothing, lambda n, a, c: _remote(n, a)),
    Command(
        "rotate_key",
        Action.ADMINISTER,
        False,
        nothing,
        lambda n, a, c: n.app.rotate_key(a, Signer.generate(a.agency), datetime.now(UTC)),
    ),
    Command(
        "revoke_key", Action.ADMINISTER, False, rotated_old_key, lambda n, a, c: n.app.revoke_key(a, c, "compromised")
    ),
]


def _liaison(node: Node, actor: Actor) -> Any:
    try:
        return views.resolve_liaison(node, actor, "L-00000000000000000000", purpose="matrix")
    except PermissionDenied:
        raise
    except FlagLedgerError:
        return None  # allowed, and nothing is held under that reference


def _remote(node: Node, actor: Actor) -> None:
    s = Signer.generate("REMOTE")
    node.app.register_remote_agency(
        actor, f"R{next(counter)}", "remote", "municipality", s.key_id, s.public_raw.hex(), datetime.now(UTC)
    )


def expected(role: Role | None, command: Command, agency: str, own: bool) -> bool:
    allowed = role is not None and command.action in DEFAULT_PERMISSIONS[role]
    if command.action is Action.SEND_BODY_REQUEST:
        allowed = allowed and agency == SC  # only protection bodies send them
    return allowed and own


# a number change is a municipality's act whatever the roles (issue 21: tests/integration/test_link_residence.py)
MUNICIPAL_ONLY = {Action.REQUEST_LINK, Action.APPROVE_LINK}
# a held provision request is only ever at a row's provider (市町村長: provider_not_in_basis), so a support centre
# has none of its own to decide on: SC on A's is test_a_support_centre_decides_on_no_held_request below
PROVIDER_ONLY = {Action.REVIEW_HELD, Action.APPROVE_HELD}
CASES = [
    pytest.param(c, a, id=f"{c.name}-{a}")
    for c in COMMANDS
    for a in (B, SC)
    if a == B or c.action not in MUNICIPAL_ONLY | PROVIDER_ONLY
]


@pytest.mark.parametrize(("command", "agency"), CASES)
def test_every_role_may_run_a_command_exactly_where_the_permission_table_says(
    node: Node, command: Command, agency: str
) -> None:
    outcomes = []
    for role, own in itertools.product(ROLES, (True, False)):
        owner = agency if (own or not command.scoped) else A
        ctx = command.setup(node, owner)
        # "other" for creating commands: the probe claims agency A, where it is not enrolled
        actor = Actor(agency if (own or command.scoped) else A, probe(role))
        before = node.app.max_position()
        try:
            command.run(node, actor, ctx)
            allowed = True
        except PermissionDenied:
            allowed = False
        except NotFoundError:
            # staff are named within the actor's agency: another agency's staff member cannot even be named;
            # another agency's request or case is answered exactly like an unknown one
            allowed = False
            assert not own and (command.scoped or command.action is Action.ADMINISTER), (
                f"{command.name} by {actor}: not found"
            )
        except FlagLedgerError as exc:  # a business rule after the permission check: still allowed
            allowed = True
            assert own, f"{command.name} by {actor} on another agency's object met {exc!r}, not a refusal"
        if allowed and command.undo is not None:
            command.undo(node, agency, ctx)
        if not allowed:
            assert node.app.max_position() == before, f"refused {command.name} by {actor} saved events"
        outcomes.append((role.value if role else "none", "own" if own else "other", allowed))
    want = [
        (r.value if r else "none", "own" if o else "other", expected(r, command, agency, o))
        for r, o in itertools.product(ROLES, (True, False))
    ]
    assert outcomes == want


def test_the_matrix_covers_every_action() -> None:
    assert {c.action for c in COMMANDS} == set(Action)


def test_a_support_centre_decides_on_no_held_request(node: Node) -> None:
    """Peer agency (a support centre's staff, any role): it can hold no provision request of its own — asking it is
    refused ``provider_not_in_basis`` — and proposing or approving a decision on A's held request is refused
    (another agency's request is answered like an unknown one), saving nothing."""
    with pytest.raises(RuleViolation) as refused:
        held_request(node, SC)
    assert refused.value.code == Code.PROVIDER_NOT_IN_BASIS
    for command in (c for c in COMMANDS if c.action in PROVIDER_ONLY):
        for role in ROLES:
            ctx = command.setup(node, A)
            before = node.app.max_position()
            with pytest.raises((PermissionDenied, NotFoundError)):
                command.run(node, Actor(SC, probe(role)), ctx)
            assert node.app.max_position() == before, f"{command.name} by SC/{probe(role)} saved events"


@pytest.mark.parametrize("role", sorted({r for roles in SYSTEM_ROLES.values() for r in roles}))
def test_no_staff_member_ever_holds_a_system_kind_s_role_or_action(node: Node, role: Role) -> None:
    """Threat: an administrator (or an insider with an administrator's account) giving counter staff the
    portal's reach. Enrolling or granting a system role to staff, and granting ``read_portal`` (or changing a
    system role's actions), are refused with ``system_role`` and record nothing."""
    admin = Actor(B, "admin")
    before = node.app.max_position()
    attempts: list[Callable[[], Any]] = [
        lambda: node.app.enroll_staff(admin, fresh_name(), "clerk", ["counter", role.value]),
        lambda: node.app.grant_role(admin, "counter", role.value),
        lambda: node.app.grant_permission(admin, "counter", Action.READ_PORTAL.value),
        lambda: node.app.grant_permission(admin, role.value, Action.COUNTER_LOOKUP.value),
        lambda: node.app.revoke_permission(admin, role.value, next(iter(DEFAULT_PERMISSIONS[role])).value),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied) as refused:
            attempt()
        assert refused.value.code == "system_role"
    assert node.app.max_position() == before


def test_a_system_account_is_never_a_staff_member(node: Node) -> None:
    """Threat: a system caller (its secret stolen from the portal) reading staff views, or a name shared by a
    clerk and the portal. Staff views refuse a system account (``staff_only``); names never collide."""
    portal = Actor(B, probe(Role.PORTAL))
    for read in (
        lambda: views.nationwide_view(node, portal, individual_number()),
        lambda: views.work_queue(node, portal),
        lambda: views.agency_flag_state(node, portal, None),
    ):
        with pytest.raises(PermissionDenied) as refused:
            read()
        assert refused.value.code == "staff_only"
    with pytest.raises(FlagLedgerError):
        node.app.enroll_staff(Actor(B, "admin"), probe(Role.PORTAL), "clerk", ["counter"])
    with pytest.raises(FlagLedgerError):
        node.app.enroll_system_account(Actor(B, "admin"), "counter", "portal")
