"""The flag map's timing as settings (ledger.runtime.hub_map.MapSettings): config.json's ``linkage.map``, then
``FLAGLEDGER_MAP_*``, then options; bad values refused by name.

Threat: the administrator's typo or a stale environment variable — a hub that signs heads more rarely than
its agencies' freshness bound (providers then answer everything by staff), or a bound of zero, or a value
that reads as something else than what was written.
"""

from __future__ import annotations

import pytest

from ledger.errors import ConfigurationError
from ledger.runtime.hub_map import MapSettings


def test_the_file_then_the_environment_then_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MapSettings.from_linkage({}) == MapSettings(head_every_seconds=10.0, max_age_seconds=60.0)
    linkage = {"signing": {}, "map": {"head_every_seconds": 5, "max_age_seconds": 30}}
    assert MapSettings.from_linkage(linkage).head_every_seconds == 5.0
    monkeypatch.setenv("FLAGLEDGER_MAP_HEAD_EVERY_SECONDS", "2.5")
    loaded = MapSettings.from_linkage(linkage)
    assert (loaded.head_every_seconds, loaded.max_age_seconds) == (2.5, 30.0)
    assert MapSettings.from_linkage(linkage, max_age_seconds=20).max_age_seconds == 20.0


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"head_every_seconds": "s3cret-typo"}, "head_every_seconds (FLAGLEDGER_MAP_HEAD_EVERY_SECONDS)"),
        ({"max_age_seconds": 0}, "max_age_seconds (FLAGLEDGER_MAP_MAX_AGE_SECONDS)"),
        ({"head_every_seconds": 7200}, "head_every_seconds"),
        ({"every": 10}, "unknown linkage.map settings: every"),
    ],
)
def test_a_bad_value_is_refused_by_its_name(section: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        MapSettings.from_linkage({"map": section})
    assert words in str(err.value) and "s3cret" not in str(err.value)


def test_a_section_that_is_no_object_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"linkage\.map must be an object"):
        MapSettings.from_linkage({"map": [10]})
