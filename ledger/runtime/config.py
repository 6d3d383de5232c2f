"""A node's data directory: configuration, secrets and (by default) the embedded SQLite databases.

Layout::

    DATA_DIR/                       0700; every file in it 0600 (ledger/files.py)
    DATA_DIR/config.json            hosted agencies, their key ids, database and broker settings
    DATA_DIR/secrets/               0700; signing keys (PEM), cipher key, pseudonym secret, each hosted
                                    agency's stream id key (AGENCY-id.key, see ledger.log.stream_ids) — never in git
    DATA_DIR/ledger.sqlite          the signed event log (embedded default)
    DATA_DIR/views.sqlite           projections (embedded default)

Environment overrides (:class:`NodeEnvironment`): ``FLAGLEDGER_DATA_DIR``, ``FLAGLEDGER_DATABASE_URL``
(``postgresql://user@host:port/db``), ``FLAGLEDGER_DATABASE_PASSWORD_FILE`` (the database password from a mounted
secret; never saved in config.json), ``FLAGLEDGER_ENCRYPTION`` (``on``/``off``). The secrets are read and made
through the key store (ledger.runtime.keystore; ``keys`` section, ``FLAGLEDGER_PSEUDONYM_KEY_FILE``,
``FLAGLEDGER_CIPHER_KEY_FILE``). A signing key's ``file`` in config.json is its name in the key store: with the
file backend, relative to ``secrets/`` or absolute (e.g. a mounted secret). The other sections' settings are
typed by their own models (ledger.settings).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlparse

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.capacity import ONE_SHOT, PoolSizes
from ledger.errors import ConfigurationError
from ledger.files import private_dir, private_file, write_private
from ledger.runtime.keystore import read_secret_file

__all__ = ["AgencyEntry", "NodeConfig", "NodeEnvironment", "default_data_dir"]

CONFIG_FILE = "config.json"


def _on_unless_off(value: Any) -> bool | None:
    # at-rest encryption stays on for anything but a clear "off": a typo must not switch it off
    if value is None:
        return None
    return str(value).strip().lower() not in ("0", "off", "false", "no")


class NodeEnvironment(BaseSettings):
    """The node-wide environment overrides (each section's own are in its model, ledger.settings)."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True)

    data_dir: Path = Field(Path("./flagledger-data"), validation_alias="FLAGLEDGER_DATA_DIR")
    database_url: str | None = Field(None, validation_alias="FLAGLEDGER_DATABASE_URL")
    encryption: Annotated[bool | None, BeforeValidator(_on_unless_off)] = Field(
        None, validation_alias="FLAGLEDGER_ENCRYPTION"
    )
    database_password_file: Path | None = Field(None, validation_alias="FLAGLEDGER_DATABASE_PASSWORD_FILE")

    @classmethod
    def read(cls) -> NodeEnvironment:
        none: dict[str, Any] = {}  # every field from the environment (the alias-only fields confuse mypy)
        return cls(**none)


def default_data_dir() -> Path:
    return NodeEnvironment.read().data_dir


@dataclass
class AgencyEntry:
    code: str
    keys: list[dict[str, str]] = field(default_factory=list)  # key_id, public_hex, valid_from, file

    @property
    def current_key(self) -> dict[str, str]:
        return self.keys[-1]


@dataclass
class NodeConfig:
    data_dir: Path
    agencies: list[AgencyEntry] = field(default_factory=list)
    database_url: str | None = None
    encryption: bool = True
    kafka: dict[str, Any] = field(default_factory=dict)
    observability: dict[str, Any] = field(default_factory=dict)  # metrics port, log format (ledger.node.observe)
    http: dict[str, Any] = field(default_factory=dict)  # session cookie, trusted proxy (ledger.api.settings)
    oidc: dict[str, Any] = field(default_factory=dict)  # agencies' identity providers (ledger.api.oidc)
    capacity: dict[str, Any] = field(default_factory=dict)  # connection pools, API concurrency (ledger.capacity)
    checkpoints: dict[str, Any] = field(default_factory=dict)  # tree heads: every_events, every_seconds
    keys: dict[str, Any] = field(default_factory=dict)  # the key store's backend (ledger.runtime.keystore)
    role: str = "agency"  # agency, hub or portal (ledger.runtime.roles)
    linkage: dict[str, Any] = field(
        default_factory=dict
    )  # a hub's or portal's own keys and topics (ledger.runtime.roles)
    retention: dict[str, Any] = field(default_factory=dict)  # years per record kind (ledger.audit.retention)
    database_password: str | None = field(default=None, repr=False)  # from a secret file; never saved

    @property
    def path(self) -> Path:
        return self.data_dir / CONFIG_FILE

    @classmethod
    def load(cls, data_dir: Path) -> NodeConfig:
        path = data_dir / CONFIG_FILE
        if not path.exists():
            raise ConfigurationError(
                f"{data_dir} is not a flagledger data directory (no {CONFIG_FILE}); "
                "run `flagledger init --data-dir DIR --agency CODE ...` first"
            )
        try:
            raw = json.loads(path.read_text())
            cfg = cls(
                data_dir=data_dir,
                agencies=[AgencyEntry(**a) for a in raw.get("agencies", [])],
                database_url=raw.get("database_url"),
                encryption=bool(raw.get("encryption", True)),
                kafka=dict(raw.get("kafka", {})),
                observability=dict(raw.get("observability", {})),
                http=dict(raw.get("http", {})),
                oidc=dict(raw.get("oidc", {})),
                capacity=dict(raw.get("capacity", {})),
                checkpoints=dict(raw.get("checkpoints", {})),
                keys=dict(raw.get("keys", {})),
                role=str(raw.get("role", "agency")),
                linkage=dict(raw.get("linkage", {})),
                retention=dict(raw.get("retention", {})),
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{path} is not valid: {exc}") from exc
        cfg.apply_environment()
        return cfg

    def apply_environment(self) -> None:
        env = NodeEnvironment.read()
        if env.database_url:
            self.database_url = env.database_url
        if env.encryption is not None:
            self.encryption = env.encryption
        if env.database_password_file is not None:
            self.database_password = read_secret_file(env.database_password_file, "database password")

    def save(self) -> None:
        private_dir(self.data_dir)
        data = {
            "agencies": [asdict(a) for a in self.agencies],
            "database_url": self.database_url,
            "encryption": self.encryption,
            "kafka": self.kafka,
            "observability": self.observability,
            **({"http": self.http} if self.http else {}),
            **({"oidc": self.oidc} if self.oidc else {}),
            **({"capacity": self.capacity} if self.capacity else {}),
            **({"checkpoints": self.checkpoints} if self.checkpoints else {}),
            **({"keys": self.keys} if self.keys else {}),
            **({"role": self.role} if self.role != "agency" else {}),
            **({"linkage": self.linkage} if self.linkage else {}),
            **({"retention": self.retention} if self.retention else {}),
        }
        write_private(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def agency(self, code: str) -> AgencyEntry:
        for a in self.agencies:
            if a.code == code:
                return a
        raise ConfigurationError(f"agency {code} is not hosted in {self.data_dir}")

    # -- files ------------------------------------------------------------------------------------
    @property
    def secrets_dir(self) -> Path:
        """The file key store's directory (ledger.runtime.keystore)."""
        return self.data_dir / "secrets"

    def secure_files(self) -> None:
        """The data directory 0700 and its databases 0600 (created so before SQLite creates them: SQLite gives
        its ``-wal``/``-shm`` files the database file's mode). See ``ledger/files.py``."""
        private_dir(self.data_dir)
        if self.path.exists():
            private_file(self.path)
        if not self.database_url:
            for name in ("ledger.sqlite", "views.sqlite"):
                private_file(self.data_dir / name)
                for companion in ("-wal", "-shm"):
                    path = self.data_dir / (name + companion)
                    if path.exists():
                        private_file(path)

    # -- eventsourcing environment ---------------------------------------------------------------
    def ledger_env(self, pools: PoolSizes = ONE_SHOT, cipher_key: str | None = None) -> dict[str, str]:
        """The event store's settings; on PostgreSQL its pool keeps ``pools.size`` connections open.
        ``cipher_key``: the at-rest key from the key store (ledger.runtime.keystore.Keys.cipher_key), when
        encrypting."""
        env: dict[str, str] = {}
        if self.database_url:
            u = urlparse(self.database_url)
            if u.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
                raise ConfigurationError(f"unsupported database URL scheme {u.scheme!r}; use postgresql://")
            env.update(
                PERSISTENCE_MODULE="eventsourcing.postgres",
                POSTGRES_DBNAME=(u.path or "/").lstrip("/") or "postgres",
                POSTGRES_HOST=u.hostname or "127.0.0.1",
                POSTGRES_PORT=str(u.port or 5432),
                POSTGRES_USER=u.username or "postgres",
                POSTGRES_PASSWORD=self.database_password or u.password or "",
                POSTGRES_POOL_SIZE=str(pools.size),
                POSTGRES_MAX_OVERFLOW=str(pools.overflow),
                CREATE_TABLE="y",
                # the library's recorder, sending a batch's rows as binary arrays (see ledger/log/pg_recorder.py)
                APPLICATION_RECORDER_TOPIC="ledger.log.pg_recorder:BinaryInsertRecorder",
            )
        else:
            env.update(
                PERSISTENCE_MODULE="eventsourcing.sqlite",
                SQLITE_DBNAME=str(self.data_dir / "ledger.sqlite"),
                SQLITE_LOCK_TIMEOUT="30",
                CREATE_TABLE="y",
            )
        if self.encryption:
            if cipher_key is None:
                raise ConfigurationError("the event store is encrypted: its cipher key comes from the key store")
            env.update(CIPHER_TOPIC="eventsourcing.cryptography:AESCipher", CIPHER_KEY=cipher_key)
        return env

    def views_url(self) -> str:
        if self.database_url:
            u = urlparse(self.database_url)
            if not u.scheme:
                return ""
            rest = self.database_url.split("://", 1)[1]
            if self.database_password is not None:
                user = quote(u.username or "postgres", safe="")
                rest = f"{user}:{quote(self.database_password, safe='')}@" + rest.rsplit("@", 1)[-1]
            return "postgresql+psycopg://" + rest
        return f"sqlite:///{self.data_dir / 'views.sqlite'}"
