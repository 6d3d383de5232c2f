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

from typing import Any, ClassVar

from pydantic import field_validator

from ledger.runtime.config import NodeConfig
from ledger.settings import Flag, Section, section_config

__all__ = ["HttpSettings"]


class HttpSettings(Section):
    model_config = section_config("FLAGLEDGER_HTTP_")
    section: ClassVar[str] = "http"

    insecure_cookie: Flag = False
    trust_proxy: Flag = False
    forwarded_allow_ips: str = "127.0.0.1"

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty: name the proxy's address")
        return value.strip()

    @classmethod
    def from_config(cls, config: NodeConfig | None) -> HttpSettings:
        return cls.load(config.http if config is not None else None)

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments for ``uvicorn.Config``: proxy headers only from the configured proxy."""
        if not self.trust_proxy:
            return {"proxy_headers": False}
        return {"proxy_headers": True, "forwarded_allow_ips": self.forwarded_allow_ips}

    def cookie_secure(self, scheme: str) -> bool:
        """Whether the session cookie carries ``Secure`` for a request that arrived as ``scheme``."""
        return not self.insecure_cookie or scheme == "https"
