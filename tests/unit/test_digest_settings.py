"""The digest schedule as settings (ledger.runtime.digest_settings): config.json's ``linkage.digests``, then
``FLAGLEDGER_DIGESTS_*``; and an agency's ``linkage.portal`` entry (its records' contents are sealed to it).

Threat: the administrator's typo or a stale environment variable — digests silently off (traffic then tells the
broker operator who is consulted), a digest size that is no bucket, a portal entry that is another party's.
"""

from __future__ import annotations

import pytest

from ledger.errors import ConfigurationError
from ledger.linkage.names import HUB, PORTAL
from ledger.runtime.digest_settings import DigestSettings
from ledger.runtime.linkage import HubEntry


def test_on_by_default_then_the_file_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLAGLEDGER_DIGESTS_ENABLED", raising=False)
    schedule = DigestSettings.from_linkage({}).schedule()
    assert schedule is not None and (schedule.every, schedule.size) == (1.0, 16384)
    linkage = {"digests": {"every_seconds": 5, "size": 65536}}
    loaded = DigestSettings.from_linkage(linkage).schedule()
    assert loaded is not None and (loaded.every, loaded.size) == (5.0, 65536)
    monkeypatch.setenv("FLAGLEDGER_DIGESTS_EVERY_SECONDS", "0.5")
    again = DigestSettings.from_linkage(linkage).schedule()
    assert again is not None and again.every == 0.5
    monkeypatch.setenv("FLAGLEDGER_DIGESTS_ENABLED", "false")
    assert DigestSettings.from_linkage(linkage).schedule() is None


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"size": 5000}, "bucket"),
        ({"every_seconds": 0}, "every_seconds (FLAGLEDGER_DIGESTS_EVERY_SECONDS)"),
        ({"enabled": "s3cret-maybe"}, "enabled (FLAGLEDGER_DIGESTS_ENABLED)"),
        ({"every": 1}, "unknown linkage.digests settings: every"),
    ],
)
def test_a_bad_value_is_refused_by_its_name(section: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        DigestSettings.from_linkage({"digests": section}).schedule()
    assert words in str(err.value) and "s3cret" not in str(err.value)


def test_the_portals_entry_is_the_portals() -> None:
    raw = {
        "party": PORTAL,
        "key_id": "portal:0011223344556677",
        "public_hex": "00" * 32,
        "sealing_public_hex": "11" * 32,
        "valid_from": "2026-01-01T00:00:00+00:00",
    }
    assert HubEntry.of(raw, PORTAL).key_id == "portal:0011223344556677"
    with pytest.raises(ConfigurationError, match=r"linkage\.hub must hold"):
        HubEntry.of(raw)  # the portal's entry where the hub's belongs
    with pytest.raises(ConfigurationError, match=r"linkage\.portal must hold"):
        HubEntry.of({**raw, "party": HUB}, PORTAL)
    with pytest.raises(ConfigurationError, match=r"linkage\.portal must hold"):
        HubEntry.of({**raw, "sealing_public_hex": "zz"}, PORTAL)
