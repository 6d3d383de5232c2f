"""The HTTP settings an operator writes (config.json ``http`` section, ``FLAGLEDGER_HTTP_*``) mean what they say.

Threat: the network, through an administrator's typo. A setting that cannot be read must stop the node
rather than fall back to something else: "insecure_cookie: ture" or an empty proxy list is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.api.settings import HttpSettings
from ledger.errors import ConfigurationError
from ledger.runtime.config import NodeConfig


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INSECURE_COOKIE", "TRUST_PROXY", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv("FLAGLEDGER_HTTP_" + name, raising=False)


def config(tmp_path: Path, **http: object) -> NodeConfig:
    return NodeConfig(data_dir=tmp_path, http=dict(http))


def test_defaults_are_secure_and_believe_no_proxy(tmp_path: Path) -> None:
    s = HttpSettings.from_config(config(tmp_path))
    assert s.cookie_secure("http") and s.cookie_secure("https")
    assert s.uvicorn_options() == {"proxy_headers": False}


def test_config_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path, insecure_cookie=True, trust_proxy="on", forwarded_allow_ips="10.0.0.5")
    s = HttpSettings.from_config(cfg)
    assert not s.cookie_secure("http") and s.cookie_secure("https")
    assert s.uvicorn_options() == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"}
    monkeypatch.setenv("FLAGLEDGER_HTTP_TRUST_PROXY", "off")
    assert HttpSettings.from_config(cfg).uvicorn_options() == {"proxy_headers": False}


def test_a_config_round_trips_through_the_file(tmp_path: Path) -> None:
    cfg = config(tmp_path, trust_proxy=True)
    cfg.save()
    assert NodeConfig.load(tmp_path).http == {"trust_proxy": True}


@pytest.mark.parametrize(
    "http", [{"insecure_cookie": "ture"}, {"trust_proxy": 2}, {"forwarded_allow_ips": " "}, {"secure": False}]
)
def test_unreadable_settings_are_refused(tmp_path: Path, http: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        HttpSettings.from_config(config(tmp_path, **http))
