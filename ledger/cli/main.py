"""The ``flagledger`` console command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger.app import Actor
from ledger.app.capacity import ONE_SHOT, PoolSizes
from ledger.cli.parsing import SafeParser
from ledger.domain.types import (
    Action,
    AgencyKind,
    Applicant,
    Flag,
    Reason,
    RequestKind,
    Role,
    parse_day,
    parse_moment,
)
from ledger.errors import (
    ConfigurationError,
    FlagLedgerError,
    InputError,
    IntegrityError,
    NotFoundError,
    PermissionDenied,
    RuleViolation,
    StorageError,
)
from ledger.files import private_umask
from ledger.runtime.bootstrap import AgencySpec, Node, add_agency, init_node, open_node, rotate_key

EXIT = {
    NotFoundError: 3,
    PermissionDenied: 4,
    RuleViolation: 5,
    IntegrityError: 6,
    StorageError: 7,
    ConfigurationError: 7,
    InputError: 2,
}

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Handler] = {}


def out(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str, indent=None))


def progress_printer(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        print(f"\r{label}: {done}/{total} ({pct:5.1f}%)", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)

    return show


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError("not a request/case id (UUID)") from None


def _date(value: str) -> date:
    """argparse names the option; the message never repeats what was typed."""
    try:
        return parse_day(value, "the date")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _proposal_version(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 10 and 1 <= int(value) < 2**31):
        raise argparse.ArgumentTypeError("not a proposal version (a positive whole number from `view queue`)")
    return int(value)


def _actor(value: str) -> Actor:
    try:
        return Actor.parse(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _node(args: argparse.Namespace, pools: PoolSizes | None = ONE_SHOT) -> Node:
    """The node, holding one database connection per pool (a one-shot command); a process serving many
    requests passes ``pools=None`` for its configured capacity (``ledger.app.capacity``)."""
    node = open_node(Path(args.data_dir), pools=pools)
    args._node = node
    return node


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return register


# -- set-up ----------------------------------------------------------------------------------------
@command("init")
def _init(args: argparse.Namespace) -> int:
    spec = AgencySpec(args.agency, args.name, args.kind, args.admin, args.approvals)
    node = init_node(
        Path(args.data_dir),
        [spec],
        database_url=args.database_url,
        encryption=not args.no_encryption,
        pseudonym_key_file=args.pseudonym_key_file,
        signing_key_file=args.signing_key_file,
        pools=ONE_SHOT,
    )
    args._node = node
    signer = node.app.signers[args.agency]
    out(
        {
            "data_dir": str(args.data_dir),
            "agency": args.agency,
            "administrator": f"{args.agency}/{args.admin}",
            "key_id": signer.key_id,
        }
    )
    return 0


@command("agency add")
def _agency_add(args: argparse.Namespace) -> int:
    node = add_agency(
        Path(args.data_dir),
        AgencySpec(args.agency, args.name, args.kind, args.admin, args.approvals),
        signing_key_file=args.signing_key_file,
        pools=ONE_SHOT,
    )
    args._node = node
    out({"agency": args.agency, "key_id": node.app.signers[args.agency].key_id})
    return 0


@command("agency trust")
def _agency_trust(args: argparse.Namespace) -> int:
    valid_from = parse_moment(args.valid_from, "--valid-from")
    _node(args).app.register_remote_agency(
        args.actor, args.agency, args.name, args.kind, args.key_id, args.public_key, valid_from
    )
    out({"trusted": args.agency, "key_id": args.key_id})
    return 0


@command("agency list")
def _agency_list(args: argparse.Namespace) -> int:
    node = _node(args)
    for code in sorted(node.app.hosted):
        a = node.app.agency(code)
        out(
            {
                "code": a.code,
                "name": a.name,
                "kind": a.kind,
                "approvals_required": a.approvals_required,
                "permissions": a.permissions,
            }
        )
    return 0


@command("staff enroll")
def _staff_enroll(args: argparse.Namespace) -> int:
    _node(args).app.enroll_staff(args.actor, args.staff, args.name or args.staff, args.role)
    out({"enrolled": f"{args.actor.agency}/{args.staff}", "roles": sorted(set(args.role))})
    return 0


@command("staff grant-role")
def _staff_grant(args: argparse.Namespace) -> int:
    _node(args).app.grant_role(args.actor, args.staff, args.role)
    return 0


@command("staff revoke-role")
def _staff_revoke(args: argparse.Namespace) -> int:
    _node(args).app.revoke_role(args.actor, args.staff, args.role)
    return 0


@command("staff deactivate")
def _staff_deactivate(args: argparse.Namespace) -> int:
    _node(args).app.deactivate_staff(args.actor, args.staff)
    return 0


@command("permission grant")
def _perm_grant(args: argparse.Namespace) -> int:
    _node(args).app.grant_permission(args.actor, args.role, args.action)
    return 0


@command("permission revoke")
def _perm_revoke(args: argparse.Namespace) -> int:
    _node(args).app.revoke_permission(args.actor, args.role, args.action)
    return 0


@command("policy approvals")
def _policy(args: argparse.Namespace) -> int:
    _node(args).app.set_approval_policy(args.actor, args.count)
    return 0


@command("key rotate")
def _key_rotate(args: argparse.Namespace) -> int:
    out({"key_id": rotate_key(_node(args), args.actor, args.signing_key_file)})
    return 0


@command("key revoke")
def _key_revoke(args: argparse.Namespace) -> int:
    _node(args).app.revoke_key(args.actor, args.key_id, args.reason)
    return 0


@command("key list")
def _key_list(args: argparse.Namespace) -> int:
    for r in _node(args).app.keyring.records():
        out(
            {
                "agency": r.agency,
                "key_id": r.key_id,
                "public_hex": r.public_hex,
                "valid_from": r.valid_from,
                "valid_until": r.valid_until,
                "revoked_from": r.revoked_from,
            }
        )
    return 0


# -- workflows ---------------------------------------------------------------------------------------
@command("case open")
def _case_open(args: argparse.Namespace) -> int:
    case_id = _node(args).app.open_case(
        args.actor,
        args.victim,
        perpetrators=args.perpetrator,
        reason=args.reason,
        checklist={c: True for c in args.check},
        proxies_to_cancel=args.proxy,
        notes=args.notes,
    )
    out({"case_id": str(case_id)})
    return 0


@command("flag request")
def _flag_request(args: argparse.Namespace) -> int:
    rid = _node(args).app.request_flags(
        args.actor,
        args.subject,
        args.flag,
        kind=args.kind,
        reason=args.reason,
        review_date=args.review_date,
        case_id=args.case,
        explanation=args.explanation,
        body_request_id=args.body_request,
    )
    out({"request_id": str(rid), "status": "pending"})
    return 0


@command("flag approve")
def _flag_approve(args: argparse.Namespace) -> int:
    status = _node(args).app.approve_request(args.actor, args.request_id, args.note)
    out({"request_id": str(args.request_id), "status": status})
    return 0


@command("flag reject")
def _flag_reject(args: argparse.Namespace) -> int:
    _node(args).app.reject_request(args.actor, args.request_id, args.reason)
    out({"request_id": str(args.request_id), "status": "rejected"})
    return 0


@command("flag execute")
def _flag_execute(args: argparse.Namespace) -> int:
    app = _node(args).app
    app.execute_request(args.actor, args.request_id)
    r = app.flag_request(args.request_id)
    out({"request_id": str(args.request_id), "status": r.status, "kind": r.kind, "flags": r.flags})
    return 0


@command("flag show")
def _flag_show(args: argparse.Namespace) -> int:
    node = _node(args)
    app = node.app
    app.authorise(args.actor, Action.COUNTER_LOOKUP)
    state = app.flag_state.flags_for(app.subject(args.subject)) if app.flag_state else {}
    out({"subject": app.subject(args.subject), "protected": bool(state), "flags": sorted(state)})
    return 0


@command("body send")
def _body_send(args: argparse.Namespace) -> int:
    bid = _node(args).app.send_body_request(
        args.actor, args.municipality, args.subject, args.flag, args.reason
    )
    out({"body_request_id": str(bid)})
    return 0


@command("provision request")
def _prov_request(args: argparse.Namespace) -> int:
    ans = _node(args).app.request_provision(
        args.actor,
        args.provider,
        args.subject,
        legal_item=args.item,
        procedure=args.procedure,
        info_kind=args.info_kind,
        applicant=args.applicant,
    )
    out({"request_id": ans.request_id, "status": ans.status, "message": ans.message})
    return 0


@command("provision propose")
def _prov_propose(args: argparse.Namespace) -> int:
    _node(args).app.propose_decision(
        args.actor, args.request_id, args.decision, args.applicant_check, args.note
    )
    return 0


@command("provision approve")
def _prov_approve(args: argparse.Namespace) -> int:
    status = _node(args).app.approve_decision(args.actor, args.request_id, args.proposal)
    out({"request_id": str(args.request_id), "status": status})
    return 0


@command("provision status")
def _prov_status(args: argparse.Namespace) -> int:
    ans = _node(args).app.provision_answer(args.actor, args.request_id)
    out({"request_id": ans.request_id, "status": ans.status, "message": ans.message})
    return 0


@command("identity link")
def _identity_link(args: argparse.Namespace) -> int:
    old, new = _node(args).app.link_numbers(args.actor, args.old, args.new)
    out({"old": old, "new": new})
    return 0


@command("proxy register")
def _proxy_register(args: argparse.Namespace) -> int:
    _node(args).app.register_proxy(args.actor, args.subject, args.proxy)
    return 0


@command("proxy cancel")
def _proxy_cancel(args: argparse.Namespace) -> int:
    _node(args).app.cancel_proxy(args.actor, args.subject, args.proxy, args.reason)
    return 0


# -- audit, projections ------------------------------------------------------------------------------
@command("audit verify")
def _audit_verify(args: argparse.Namespace) -> int:
    from ledger.audit.verify import verify_log

    trusted = []
    if args.checkpoint:
        from ledger.cli.audit_proofs import load_checkpoint

        trusted = [load_checkpoint(f) for f in args.checkpoint]
    # opened for the audit: a log in envelope v1 is read, a key event that fails is named below
    args._node = open_node(Path(args.data_dir), pools=ONE_SHOT, audit=True)
    app = args._node.app
    report = verify_log(
        app, progress=None if args.quiet else progress_printer("verify"), trusted=trusted, workers=args.workers
    )
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
        }
    )
    return 0


@command("projections rebuild")
def _proj_rebuild(args: argparse.Namespace) -> int:
    node = _node(args)
    names = args.name or None
    if names:
        unknown = set(names) - set(node.projector.by_name)
        if unknown:
            raise InputError(
                f"unknown projection {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(node.projector.by_name))}"
            )
    n = node.projector.rebuild(names, progress=progress_printer("rebuild"))
    out({"rebuilt": names or sorted(node.projector.by_name), "events": n})
    return 0


# -- parser -----------------------------------------------------------------------------------------------
def _choices(enum: Any) -> list[str]:
    return [m.value for m in enum]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=os.environ.get("FLAGLEDGER_DATA_DIR", "./flagledger-data"),
        help="node data directory (env FLAGLEDGER_DATA_DIR; default ./flagledger-data)",
    )
    p = SafeParser(prog="flagledger", description=__doc__, parents=[common])
    groups = p.add_subparsers(dest="group", required=True, metavar="COMMAND")
    # sub-commands accept --data-dir too, without their default overriding one given before the sub-command
    inner = argparse.ArgumentParser(add_help=False)
    inner.add_argument("--data-dir", default=argparse.SUPPRESS, help="node data directory")

    def sub(parent: Any, name: str, help_: str) -> argparse.ArgumentParser:
        s: argparse.ArgumentParser = parent.add_parser(name, help=help_, parents=[inner])
        return s

    def actor(s: argparse.ArgumentParser) -> None:
        s.add_argument(
            "--as",
            dest="actor",
            type=_actor,
            required=True,
            metavar="AGENCY/STAFF",
            help="who acts, e.g. 131016/tanaka",
        )

    def agency_args(s: argparse.ArgumentParser) -> None:
        s.add_argument("--agency", required=True, help="agency code (6-digit local government code)")
        s.add_argument("--name", required=True)
        s.add_argument("--kind", required=True, choices=_choices(AgencyKind))
        s.add_argument("--admin", default="admin", help="first administrator's staff id")
        s.add_argument("--approvals", type=int, default=1, help="approvals needed per request (default 1)")
        s.add_argument(
            "--signing-key-file",
            type=Path,
            default=None,
            help="adopt this Ed25519 private key (PEM, e.g. a mounted secret) instead of generating one",
        )

    s = sub(groups, "init", "create a data directory, keys and the first hosted agency")
    agency_args(s)
    s.add_argument(
        "--database-url", default=None, help="postgresql://user@host:port/db (default: embedded SQLite)"
    )
    s.add_argument("--no-encryption", action="store_true", help="store events without at-rest encryption")
    s.add_argument(
        "--pseudonym-key-file", type=Path, default=None, help="the deployment's shared pseudonym secret"
    )
    s.set_defaults(cmd="init")

    g = sub(groups, "agency", "hosted agencies").add_subparsers(dest="sub", required=True)
    s = sub(g, "add", "host another agency on this node")
    agency_args(s)
    s.set_defaults(cmd="agency add")
    sub(g, "list", "list hosted agencies").set_defaults(cmd="agency list")
    s = sub(g, "trust", "vouch for another agency's first signing key (exchanged out of band; see `key list`)")
    actor(s)
    s.add_argument("--agency", required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--kind", required=True, choices=_choices(AgencyKind))
    s.add_argument("--key-id", required=True)
    s.add_argument("--public-key", required=True, help="hex of the raw Ed25519 public key")
    s.add_argument(
        "--valid-from", required=True, help="ISO 8601 time with UTC offset the key became valid (see `key list`)"
    )
    s.set_defaults(cmd="agency trust")

    g = sub(groups, "staff", "staff and roles").add_subparsers(dest="sub", required=True)
    GROUPS["staff"] = g
    s = sub(g, "enroll", "enrol a staff member")
    actor(s)
    s.add_argument("staff")
    s.add_argument("--name", default="")
    s.add_argument("--role", action="append", choices=_choices(Role), required=True)
    s.set_defaults(cmd="staff enroll")
    for name in ("grant-role", "revoke-role"):
        s = sub(g, name, f"{name.split('-')[0]} a role")
        actor(s)
        s.add_argument("staff")
        s.add_argument("role", choices=_choices(Role))
        s.set_defaults(cmd=f"staff {name}")
    s = sub(g, "deactivate", "deactivate a staff member")
    actor(s)
    s.add_argument("staff")
    s.set_defaults(cmd="staff deactivate")

    g = sub(groups, "permission", "the per-role permission table").add_subparsers(dest="sub", required=True)
    for name in ("grant", "revoke"):
        s = sub(g, name, f"{name} an action to a role")
        actor(s)
        s.add_argument("role", choices=_choices(Role))
        s.add_argument("action", choices=_choices(Action))
        s.set_defaults(cmd=f"permission {name}")

    g = sub(groups, "policy", "agency policy").add_subparsers(dest="sub", required=True)
    s = sub(g, "approvals", "set the approval chain length")
    actor(s)
    s.add_argument("count", type=int)
    s.set_defaults(cmd="policy approvals")

    g = sub(groups, "key", "signing keys").add_subparsers(dest="sub", required=True)
    s = sub(g, "rotate", "create a new signing key and retire the current one")
    actor(s)
    s.add_argument(
        "--signing-key-file", type=Path, default=None, help="adopt this new Ed25519 key (PEM, a mounted secret)"
    )
    s.set_defaults(cmd="key rotate")
    s = sub(g, "revoke", "revoke a (retired) key")
    actor(s)
    s.add_argument("key_id")
    s.add_argument("--reason", required=True)
    s.set_defaults(cmd="key revoke")
    sub(g, "list", "list known keys").set_defaults(cmd="key list")

    g = sub(groups, "case", "intake (相談受付)").add_subparsers(dest="sub", required=True)
    s = sub(g, "open", "open a protection case")
    actor(s)
    s.add_argument("--victim", required=True, help="individual number or pseudonym")
    s.add_argument("--perpetrator", action="append", default=[])
    s.add_argument("--proxy", action="append", default=[], help="proxy registrations to cancel")
    s.add_argument("--reason", default="dv", choices=_choices(Reason))
    from ledger.domain.cases import CHECKLIST_ITEMS

    s.add_argument(
        "--check", action="append", default=[], choices=CHECKLIST_ITEMS, help="checklist item done"
    )
    s.add_argument("--notes", default="")
    s.set_defaults(cmd="case open")

    g = sub(groups, "flag", "flag requests, approvals, setting and release").add_subparsers(
        dest="sub", required=True
    )
    s = sub(g, "request", "request to set, release or renew flags")
    actor(s)
    s.add_argument("--subject", required=True, help="individual number or pseudonym")
    s.add_argument("--flag", action="append", required=True, choices=_choices(Flag))
    s.add_argument("--kind", default="set", choices=_choices(RequestKind))
    s.add_argument("--reason", default="dv", choices=_choices(Reason))
    s.add_argument("--review-date", type=_date, default=None)
    s.add_argument("--case", type=_uuid, default=None)
    s.add_argument("--explanation", default="", help="explanation given to the person (release)")
    s.add_argument("--body-request", type=_uuid, default=None)
    s.set_defaults(cmd="flag request")
    s = sub(g, "approve", "approve a pending request")
    actor(s)
    s.add_argument("request_id", type=_uuid)
    s.add_argument("--note", default="")
    s.set_defaults(cmd="flag approve")
    s = sub(g, "reject", "reject a pending request")
    actor(s)
    s.add_argument("request_id", type=_uuid)
    s.add_argument("--reason", required=True)
    s.set_defaults(cmd="flag reject")
    s = sub(g, "execute", "apply an approved request (designated operator)")
    actor(s)
    s.add_argument("request_id", type=_uuid)
    s.set_defaults(cmd="flag execute")
    s = sub(g, "show", "is this person protected (counter lookup)")
    actor(s)
    s.add_argument("--subject", required=True)
    s.set_defaults(cmd="flag show")

    g = sub(groups, "body", "protection-body requests").add_subparsers(dest="sub", required=True)
    s = sub(g, "send", "ask a municipality to set flags")
    actor(s)
    s.add_argument("--municipality", required=True)
    s.add_argument("--subject", required=True)
    s.add_argument("--flag", action="append", required=True, choices=_choices(Flag))
    s.add_argument("--reason", default="dv", choices=_choices(Reason))
    s.set_defaults(cmd="body send")

    g = sub(groups, "provision", "information provision requests").add_subparsers(dest="sub", required=True)
    s = sub(g, "request", "query a providing agency about a subject")
    actor(s)
    s.add_argument("--provider", required=True)
    s.add_argument("--subject", required=True)
    s.add_argument("--item", type=int, required=True, help="table 2 item number")
    s.add_argument("--procedure", required=True)
    s.add_argument("--info-kind", required=True)
    s.add_argument("--applicant", default="unknown", choices=_choices(Applicant))
    s.set_defaults(cmd="provision request")
    s = sub(g, "propose", "propose to provide or refuse a held request")
    actor(s)
    s.add_argument("request_id", type=_uuid)
    s.add_argument("--decision", required=True, choices=["provide", "refuse"])
    s.add_argument("--applicant-check", required=True, choices=_choices(Applicant))
    s.add_argument("--note", default="")
    s.set_defaults(cmd="provision propose")
    s = sub(g, "approve", "approve the proposed decision on a held request")
    actor(s)
    s.add_argument("request_id", type=_uuid)
    s.add_argument(
        "--proposal",
        type=_proposal_version,
        required=True,
        metavar="VERSION",
        help="the proposal you approve: its proposal_version in `view queue`; one proposed again since is refused",
    )
    s.set_defaults(cmd="provision approve")
    s = sub(g, "status", "what the querying agency sees (the querying or the providing agency only)")
    actor(s)
    s.add_argument("request_id", type=_uuid)
    s.set_defaults(cmd="provision status")

    g = sub(groups, "identity", "individual-number changes").add_subparsers(dest="sub", required=True)
    s = sub(g, "link", "link an old number to the new one")
    actor(s)
    s.add_argument("--old", required=True)
    s.add_argument("--new", required=True)
    s.set_defaults(cmd="identity link")

    g = sub(groups, "proxy", "Mynaportal proxies").add_subparsers(dest="sub", required=True)
    for name in ("register", "cancel"):
        s = sub(g, name, f"{name} a proxy")
        actor(s)
        s.add_argument("--subject", required=True)
        s.add_argument("--proxy", required=True)
        if name == "cancel":
            s.add_argument("--reason", default="")
        s.set_defaults(cmd=f"proxy {name}")

    g = sub(groups, "audit", "verification, proofs, replay and reports").add_subparsers(dest="sub", required=True)
    GROUPS["audit"] = g
    s = sub(g, "verify", "check every signature and chain link")
    s.add_argument("--quiet", action="store_true")
    s.add_argument(
        "--against",
        "--checkpoint",
        dest="checkpoint",
        action="append",
        metavar="HEAD_FILE",
        help="also check a signed tree head kept outside this log (`audit head --out`, or a peer's "
        "`audit latest-checkpoint --export`): catches a truncated log; repeatable",
    )
    s.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes checking signatures (default: one per CPU; a log under 50,000 events is checked in one)",
    )
    s.set_defaults(cmd="audit verify")

    g = sub(groups, "projections", "read models").add_subparsers(dest="sub", required=True)
    s = sub(g, "rebuild", "rebuild projections from the log")
    s.add_argument("name", nargs="*")
    s.set_defaults(cmd="projections rebuild")

    for extra in EXTENSIONS:
        extra(groups, sub, actor)
    return p


Extension = Callable[
    [Any, Callable[..., argparse.ArgumentParser], Callable[[argparse.ArgumentParser], None]], None
]
EXTENSIONS: list[Extension] = []
# Sub-command groups that extension modules add to (e.g. ``GROUPS["audit"]``); filled by build_parser.
GROUPS: dict[str, Any] = {}


def _load_extensions() -> None:
    """Sub-commands that live with their package (demo, consumers) register themselves here."""
    import importlib

    for mod in (
        "ledger.cli.demo",
        "consumers.cli",
        "consumers.incident_cli",
        "ledger.cli.audit_proofs",
        "ledger.cli.audit_replay",
        "ledger.cli.views_check",
        "ledger.cli.serve",
    ):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def main(argv: Sequence[str] | None = None) -> int:
    private_umask()  # every file this process (and its children) creates: 0600, directories 0700
    _load_extensions()
    parser = build_parser()
    args = parser.parse_args(argv)
    args._node = None
    try:
        return COMMANDS[args.cmd](args)
    except FlagLedgerError as exc:
        code = next((v for k, v in EXIT.items() if isinstance(exc, k)), 1)
        print(f"flagledger: error [{exc.code}]: {exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        if args._node is not None:
            args._node.close()


if __name__ == "__main__":
    sys.exit(main())
