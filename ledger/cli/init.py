"""``flagledger init``: a new data directory, its keys and the first hosted agency."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.capacity import ONE_SHOT
from ledger.cli.base import adopt, command, data_dir, data_dir_text, out
from ledger.cli.parsing import PATH, WHOLE, OneOf, choices, option
from ledger.domain.types import AgencyKind
from ledger.errors import InputError
from ledger.runtime.bootstrap import AgencySpec, init_node
from ledger.runtime.roles import ROLES, init_role


def agency_options(fn: Callable[..., Any], required: bool = True) -> Callable[..., Any]:
    """What defines a hosted agency (``init`` and ``agency add``; ``init --role hub|portal`` needs none)."""
    for decorate in reversed(
        (
            option("--agency", required=required, help="agency code (6-digit local government code)"),
            option("--name", required=required),
            option("--kind", required=required, type=choices(AgencyKind)),
            option("--admin", default="admin", help="first administrator's staff id"),
            option(
                "--second-admin",
                default=None,
                help="second administrator's staff id: granting approver, operator, reviewer or administrator "
                "takes two (docs/staff.md)",
            ),
            option("--approvals", type=WHOLE, default=1, help="approvals needed per request (default 1)"),
            option(
                "--signing-key-file",
                type=PATH,
                default=None,
                help="adopt this Ed25519 private key (PEM, e.g. a mounted secret) instead of generating one",
            ),
        )
    ):
        fn = decorate(fn)
    return fn


@command(None, "init", help="create a data directory, keys and the first hosted agency (or a hub's, a portal's)")
@functools.partial(agency_options, required=False)
@option("--database-url", default=None, help="postgresql://user@host:port/db (default: embedded SQLite)")
@option("--no-encryption", is_flag=True, help="store events without at-rest encryption")
@option("--pseudonym-key-file", type=PATH, default=None, help="the deployment's shared pseudonym secret")
@option(
    "--role",
    type=OneOf(ROLES),
    default="agency",
    help="agency (default), or the linkage's hub, portal or witness (named by --agency): its own keys and "
    "database, no agency (docs/linkage.md, docs/accountable-hub.md)",
)
@option("--topic-prefix", default=None, help="hub or portal: the linkage topics' prefix (default flagledger.linkage)")
@option(
    "--linkage-hub",
    type=PATH,
    default=None,
    help="an agency: start in linkage hub mode with the hub's exported entry (FILE); no national pseudonym "
    "secret is made (docs/linkage.md)",
)
def init(
    agency: str | None,
    name: str | None,
    kind: str | None,
    admin: str,
    second_admin: str | None,
    approvals: int,
    signing_key_file: Path | None,
    database_url: str | None,
    no_encryption: bool,
    pseudonym_key_file: Path | None,
    role: str,
    topic_prefix: str | None,
    linkage_hub: Path | None,
) -> int:
    where = data_dir()
    if role != "agency":
        made = init_role(where, role, database_url, topic_prefix, agency or "")
        out({"data_dir": data_dir_text(), "role": role, "key_id": made.keys.signer.key_id})
        print(
            f"next: flagledger linkage directory export > {made.keys.name}.json, hand it to the other parties, and "
            f"import theirs with flagledger linkage directory import FILE",
            file=sys.stderr,
        )
        return 0
    if agency is None or name is None or kind is None:
        raise InputError("an agency's init needs --agency, --name and --kind", field="agency")
    hub_entry = None if linkage_hub is None else _read_entry(linkage_hub)
    node = adopt(
        init_node(
            where,
            [AgencySpec(agency, name, kind, admin, approvals, second_admin)],
            database_url=database_url,
            encryption=not no_encryption,
            pseudonym_key_file=pseudonym_key_file,
            signing_key_file=signing_key_file,
            pools=ONE_SHOT,
            linkage_hub=hub_entry,
        )
    )
    out(
        {
            "data_dir": data_dir_text(),
            "agency": agency,
            "administrator": f"{agency}/{admin}",
            **({"second_administrator": f"{agency}/{second_admin}"} if second_admin else {}),
            "key_id": node.app.signers[agency].key_id,
            # shown once: the administrator runs `flagledger staff activate --as AGENCY/ADMIN --code CODE`
            "enrolment_code": node.app.first_codes.get(agency),
        }
    )
    print(
        f"next: flagledger staff activate --as {agency}/{admin} --code CODE (choose a password), "
        f"then flagledger login --as {agency}/{admin}",
        file=sys.stderr,
    )
    return 0


def _read_entry(file: Path) -> object:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read the hub's entry from the file: {type(exc).__name__}", field="linkage_hub"
        ) from exc
