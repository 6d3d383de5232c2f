"""The portal's delivery keys on a schedule (issue 22, docs/erasure.md "copies on the wire"; docs/operations.md).

config.json's ``linkage.delivery_keys`` section, overridden by the environment:

* ``enabled`` (``FLAGLEDGER_DELIVERY_KEYS_ENABLED``, default **true**): the portal's loop rotates and retires
  (off: only by hand, ``portal rotate-delivery-key``; a key made so is still announced);
* ``period_seconds`` (``FLAGLEDGER_DELIVERY_KEYS_PERIOD_SECONDS``, default 7 days): a new delivery key once the
  newest is this old;
* ``grace_seconds`` (``FLAGLEDGER_DELIVERY_KEYS_GRACE_SECONDS``, default 8 days): a key's private half is
  destroyed once its successor is this old — at least the topics' ``retention.ms + segment.ms`` (a key message
  sealed to the old key may sit that long on the broker, and an agency seals to the old key until the
  announcement reaches it);
* ``resend_after_seconds`` (``FLAGLEDGER_DELIVERY_KEYS_RESEND_AFTER_SECONDS``, default 1 hour): a wire key a page
  still waits for is asked for again once this long has passed since the portal last asked (the request or the
  provider's answer lost on the way; the provider down) — besides at each new delivery key.

Each new key is announced (``ledger.linkage.delivery_keys.DeliveryKeyNotice``, signed by the portal) through
the hub to every agency. The rotation and the announcement live in two files (the key file, the portal's
database): a key not yet announced — the portal stopped between — is announced at the next step.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field

from ledger.errors import ConfigurationError
from ledger.linkage.delivery_keys import DeliveryKeyNotice
from ledger.linkage.wire_keys import delivery_entry
from ledger.log.signing import Signer
from ledger.portal.wire_keys import PortalWireKeys
from ledger.settings import Section, section_config

__all__ = ["DeliveryKeySettings", "DeliveryRotation", "newest_notice", "utc_text"]

DAY = 86_400.0
EPOCH = "1970-01-01T00:00:00+00:00"  # a key made before the key file kept times


def utc_text(at: datetime) -> str:
    """``at`` as the key file keeps times: UTC, ISO 8601 (so that the text compares as the time does)."""
    return at.astimezone(UTC).isoformat()


class DeliveryKeySettings(Section):
    model_config = section_config("FLAGLEDGER_DELIVERY_KEYS_")
    section: ClassVar[str] = "linkage.delivery_keys"

    enabled: bool = True
    period_seconds: float = Field(7 * DAY, ge=1.0)
    grace_seconds: float = Field(8 * DAY, ge=1.0)
    resend_after_seconds: float = Field(3600.0, ge=1.0)

    @classmethod
    def from_linkage(cls, linkage: dict[str, Any], **options: Any) -> DeliveryKeySettings:
        raw = linkage.get("delivery_keys", {})
        if not isinstance(raw, dict):
            raise ConfigurationError("config.json's linkage.delivery_keys must be an object")
        return cls.load(raw, **options)


class DeliveryRotation:
    """What the portal's loop asks at each step: the notice owed for a new (or not yet announced) key, and the
    retirement of keys replaced longer ago than the grace."""

    def __init__(
        self, wires: PortalWireKeys, signer: Signer, now: Callable[[], datetime], settings: DeliveryKeySettings
    ) -> None:
        self.wires, self.signer, self.now, self.settings = wires, signer, now, settings
        self.retired = 0  # private halves destroyed by this loop

    def due(self) -> DeliveryKeyNotice | None:
        """Rotate if the newest key's period ended (or there is none); the notice of the newest key if it was not
        yet announced (the caller owes it to the hub, then calls :meth:`announced`). Retire what the grace
        allows."""
        at = self.now()
        newest = self.wires.newest()
        period = timedelta(seconds=self.settings.period_seconds)
        if self.settings.enabled:  # off: keys made by hand (portal rotate-delivery-key) are still announced
            if newest is None or not newest[3] or datetime.fromisoformat(newest[3]) + period <= at:
                self.wires.rotate(utc_text(at))
                newest = self.wires.newest()
            grace = timedelta(seconds=self.settings.grace_seconds)
            self.retired += self.wires.retire_superseded(utc_text(at - grace))
        if newest is None:
            return None
        key_id, public, serial, made_at, announced = newest
        if announced:
            return None
        return DeliveryKeyNotice.of(self.signer, serial, delivery_entry(key_id, public, serial), made_at)


def newest_notice(wires: PortalWireKeys, signer: Signer) -> DeliveryKeyNotice | None:
    """The newest key's notice, signed now (a key request carries it: the provider seals to it)."""
    newest = wires.newest()
    if newest is None:
        return None
    key_id, public, serial, made_at, _ = newest
    return DeliveryKeyNotice.of(signer, serial, delivery_entry(key_id, public, serial), made_at or EPOCH)
