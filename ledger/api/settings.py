"""HTTP settings of the API and console: the session cookie's ``Secure`` attribute and which reverse proxy,
if any, is believed about the original scheme and client (``X-Forwarded-Proto`` / ``X-Forwarded-For``).

From the data directory's config (``http`` section), overridden by ``FLAGLEDGER_HTTP_<NAME>``:

* ``insecure_cookie`` (default off): the console's session cookie is always ``Secure``; on, it is ``Secure``
  only for requests that arrived over https — for plain-HTTP local development only, never in production.
* ``trust_proxy`` (default off): only then are ``X-Forwarded-*`` headers honoured, and only from the
  addresses in ``forwarded_allow_ips`` (default ``127.0.0.1``: a proxy on the same host). Off, uvicorn's own
  default (which believes these headers from loopback) is switched off too, so a client cannot claim https.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from ledger.errors import ConfigurationError
from ledger.runtime.config import NodeConfig

__all__ = ["HttpSettings"]

ENV_PREFIX = "FLAGLEDGER_HTTP_"
_TRUE, _FALSE = ("1", "on", "true", "yes"), ("0", "off", "false", "no", "")


@dataclass(frozen=True)
class HttpSettings:
    insecure_cookie: bool = False
    trust_proxy: bool = False
    forwarded_allow_ips: str = "127.0.0.1"

    @classmethod
    def from_config(cls, config: NodeConfig | None) -> HttpSettings:
        values: dict[str, Any] = dict(config.http) if config is not None else {}
        for f in fields(cls):
            env = os.environ.get(ENV_PREFIX + f.name.upper())
            if env is not None:
                values[f.name] = env
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigurationError(f"unknown http settings: {', '.join(sorted(unknown))}")
        ips = str(values.get("forwarded_allow_ips", cls.forwarded_allow_ips)).strip()
        if not ips:
            raise ConfigurationError("http setting forwarded_allow_ips is empty: name the proxy's address")
        return cls(
            insecure_cookie=_flag(values.get("insecure_cookie", False), "insecure_cookie"),
            trust_proxy=_flag(values.get("trust_proxy", False), "trust_proxy"),
            forwarded_allow_ips=ips,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments for ``uvicorn.Config``: proxy headers only from the configured proxy."""
        if not self.trust_proxy:
            return {"proxy_headers": False}
        return {"proxy_headers": True, "forwarded_allow_ips": self.forwarded_allow_ips}

    def cookie_secure(self, scheme: str) -> bool:
        """Whether the session cookie carries ``Secure`` for a request that arrived as ``scheme``."""
        return not self.insecure_cookie or scheme == "https"


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"http setting {name} must be on or off")
