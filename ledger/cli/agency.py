"""``flagledger agency add|list|trust``: the agencies this node hosts, and the peers it trusts."""

from __future__ import annotations

from pathlib import Path

from ledger.app import Actor
from ledger.capacity import ONE_SHOT
from ledger.cli.base import adopt, as_actor, command, data_dir, group, node, out
from ledger.cli.init import agency_options
from ledger.cli.parsing import choices, option
from ledger.domain.types import AgencyKind, parse_moment
from ledger.runtime.bootstrap import AgencySpec, add_agency

agency = group("agency", "hosted agencies, and the peers whose keys this node trusts")


@command(agency, "add", help="host another agency on this node")
@agency_options
def add(
    agency: str,
    name: str,
    kind: str,
    admin: str,
    second_admin: str | None,
    approvals: int,
    signing_key_file: Path | None,
) -> int:
    spec = AgencySpec(agency, name, kind, admin, approvals, second_admin)
    hosting = adopt(add_agency(data_dir(), spec, signing_key_file=signing_key_file, pools=ONE_SHOT))
    code = hosting.app.first_codes.get(agency)  # shown once, as by `init`
    out({"agency": agency, "key_id": hosting.app.signers[agency].key_id, "enrolment_code": code})
    return 0


@command(agency, "list", help="list hosted agencies")
def list_() -> int:
    app = node().app
    for code in sorted(app.hosted):
        a = app.agency(code)
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


@command(agency, "trust", help="vouch for another agency's first signing key (exchanged out of band; see `key list`)")
@as_actor()
@option("--agency", required=True)
@option("--name", required=True)
@option("--kind", required=True, type=choices(AgencyKind))
@option("--key-id", required=True)
@option("--public-key", required=True, help="hex of the raw Ed25519 public key")
@option("--valid-from", required=True, help="ISO 8601 time with UTC offset the key became valid (see `key list`)")
def trust(actor: Actor, agency: str, name: str, kind: str, key_id: str, public_key: str, valid_from: str) -> int:
    since = parse_moment(valid_from, "--valid-from")
    node().app.register_remote_agency(actor, agency, name, kind, key_id, public_key, since)
    out({"trusted": agency, "key_id": key_id})
    return 0
