"""The one place that wires a node: configuration → keys → ledger → projections.

Nothing connects to a database at import time; :func:`open_node` does, and :meth:`Node.close` lets go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ledger import clock as wall_clock
from ledger.app import Actor, FlagLedger
from ledger.capacity import Capacity, PoolSizes
from ledger.domain.types import agency_code
from ledger.errors import ConfigurationError
from ledger.log.signing import KeyRecord, Signer
from ledger.log.stream_ids import StreamIds
from ledger.runtime.config import AgencyEntry, NodeConfig
from ledger.runtime.keystore import Keys, KeyStore, open_keystore
from ledger.runtime.link_settings import NumberLinkSettings
from ledger.runtime.linkage import attach as attach_linkage
from ledger.runtime.linkage import hub_mode, pseudonymizer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from projections.base import Projection, Projector
    from projections.verified import VerifiedState

__all__ = ["AgencySpec", "Node", "add_agency", "init_node", "open_node"]

log = logging.getLogger("flagledger.bootstrap")


@dataclass(frozen=True)
class AgencySpec:
    code: str
    name: str
    kind: str
    administrator: str = "admin"
    approvals_required: int = 1
    # the agency's second administrator, made at set-up like the first: privileged role grants take two
    # administrators (docs/staff.md); without one only a prefecture's break-glass co-approval can grant them
    second_administrator: str | None = None


@dataclass
class Node:
    config: NodeConfig
    app: FlagLedger
    engine: Engine
    projector: Projector
    state: VerifiedState  # what security decisions read: derived from verified events (projections.verified)
    keys: Keys  # every secret of the node (ledger.runtime.keystore)
    extra: dict[str, object] = field(default_factory=dict)

    def close(self) -> None:
        self.engine.dispose()
        self.app.close()
        if self.app.signed_mapper.data_keys is not None:
            self.app.signed_mapper.data_keys.close()


def _signers_and_anchors(config: NodeConfig, keys: Keys) -> tuple[dict[str, Signer], list[KeyRecord]]:
    signers: dict[str, Signer] = {}
    anchors: list[KeyRecord] = []
    for entry in config.agencies:
        for k in entry.keys:
            anchors.append(KeyRecord(entry.code, k["key_id"], k["public_hex"], datetime.fromisoformat(k["valid_from"])))
        if entry.keys:
            current = entry.current_key
            signers[entry.code] = keys.signer(entry.code, current["file"])
    return signers, anchors


def default_projections() -> list[Projection]:
    from projections.registry import all_projections

    return all_projections()


def open_node(
    data_dir: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    projections: Sequence[Projection] | None = None,
    pools: PoolSizes | None = None,
    audit: bool = False,
    keystore: KeyStore | None = None,
) -> Node:
    """Open the node of ``data_dir``. ``pools``: the PostgreSQL connections of each of its two pools (default:
    the configured capacity, for a process serving requests; one-shot commands pass ``ONE_SHOT``). ``audit``: for
    ``audit verify`` (reads envelope v1; a key event that fails is left for the audit to name). ``keystore``: the
    node's secrets from this store instead of the configured one (ledger.runtime.keystore.open_keystore)."""
    from projections.base import Projector, create_engine
    from projections.proxy_index import ProxyIndex
    from projections.verified import VerifiedState
    from projections.year_rows import YearRows

    config = NodeConfig.load(data_dir)
    # read before anything opens: a bad cut-over refuses the start, never runs the node without it
    cutover = NumberLinkSettings.from_linkage(config.linkage).cutover()
    config.secure_files()
    if pools is None:
        pools = Capacity.from_config(config).pools
    # an agency in hub mode never reads the national pseudonym secret (Keys refuses it there)
    keys = Keys(keystore if keystore is not None else open_keystore(config), national=not hub_mode(config))
    signers, anchors = _signers_and_anchors(config, keys)
    kwargs = {"clock": clock} if clock is not None else {}
    app = FlagLedger(
        config.ledger_env(pools, keys.cipher_key() if config.encryption else None),
        signers=signers,
        anchors=anchors,
        pseudonymizer=pseudonymizer(config, keys),  # the shared pseudonym, or the agency's own codes (hub mode)
        ids=StreamIds(keys.id_keys(entry.code for entry in config.agencies)),
        audit=audit,
        **kwargs,
    )
    from ledger.runtime.subject_keys import open_data_keys

    app.signed_mapper.data_keys = open_data_keys(config.data_dir, keys)
    app.old_links_refused_from = cutover
    engine = create_engine(config.views_url(), pools)
    projector = Projector(app, engine, projections if projections is not None else default_projections())
    # the operational tables migrated to head, then any projection whose definition changed recreated
    from ledger.runtime.migrations import upgrade

    upgrade(engine)
    # (`audit verify` reads the log itself and changes no view: a rebuild would stop at what it must name)
    stale = projector.create_tables() if audit else projector.sync_schema()
    # the request path decides from the verified log, not from rows of the views database
    state = VerifiedState(app)
    app.flag_state = state
    app.proxy_index = ProxyIndex(projector, engine)
    app.year_rows = YearRows(projector, engine)  # the year's listings' candidates (not its guards')
    if stale:
        _rebuild(projector, stale)
    node = Node(config, app, engine, projector, state, keys)
    attach_linkage(node)
    return node


