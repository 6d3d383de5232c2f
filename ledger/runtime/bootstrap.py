"""The one place that wires a node: configuration → keys → ledger → projections.

Nothing connects to a database at import time; :func:`open_node` does, and :meth:`Node.close` lets go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ledger import clock as wall_clock
from ledger.app import Actor, FlagLedger
from ledger.app.capacity import Capacity, PoolSizes
from ledger.domain.types import agency_code
from ledger.errors import ConfigurationError
from ledger.log.pseudonym import Pseudonymizer
from ledger.log.signing import KeyRecord, Signer
from ledger.log.stream_ids import StreamIds
from ledger.runtime.config import AgencyEntry, NodeConfig

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from projections.base import Projection, Projector
    from projections.verified import VerifiedState

__all__ = ["AgencySpec", "Node", "add_agency", "init_node", "open_node"]


@dataclass(frozen=True)
class AgencySpec:
    code: str
    name: str
    kind: str
    administrator: str = "admin"
    approvals_required: int = 1


@dataclass
class Node:
    config: NodeConfig
    app: FlagLedger
    engine: Engine
    projector: Projector
    state: VerifiedState  # what security decisions read: derived from verified events (projections.verified)
    extra: dict[str, object] = field(default_factory=dict)

    def close(self) -> None:
        self.engine.dispose()
        self.app.close()


def _signers_and_anchors(config: NodeConfig) -> tuple[dict[str, Signer], list[KeyRecord]]:
    signers: dict[str, Signer] = {}
    anchors: list[KeyRecord] = []
    for entry in config.agencies:
        for k in entry.keys:
            anchors.append(
                KeyRecord(entry.code, k["key_id"], k["public_hex"], datetime.fromisoformat(k["valid_from"]))
            )
        if entry.keys:
            current = entry.current_key
            signers[entry.code] = Signer.load(entry.code, config.secrets_dir / current["file"])
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
) -> Node:
    """Open the node of ``data_dir``. ``pools``: the PostgreSQL connections of each of its two pools (default:
    the configured capacity, for a process serving requests; one-shot commands pass ``ONE_SHOT``). ``audit``: for
    ``audit verify`` (reads envelope v1; a key event that fails is left for the audit to name)."""
    from projections.base import Projector, create_engine
    from projections.proxy_index import ProxyIndex
    from projections.verified import VerifiedState

    config = NodeConfig.load(data_dir)
    config.secure_files()
    if pools is None:
        pools = Capacity.from_config(config).pools
    signers, anchors = _signers_and_anchors(config)
    kwargs = {"clock": clock} if clock is not None else {}
    app = FlagLedger(
        config.ledger_env(pools),
        signers=signers,
        anchors=anchors,
        pseudonymizer=Pseudonymizer(config.pseudonym_secret()),
        ids=StreamIds(config.id_keys()),
        audit=audit,
        **kwargs,
    )
    engine = create_engine(config.views_url(), pools)
    projector = Projector(app, engine, projections if projections is not None else default_projections())
    projector.create_tables()
    # the request path decides from the verified log, not from rows of the views database
    state = VerifiedState(app)
    app.flag_state = state
    app.proxy_index = ProxyIndex(projector, engine)
    return Node(config, app, engine, projector, state)


def _new_key(
    config: NodeConfig, code: str, valid_from: datetime, existing: Path | None = None
) -> dict[str, str]:
    if existing is not None:
        # a key generated in the deployment's secret store (e.g. a Compose or Kubernetes secret) stays there:
        # config.json records where it is mounted, never its bytes
        signer = Signer.load(code, existing)
        fname = str(existing.absolute())
    else:
        signer = Signer.generate(code)
        fname = f"{code}-{signer.key_id.split(':')[1]}.pem"
        config.ensure_secrets_dir()
        signer.save(config.secrets_dir / fname)
    return {
        "key_id": signer.key_id,
        "public_hex": signer.public_raw.hex(),
        "valid_from": valid_from.isoformat(),
        "file": fname,
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
) -> Node:
    """Create a data directory hosting ``agencies``: keys, secrets, config, and their registration events.

    ``signing_key_file`` (one agency only): adopt that Ed25519 PEM instead of generating a key.
    """
    for spec in agencies:  # before anything is written
        agency_code(spec.code)
    if signing_key_file is not None and len(agencies) != 1:
        raise ConfigurationError("a signing key file can be given for exactly one agency")
    if (data_dir / "config.json").exists():
        raise ConfigurationError(
            f"{data_dir} is already initialised; use `flagledger agency add` to host more"
        )
    config = NodeConfig(data_dir=data_dir, database_url=database_url, encryption=encryption)
    config.apply_environment()
    config.ensure_secrets_dir()
    config.create_missing_secrets(pseudonym_key_file)
    config.save()
    for spec in agencies:
        add_agency(data_dir, spec, clock=clock, signing_key_file=signing_key_file, pools=pools).close()
    return open_node(data_dir, clock=clock, pools=pools)


def add_agency(
    data_dir: Path,
    spec: AgencySpec,
    *,
    clock: Callable[[], datetime] | None = None,
    signing_key_file: Path | None = None,
    pools: PoolSizes | None = None,
) -> Node:
    config = NodeConfig.load(data_dir)
    agency_code(spec.code)  # before it names any file under secrets/
    if any(a.code == spec.code for a in config.agencies):
        raise ConfigurationError(f"agency {spec.code} is already hosted in {data_dir}")
    now = (clock or wall_clock.now)()
    config.create_id_key(spec.code)
    # valid a little before now so events stamped in the same second by a skewed clock still verify
    config.agencies.append(
        AgencyEntry(
            code=spec.code, keys=[_new_key(config, spec.code, now - timedelta(minutes=5), signing_key_file)]
        )
    )
    config.save()
    node = open_node(data_dir, clock=clock, pools=pools)
    node.app.register_agency(
        spec.code,
        spec.name,
        spec.kind,
        administrator=spec.administrator,
        approvals_required=spec.approvals_required,
    )
    return node


def rotate_key(node: Node, actor: Actor, signing_key_file: Path | None = None) -> str:
    """Generate (or adopt ``signing_key_file``) a new key for the actor's agency, announce it, make it current."""
    now = node.app.clock()
    entry = node.config.agency(actor.agency)
    new = _new_key(node.config, actor.agency, now, signing_key_file)
    signer = Signer.load(actor.agency, node.config.secrets_dir / new["file"])
    node.app.rotate_key(actor, signer, now)
    entry.keys.append(new)
    node.config.save()
    return signer.key_id
