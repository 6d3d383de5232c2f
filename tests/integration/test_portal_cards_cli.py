"""``portal trust-issuer`` and ``portal revoke-cards`` on a portal data directory (issue 19, docs/linkage.md).

Threat: the perpetrator with someone else's card number — a portal trusting a malformed issuer key, or taking
a revocation list nobody trusted signed, would let a forged certificate in or keep a revoked card out only by
chance; an administrator / shell user typing an issuer's key (refused whole, nothing written).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.cli.main import main
from ledger.cli.portal import card_sign_ins
from ledger.errors import Code
from ledger.portal.cards import CardIssuer
from ledger.runtime.config import NodeConfig
from ledger.runtime.roles import init_role, open_role
from tests.support.people import individual_number


def test_an_issuer_is_trusted_by_its_key_and_only_its_lists_revoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "portal"
    init_role(d, "portal")
    jlis = CardIssuer("J-LIS")
    assert main(["--data-dir", str(d), "portal", "trust-issuer", "--issuer", "J-LIS", "--public-hex", "ab" * 31]) != 0
    assert "card_issuers" not in NodeConfig.load(d).linkage  # a malformed key: nothing written
    capsys.readouterr()
    assert (
        main(["--data-dir", str(d), "portal", "trust-issuer", "--issuer", "J-LIS", "--public-hex", jlis.public_hex])
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"trusted": ["J-LIS"]}
    assert NodeConfig.load(d).linkage["card_issuers"] == {"J-LIS": jlis.public_hex}

    node = open_role(d)
    at = datetime.now(UTC)
    card = jlis.issue(individual_number(), node.keys.sealing.public_key(), at, at + timedelta(days=1))
    forged = tmp_path / "forged.json"
    forged.write_text(CardIssuer("J-LIS").revoke([card.certificate.serial], at).encode())  # another key
    assert main(["--data-dir", str(d), "portal", "revoke-cards", "--file", str(forged)]) != 0
    assert f"[{Code.CARD_CERTIFICATE}]" in capsys.readouterr().err
    real = tmp_path / "revoked.json"
    real.write_text(jlis.revoke([card.certificate.serial], at).encode())
    assert main(["--data-dir", str(d), "portal", "revoke-cards", "--file", str(real)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"revoked": 1}

    sign_ins = card_sign_ins(open_role(d))
    try:
        assert sign_ins.revoked("J-LIS", card.certificate.serial)
        assert not sign_ins.revoked("J-LIS", "J-LIS-99999999")
    finally:
        sign_ins.store.close()
