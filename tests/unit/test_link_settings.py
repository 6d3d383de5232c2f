"""The old-format link cut-over as a setting (ledger.runtime.link_settings): config.json's
``linkage.number_links``, then ``FLAGLEDGER_NUMBER_LINKS_OLD_FORMAT_REFUSED_FROM``.

Threat: the administrator's typo or a stale environment variable — a node silently running without the cut-over
(a peer agency's stripped, backdated link applied), or with a time each node reads in its own zone.
"""

from __future__ import annotations

import pytest

from ledger.errors import ConfigurationError
from ledger.runtime.link_settings import NumberLinkSettings

ENV = "FLAGLEDGER_NUMBER_LINKS_OLD_FORMAT_REFUSED_FROM"


def test_unset_by_default_then_the_file_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert NumberLinkSettings.from_linkage({}).cutover() is None
    linkage = {"number_links": {"old_format_refused_from": "2027-01-04T00:00:00+09:00"}}
    cutover = NumberLinkSettings.from_linkage(linkage).cutover()
    assert cutover is not None and cutover.isoformat() == "2027-01-04T00:00:00+09:00"
    monkeypatch.setenv(ENV, "2027-02-01T00:00:00Z")
    again = NumberLinkSettings.from_linkage(linkage).cutover()
    assert again is not None and again.isoformat() == "2027-02-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"old_format_refused_from": "2027-01-04T00:00:00"}, "timezone"),
        ({"old_format_refused_from": "s3cret-soon"}, f"old_format_refused_from ({ENV})"),
        ({"refused_from": "2027-01-04T00:00:00Z"}, "unknown linkage.number_links settings: refused_from"),
    ],
)
def test_a_bad_value_is_refused_by_its_name(
    monkeypatch: pytest.MonkeyPatch, section: dict[str, object], words: str
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(ConfigurationError) as err:
        NumberLinkSettings.from_linkage({"number_links": section})
    assert words in str(err.value) and "s3cret" not in str(err.value)
    with pytest.raises(ConfigurationError, match="must be an object"):
        NumberLinkSettings.from_linkage({"number_links": "2027-01-04"})
