"""A node's data directory: configuration, secrets and (by default) the embedded SQLite databases.

Layout::

    DATA_DIR/                       0700; every file in it 0600 (ledger/files.py)
    DATA_DIR/config.json            hosted agencies, their key ids, database and broker settings
    DATA_DIR/secrets/               0700; signing keys (PEM), cipher key, pseudonym secret, each hosted
                                    agency's stream id key (AGENCY-id.key, see ledger.log.stream_ids) — never in git
    DATA_DIR/ledger.sqlite          the signed event log (embedded default)
    DATA_DIR/views.sqlite           projections (embedded default)

Environment overrides: ``FLAGLEDGER_DATA_DIR``, ``FLAGLEDGER_DATABASE_URL`` (``postgresql://user@host:port/db``),
``FLAGLEDGER_DATABASE_PASSWORD_FILE`` (the database password from a mounted secret; never saved in config.json),
``FLAGLEDGER_PSEUDONYM_KEY_FILE``, ``FLAGLEDGER_CIPHER_KEY_FILE``, ``FLAGLEDGER_ENCRYPTION`` (``on``/``off``).
A signing key's ``file`` in config.json is relative to ``secrets/`` or absolute (e.g. a mounted secret).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets as pysecrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ledger.app.capacity import ONE_SHOT, PoolSizes
from ledger.errors import ConfigurationError
from ledger.files import private_dir, private_file, write_private
from ledger.typed_settings import typed_settings

__all__ = ["AgencyEntry", "NodeConfig", "default_data_dir", "typed_settings"]

CONFIG_FILE = "config.json"


def default_data_dir() -> Path:
    return Path(os.environ.get("FLAGLEDGER_DATA_DIR", "./flagledger-data"))


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
    capacity: dict[str, Any] = field(default_factory=dict)  # connection pools, API concurrency (ledger.app.capacity)
    checkpoints: dict[str, Any] = field(default_factory=dict)  # tree heads: every_events, every_seconds
    database_password: str | None = field(default=None, repr=False)  # from a secret file; never saved

    # -- files --------------------------------------------------------------------------------
    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

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
                capacity=dict(raw.get("capacity", {})),
                checkpoints=dict(raw.get("checkpoints", {})),
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{path} is not valid: {exc}") from exc
        cfg.apply_environment()
        return cfg

    def apply_environment(self) -> None:
        url = os.environ.get("FLAGLEDGER_DATABASE_URL")
        if url:
            self.database_url = url
        enc = os.environ.get("FLAGLEDGER_ENCRYPTION")
        if enc:
            self.encryption = enc.lower() not in ("0", "off", "false", "no")
        password_file = os.environ.get("FLAGLEDGER_DATABASE_PASSWORD_FILE")
        if password_file:
            try:
                self.database_password = Path(password_file).read_text().strip()
            except OSError as exc:
                raise ConfigurationError(f"cannot read the database password file {password_file}: {exc}") from exc

    def save(self) -> None:
        private_dir(self.data_dir)
        data = {
            "agencies": [asdict(a) for a in self.agencies],
            "database_url": self.database_url,
            "encryption": self.encryption,
            "kafka": self.kafka,
            "observability": self.observability,
            **({"http": self.http} if self.http else {}),
            **({"capacity": self.capacity} if self.capacity else {}),
            **({"checkpoints": self.checkpoints} if self.checkpoints else {}),
        }
        write_private(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def agency(self, code: str) -> AgencyEntry:
        for a in self.agencies:
            if a.code == code:
                return a
        raise ConfigurationError(f"agency {code} is not hosted in {self.data_dir}")

    # -- secrets ------------------------------------------------------------------------------
    def _secret_file(self, env: str, name: str) -> Path:
        override = os.environ.get(env)
        return Path(override) if override else self.secrets_dir / name

    def ensure_secrets_dir(self) -> None:
        private_dir(self.secrets_dir)

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

    def pseudonym_secret(self) -> bytes:
        path = self._secret_file("FLAGLEDGER_PSEUDONYM_KEY_FILE", "pseudonym.key")
        try:
            return bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot read the pseudonym secret {path}: {exc}. Every agency of a deployment must share "
                "it: copy it from the deployment's secret store or set FLAGLEDGER_PSEUDONYM_KEY_FILE"
            ) from exc

    def cipher_key(self) -> str:
        path = self._secret_file("FLAGLEDGER_CIPHER_KEY_FILE", "cipher.key")
        try:
            key = path.read_text().strip()
            base64.b64decode(key, validate=True)
            return key
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the at-rest cipher key {path}: {exc}") from exc

    @staticmethod
    def id_key_name(code: str) -> str:
        return f"{code}-id.key"

    def create_id_key(self, code: str) -> None:
        """The agency's own stream id key (ledger.log.stream_ids), made once when it is first hosted here.

        Back it up with the data directory: without it the agency no longer finds its own protections by
        person (the events stay verifiable, but a new flag would open a second stream)."""
        from ledger.log.stream_ids import ID_KEY_BYTES

        self.write_secret(self.id_key_name(code), pysecrets.token_hex(ID_KEY_BYTES))

    def id_keys(self) -> dict[str, bytes]:
        """Each hosted agency's stream id key."""
        keys: dict[str, bytes] = {}
        for entry in self.agencies:
            path = self.secrets_dir / self.id_key_name(entry.code)
            try:
                keys[entry.code] = bytes.fromhex(path.read_text().strip())
            except (OSError, ValueError) as exc:
                raise ConfigurationError(
                    f"cannot read the stream id key of agency {entry.code} ({path}): {exc}. Restore it from the "
                    "data directory's backup: without it the agency's own streams about people cannot be found"
                ) from exc
        return keys

    def write_secret(self, name: str, text: str, *, overwrite: bool = False) -> Path:
        self.ensure_secrets_dir()
        path = self.secrets_dir / name
        if path.exists() and not overwrite:
            return path
        # written whole under a private name, then put in place in one step: two threads (API requests) or
        # processes asking at once never read a half-written secret, and only the first one's is kept
        tmp = path.with_name(f".{name}.{os.getpid()}.{pysecrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text + "\n")
            if overwrite:
                os.replace(tmp, path)
            else:
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return path

    def create_missing_secrets(self, pseudonym_key_file: Path | None = None) -> None:
        if pseudonym_key_file is not None:
            try:
                secret = pseudonym_key_file.read_text().strip()
                bytes.fromhex(secret)
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot read pseudonym secret {pseudonym_key_file}: {exc}") from exc
            self.write_secret("pseudonym.key", secret, overwrite=True)
        elif not os.environ.get("FLAGLEDGER_PSEUDONYM_KEY_FILE"):
            self.write_secret("pseudonym.key", pysecrets.token_hex(32))
        # a secret mounted from the deployment's store is read where it is, never copied into the data directory
        if not os.environ.get("FLAGLEDGER_CIPHER_KEY_FILE"):
            self.write_secret("cipher.key", base64.b64encode(pysecrets.token_bytes(32)).decode())

    # -- eventsourcing environment ---------------------------------------------------------------
    def ledger_env(self, pools: PoolSizes = ONE_SHOT) -> dict[str, str]:
        """The event store's settings; on PostgreSQL its pool keeps ``pools.size`` connections open."""
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
            env.update(CIPHER_TOPIC="eventsourcing.cryptography:AESCipher", CIPHER_KEY=self.cipher_key())
        return env

    def views_url(self) -> str:
        if self.database_url:
            u = urlparse(self.database_url)
            if not u.scheme:
                return ""
            rest = self.database_url.split("://", 1)[1]
            if self.database_password is not None:
                from urllib.parse import quote

                user = quote(u.username or "postgres", safe="")
                rest = f"{user}:{quote(self.database_password, safe='')}@" + rest.rsplit("@", 1)[-1]
            return "postgresql+psycopg://" + rest
        return f"sqlite:///{self.data_dir / 'views.sqlite'}"
