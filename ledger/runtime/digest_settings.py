"""The digest schedule of a running party (issue #20, "no traffic tells": docs/accountable-hub.md), from
config.json's ``linkage.digests`` section, overridden by the environment:

* ``enabled`` (``FLAGLEDGER_DIGESTS_ENABLED``, default **true**): the hub sends every inbox one digest per tick,
  the portal and an agency node in hub mode send the hub one digest per tick; false sends each message as
  decided (traffic then tells the broker operator who is consulted, who files a flag);
* ``every_seconds`` (``FLAGLEDGER_DIGESTS_EVERY_SECONDS``, default 1): the tick — the latency of every hop;
* ``size`` (``FLAGLEDGER_DIGESTS_SIZE``, default 16 384): each digest's bucket (three answer-sized messages).

Every party of one network should use the same size and tick: a party with another is told apart by it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from ledger.errors import ConfigurationError
from ledger.linkage.digests import DIGEST_SIZE
from ledger.linkage.schedule import DigestSchedule
from ledger.settings import Section, section_config

__all__ = ["DigestSettings"]


class DigestSettings(Section):
    model_config = section_config("FLAGLEDGER_DIGESTS_")
    section: ClassVar[str] = "linkage.digests"

    enabled: bool = True
    every_seconds: float = Field(1.0, ge=0.01, le=3600)
    size: int = DIGEST_SIZE

    @classmethod
    def from_linkage(cls, linkage: dict[str, Any], **options: Any) -> DigestSettings:
        raw = linkage.get("digests", {})
        if not isinstance(raw, dict):
            raise ConfigurationError("config.json's linkage.digests must be an object")
        return cls.load(raw, **options)

    def schedule(self) -> DigestSchedule | None:
        """The schedule to run on, or None when digests are off; ``configuration`` for a size not a bucket."""
        return DigestSchedule(every=self.every_seconds, size=self.size) if self.enabled else None
