"""``flagledger portal page``: a person's page at the portal role, by card (docs/linkage.md, the portal role)."""

from __future__ import annotations

import time
from dataclasses import asdict

from ledger import clock
from ledger.cli.base import command, data_dir, group, out
from ledger.cli.parsing import NUMBER, OneOf, option
from ledger.errors import NotFoundError
from ledger.portal.cards import issuers_from
from ledger.portal.rotation import utc_text
from ledger.portal.rules import VIEWERS
from ledger.portal.service import read_page
from ledger.portal.sign_ins import CardSignIns, SignInSettings
from ledger.runtime.config import NodeConfig
from ledger.runtime.roles import RoleNode, open_role

portal = group("portal", "the portal role: a person's provision records by card, as the hub feeds them")


@command(portal, "page", help="sign a card in and show its person's page, or why it is refused")
@option("--card", required=True, help="the card's individual number (the portal keeps only its own code for it)")
@option("--viewer", type=OneOf(VIEWERS), default="self", help="who reads: self (default), proxy or guardian")
@option(
    "--proxy-card",
    default=None,
    help="a proxy's own card (individual number): a proxy reads only with it, while registered (and approved)",
)
@option(
    "--wait",
    type=NUMBER,
    default=0.0,
    metavar="SECONDS",
    help="wait this long for the hub's page after a first sign-in (the portal node sends the registration)",
)
def page(card: str, viewer: str, proxy_card: str | None, wait: float) -> int:
    node = open_role(data_dir())
    store = node.portal_store()
    try:
        directory = node.directory()
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                shown = read_page(store, node.keys, directory, card, viewer, proxy_card)
                break
            except NotFoundError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
    finally:
        store.close()
    out({"records": [asdict(r) for r in shown.records], "note": shown.note})
    return 0


def card_sign_ins(node: RoleNode) -> CardSignIns:
    """The portal's card sign-in over its own store: the issuers config.json trusts (read again at each sign-in:
    ``portal trust-issuer`` on a running portal takes effect at once), its directory as imported."""
    return CardSignIns(
        node.portal_store(),
        node.keys,
        node.directory,
        lambda: issuers_from(NodeConfig.load(node.config.data_dir).linkage),
        SignInSettings.from_linkage(node.config.linkage),
    )


@command(portal, "trust-issuer", help="trust a card issuer (J-LIS) for card sign-in over HTTP: its Ed25519 public key")
@option("--issuer", required=True, help="the issuer's name, as its certificates name it")
@option("--public-hex", required=True, help="the issuer's Ed25519 public key, 64 hex digits (from the issuer)")
def trust_issuer(issuer: str, public_hex: str) -> int:
    config = NodeConfig.load(data_dir())
    open_role(data_dir()).portal_store().close()  # a portal directory (refused otherwise), its tables migrated
    trusted = dict(config.linkage.get("card_issuers", {}))
    trusted[issuer] = public_hex
    issuers_from({"card_issuers": trusted})  # all well-formed, or nothing is written
    config.linkage["card_issuers"] = trusted
    config.save()
    out({"trusted": sorted(trusted)})
    return 0


@command(portal, "revoke-cards", help="take a card issuer's signed revocation list (a number change, a lost card)")
@option("--file", required=True, help="the issuer's list, as it signed it")
def revoke_cards(file: str) -> int:
    sign_ins = card_sign_ins(open_role(data_dir()))
    try:
        with open(file, encoding="utf-8") as fh:
            new = sign_ins.take_revocations(fh.read())
    finally:
        sign_ins.store.close()
    out({"revoked": new})
    return 0


@command(portal, "erasures", help="the erasures the hub told this portal of: each card's code and the hub's sequence")
def erasures() -> int:
    node = open_role(data_dir())
    store = node.portal_store()
    try:
        out({"erasures": store.erasures()})
    finally:
        store.close()
    return 0


@command(
    portal,
    "rotate-delivery-key",
    help="a new delivery key for the providers' wire keys (docs/erasure.md, copies on the wire); export the entry "
    "again for the agencies and the hub",
)
@option(
    "--retire",
    is_flag=True,
    help="and destroy the private halves of all but the two newest (only once the topics' retention window has "
    "passed since the older ones were replaced)",
)
def rotate_delivery_key(retire: bool) -> int:
    wires = open_role(data_dir()).wire_keys()
    try:
        key_id, _ = wires.rotate(utc_text(clock.now()))  # the portal's loop announces it to the agencies
        retired = wires.retire(keep=2) if retire else 0
    finally:
        wires.close()
    out({"delivery_key": key_id, "retired": retired, "entry": open_role(data_dir()).own.as_json()})
    return 0
