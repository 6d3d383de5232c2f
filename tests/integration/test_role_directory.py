"""A hub's or portal's data directory: its own keys in its key store, its published entry, the entries it imports.

Threats: a shell user or administrator handing over a tampered entry (a key id that is not the public key's, a
bent sealing key, the role's own name): refused, nothing kept; a copy of the published entry (public halves
only: no secret, no private key in it); a peer reading the directory (0600).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ledger.errors import ConfigurationError, InputError
from ledger.linkage.codes import portal_code
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.person_keys import PersonKeyProver, verify_person_key, vrf_public_hex
from ledger.runtime.roles import import_entries, init_role, open_role, role_of
from tests.support.people import individual_number


def test_a_role_directory_keeps_its_keys_and_publishes_public_halves(tmp_path: Path) -> None:
    """Copy of the published entry; a second init over the directory (administrator's mistake)."""
    hub = init_role(tmp_path / "hub", HUB)
    portal = init_role(tmp_path / "portal", PORTAL, topic_prefix="p1")
    assert role_of(tmp_path / "hub") == HUB and open_role(tmp_path / "portal").topics().prefix == "p1"
    published = json.dumps(hub.own.as_json())
    secrets = [p.read_text().strip() for p in (tmp_path / "hub" / "secrets").iterdir() if not p.name.startswith(".")]
    assert secrets and not any(s in published for s in secrets if not s.startswith("-----"))
    again = open_role(tmp_path / "portal")  # the same keys when opened again: one portal code per card
    x = individual_number()
    assert portal_code(again.keys.secret, x) == portal_code(portal.keys.secret, x)
    assert again.own == portal.own
    with pytest.raises(ConfigurationError):
        init_role(tmp_path / "hub", HUB)
    with pytest.raises(InputError):
        init_role(tmp_path / "agency", "agency")


def test_a_tampered_entry_is_refused_and_nothing_kept(tmp_path: Path) -> None:
    """Shell user or administrator handing over a tampered entry: refused whole, the directory unchanged."""
    hub = init_role(tmp_path / "hub", HUB)
    portal = init_role(tmp_path / "portal", PORTAL)
    good = portal.own.as_json()
    other = init_role(tmp_path / "portal2", PORTAL).own.as_json()
    bad = [
        {**good, "key_id": other["key_id"]},  # another key's id on this public key
        {**good, "public_hex": other["public_hex"]},
        {**good, "sealing_public_hex": "00" * 31},
        {**good, "valid_from": "2026-12-07T00:00:00"},  # no offset
        {**good, "party": "hub"},  # the hub's own name
        {**good, "extra": "x"},
    ]
    for entry in bad:
        with pytest.raises(InputError):
            import_entries(hub, [good, entry])
    assert [e.party for e in hub.entries()] == [HUB]  # nothing of the good half kept either
    assert import_entries(hub, good) == [PORTAL]
    assert [e.party for e in open_role(tmp_path / "hub").entries()] == [HUB, PORTAL]
    assert (tmp_path / "hub" / "directory.json").stat().st_mode & 0o777 == 0o600
    assert import_entries(hub, other) == [PORTAL]  # a new key of the portal replaces the old entry
    assert [e.key_id for e in hub.entries()] == [hub.own.key_id, other["key_id"]]


def test_the_hubs_vrf_key_is_kept_and_only_its_public_half_published(tmp_path: Path) -> None:
    """Hub insider and shell user (issue #20): the hub's VRF key, which binds each person's map key to their
    number, stays in the hub's key store; agencies take its public half from the hub's entry and check the
    hub's proofs with it. A VRF key in another party's entry, or a bent one, is refused whole."""
    hub = init_role(tmp_path / "hub", HUB)
    portal = init_role(tmp_path / "portal", PORTAL)
    assert hub.vrf is not None and portal.vrf is None
    entry = hub.own.as_json()
    assert set(entry) == {"party", "key_id", "public_hex", "valid_from", "sealing_public_hex", "vrf_public_hex"}
    assert "vrf_public_hex" not in portal.own.as_json()
    private_hex = hub.vrf.private_numbers().p.to_bytes(128, "big").hex()
    assert private_hex not in json.dumps(entry)
    assert import_entries(portal, entry) == [HUB]
    [kept] = [e for e in open_role(tmp_path / "portal").entries() if e.party == HUB]
    x = individual_number()
    pi = PersonKeyProver(hub.vrf).prove(x)
    assert verify_person_key(kept.vrf_public_key(), x, pi) == PersonKeyProver(hub.vrf).key(x)
    weak = rsa.generate_private_key(public_exponent=3, key_size=2048).public_key()
    for bad in (
        {**portal.own.as_json(), "vrf_public_hex": entry["vrf_public_hex"]},  # only the hub publishes one
        {**entry, "vrf_public_hex": "30" + entry["vrf_public_hex"][2:-2]},  # bent
        {**entry, "vrf_public_hex": vrf_public_hex(weak)},  # e = 3: not the VRF's key
    ):
        with pytest.raises(InputError):
            import_entries(init_role(tmp_path / f"p{len(bad['vrf_public_hex'])}", PORTAL), bad)
    with pytest.raises(ConfigurationError):
        open_role(tmp_path / "portal").own.vrf_public_key()
    # a hub directory made before the flag map: it gets its VRF key when opened, and publishes it
    secrets = tmp_path / "hub" / "secrets"
    next(p for p in secrets.iterdir() if p.name.startswith("linkage-vrf.key")).unlink()  # a file, or sealed
    again = open_role(tmp_path / "hub")
    assert again.vrf is not None and again.own.vrf_public_hex not in ("", entry["vrf_public_hex"])
    assert open_role(tmp_path / "hub").own == again.own  # made once, then kept
