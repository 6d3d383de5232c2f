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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.domain.types import AgencyKind
from ledger.errors import ConfigurationError, InputError
from ledger.linkage.codes import portal_code
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.person_keys import PersonKeyProver, verify_person_key, vrf_public_hex
from ledger.linkage.sealing import new_sealing_key, public_hex
from ledger.log.signing import key_id_for
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


def _agency_entry(party: str, kind: str = "") -> dict[str, str]:
    """An agency's published entry, as ``linkage directory export`` prints it on its node (fresh keys)."""
    signing = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    entry = {
        "party": party,
        "key_id": key_id_for(party, signing),
        "public_hex": signing.hex(),
        "valid_from": "2026-04-01T00:00:00+09:00",
        "sealing_public_hex": public_hex(new_sealing_key()[1].public_key()),
    }
    return {**entry, "kind": kind} if kind else entry


def test_the_hub_keeps_each_agencys_kind_as_its_administrator_accepts_it(tmp_path: Path) -> None:
    """Peer agency claiming a kind it is not (the police's word, to send protection requests; a municipality's,
    to hand over protection): the kind reaches the hub's directory only through the administrator's import — the
    entry's own claim, or ``--kind`` for an entry that names none; an unknown kind, a kind on the portal's
    entry, or ``--kind`` contradicting the entry's own claim is refused and nothing is kept; an entry imported
    with no kind gives the agency none (the hub then takes neither a move nor a body request from it)."""
    hub = init_role(tmp_path / "hub", HUB)
    portal = init_role(tmp_path / "portal", PORTAL)
    claims_police = _agency_entry("POL-TOKYO", "police")
    for bad, kind in (
        (_agency_entry("X-1", "mayor"), ""),
        ({**portal.own.as_json(), "kind": "municipality"}, ""),
        (claims_police, "municipality"),  # the administrator does not vouch for what the entry claims
        ([_agency_entry("X-2"), _agency_entry("X-3")], "municipality"),  # --kind vouches for one entry
    ):
        with pytest.raises(InputError):
            import_entries(hub, bad, kind)
    assert [e.party for e in hub.entries()] == [HUB]

    assert import_entries(hub, claims_police) == ["POL-TOKYO"]
    assert import_entries(hub, _agency_entry("A-1"), "municipality") == ["A-1"]
    assert import_entries(hub, _agency_entry("B-1")) == ["B-1"]
    directory = hub.directory()
    assert directory.kind_of("POL-TOKYO") is AgencyKind.POLICE
    assert directory.kind_of("A-1") is AgencyKind.MUNICIPALITY
    assert directory.kind_of("B-1") is None and directory.kind_of(HUB) is None
    saved = json.loads(hub.directory_path.read_text())
    assert {e["party"]: e.get("kind") for e in saved} == {"POL-TOKYO": "police", "A-1": "municipality", "B-1": None}


def test_the_hub_keeps_the_features_an_agencys_entry_names_and_refuses_a_malformed_one(tmp_path: Path) -> None:
    """Administrator or shell user handing over a bent entry (and the perpetrator, through a stalled fleet): the
    features an agency's release understands reach the hub's directory only as its entry names them, each a
    known one, once — an unknown name, a repeat, a blank part, a value that is no text, or features on the
    portal's entry is refused and nothing is kept; an entry without them (an older release) gives the agency
    none, and one imported again without them takes them away (the hub then sends it no ``hub_seq``)."""
    hub = init_role(tmp_path / "hub", HUB)
    portal = init_role(tmp_path / "portal", PORTAL)
    for bad in (
        {**_agency_entry("X-1"), "features": "hub_seq,stamps"},
        {**_agency_entry("X-2"), "features": "hub_seq,hub_seq"},
        {**_agency_entry("X-3"), "features": "hub_seq,"},
        {**_agency_entry("X-4"), "features": " hub_seq"},
        {**_agency_entry("X-5"), "features": ["hub_seq"]},
        {**portal.own.as_json(), "features": "hub_seq"},
        [{**_agency_entry("X-6"), "features": "hub_seq"}, {**_agency_entry("X-7"), "features": "HUB_SEQ"}],
    ):
        with pytest.raises(InputError):
            import_entries(hub, bad)
    assert [e.party for e in hub.entries()] == [HUB]

    new, old = {**_agency_entry("A-1", "municipality"), "features": "hub_seq"}, _agency_entry("B-1", "municipality")
    assert import_entries(hub, [new, old]) == ["A-1", "B-1"]
    directory = hub.directory()
    assert directory.understands("A-1", "hub_seq") and not directory.understands("B-1", "hub_seq")
    saved = {e["party"]: e for e in json.loads(hub.directory_path.read_text())}
    assert saved["A-1"]["features"] == "hub_seq" and "features" not in saved["B-1"]
    assert import_entries(hub, {k: v for k, v in new.items() if k != "features"}) == ["A-1"]  # an older export
    assert not hub.directory().understands("A-1", "hub_seq")