def _rebuild(projector: Projector, names: Sequence[str]) -> None:
    """Rebuild the recreated projections now, with their progress logged, rather than in the first request."""
    from ledger.errors import FlagLedgerError

    try:
        projector.rebuild_stale(names)
    except FlagLedgerError as exc:  # a log that does not verify: each read of the views names it from now on
        log.error("rebuilding %s stopped: %s [%s]", ", ".join(names), exc, exc.code)


def _new_key(keys: Keys, code: str, valid_from: datetime, existing: Path | None = None) -> dict[str, str]:
    # a key generated in the deployment's secret store (e.g. a Compose or Kubernetes secret) stays there:
    # config.json records its name in the key store (with the file backend, where it is mounted)
    name, signer = keys.new_signer(code, adopt=existing)
    return {
        "key_id": signer.key_id,
        "public_hex": signer.public_raw.hex(),
        "valid_from": valid_from.isoformat(),
        "file": name,
    }


def init_node(
    data_dir: Path,
    agencies: Sequence[AgencySpec],
    *,
    database_url: str | None = None,
    encryption: bool = True,
    pseudonym_key_file: Path | None = None,
    clock: Callable[[], datetime] | None = None,
    signing_key_file: Path | None = None,
    pools: PoolSizes | None = None,
    keystore: KeyStore | None = None,
    linkage_hub: object = None,
) -> Node:
    """Create a data directory hosting ``agencies``: keys, secrets, config, and their registration events.

    ``linkage_hub`` (the hub's exported directory entry): the node starts in linkage hub mode with it, and the
    national pseudonym secret is never made (docs/linkage.md, key hygiene).

    ``signing_key_file`` (one agency only): adopt that Ed25519 PEM instead of generating a key. ``keystore``: the
    secrets in this store instead of the configured one (then pass it to every ``open_node`` too).
    """
    for spec in agencies:  # before anything is written
        agency_code(spec.code)
    if signing_key_file is not None and len(agencies) != 1:
        raise ConfigurationError("a signing key file can be given for exactly one agency")
    if (data_dir / "config.json").exists():
        raise ConfigurationError(f"{data_dir} is already initialised; use `flagledger agency add` to host more")
    config = NodeConfig(data_dir=data_dir, database_url=database_url, encryption=encryption)
    config.apply_environment()
    if linkage_hub is not None:
        from ledger.runtime.agency_entry import take_hub_entry

        if len(agencies) != 1:
            raise ConfigurationError("a node in linkage hub mode hosts exactly one agency")
        config.linkage = {"mode": "hub"}
        take_hub_entry(config, linkage_hub)  # checked whole; saves config.json
    store = keystore if keystore is not None else open_keystore(config)
    Keys(store, national=not hub_mode(config)).create_missing(pseudonym_key_file)
    config.save()
    codes: dict[str, str] = {}
    for spec in agencies:
        added = add_agency(
            data_dir, spec, clock=clock, signing_key_file=signing_key_file, pools=pools, keystore=keystore
        )
        codes.update(added.app.first_codes)  # each first administrator's one-time code, for `init` to print
        added.close()
    node = open_node(data_dir, clock=clock, pools=pools, keystore=keystore)
    node.app.first_codes.update(codes)
    return node


def add_agency(
    data_dir: Path,
    spec: AgencySpec,
    *,
    clock: Callable[[], datetime] | None = None,
    signing_key_file: Path | None = None,
    pools: PoolSizes | None = None,
    keystore: KeyStore | None = None,
) -> Node:
    config = NodeConfig.load(data_dir)
    agency_code(spec.code)  # before it names any secret
    if any(a.code == spec.code for a in config.agencies):
        raise ConfigurationError(f"agency {spec.code} is already hosted in {data_dir}")
    now = (clock or wall_clock.now)()
    keys = Keys(keystore if keystore is not None else open_keystore(config))
    keys.create_id_key(spec.code)
    # valid a little before now so events stamped in the same second by a skewed clock still verify
    config.agencies.append(
        AgencyEntry(code=spec.code, keys=[_new_key(keys, spec.code, now - timedelta(minutes=5), signing_key_file)])
    )
    config.save()
    node = open_node(data_dir, clock=clock, pools=pools, keystore=keystore)
    node.app.register_agency(
        spec.code,
        spec.name,
        spec.kind,
        administrator=spec.administrator,
        approvals_required=spec.approvals_required,
        second_administrator=spec.second_administrator,
    )
    return node


def rotate_key(node: Node, actor: Actor, signing_key_file: Path | None = None) -> str:
    """Generate (or adopt ``signing_key_file``) a new key for the actor's agency, announce it, make it current."""
    now = node.app.clock()
    entry = node.config.agency(actor.agency)
    new = _new_key(node.keys, actor.agency, now, signing_key_file)
    signer = node.keys.signer(actor.agency, new["file"])
    node.app.rotate_key(actor, signer, now)
    entry.keys.append(new)
    node.config.save()
    return signer.key_id
