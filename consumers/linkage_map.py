"""The hub's flag map checked by an agency node in hub mode (issue #20, docs/accountable-hub.md, docs/linkage.md).

When the hub's entry in ``linkage.hub`` publishes its VRF key (``vrf_public_hex``: a hub running its flag map),
the bridge runs :class:`ledger.linkage.checks.MapChecks` on everything the hub sends, kept across restarts
(``ledger.runtime.map_keep.SqlMapKeep``) and with the freshness bound of ``linkage.map.max_age_seconds``
(``MapSettings``): a routed query is answered automatically only when the hub's signed decision checks under a
fresh head — otherwise it is held for staff, as a flag held here holds it. What the checks catch the hub lying
about (a fork, a rollback, a dropped or ignored flag) is kept as evidence and raised as a security
:class:`~ledger.domain.incidents.Incident` for the agency (``ledger.app.incidents.raise_incidents``).

**The node keeps no number**, yet it checks the VRF proof that answers a registration: when the number was typed,
the registration kept a keyed check of it (``linkage_registrations.person_check``,
:func:`ledger.linkage.person_keys.person_key_check`, under the agency's code secret), and the proof is held to
that check before the map key is kept. Threat: a malicious or compromised hub bending a person's map key at
registration (another number's proof, a bent one, another key pair's), so that this agency, as holder, checks its
flags at a leaf the hub chose while providers are shown another, or, as provider, takes routing decisions about
another person's leaf. A proof that does not check — or a registration answered with no check kept (made before
the hub's VRF key was known) — leaves the person with no map key here: their routed queries are answered by staff;
a bad or malformed proof is raised as the incident ``bad_person_key``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, insert, select, update

from consumers.linkage_staff import SENT
from ledger.app.incidents import ParkedMessage, raise_incidents
from ledger.linkage.checks import HubIncident, MapChecks
from ledger.linkage.hub_wire import encode_evidence
from ledger.linkage.map_messages import MAP_KINDS, ProvenQuery, Registered
from ledger.linkage.messages import Message
from ledger.linkage.person_keys import vrf_public_from_hex
from ledger.log.keyed_hash import KeyedHash
from ledger.runtime.hub_map import MapSettings
from ledger.runtime.linkage import HubEntry, code_secret, linkage_directory, subject_of, witness_entries
from ledger.runtime.map_keep import SqlMapKeep
from ledger.runtime.tables import linkage_parked, linkage_registrations

__all__ = ["MapGate", "map_checks", "person_check"]

log = logging.getLogger("flagledger.linkage")


def map_checks(node: Any, agency: str) -> MapChecks | None:
    """The agency's checks of the hub's flag map, or None if the hub's entry publishes no VRF key."""
    hub = HubEntry.of(node.config.linkage.get("hub"))
    if not hub.vrf_public_hex:
        return None
    settings = MapSettings.from_linkage(node.config.linkage)
    directory = linkage_directory(node.config)  # the witnesses' keys from this agency's own configuration
    return MapChecks(
        agency,
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(hub.public_hex)),
        vrf_public_from_hex(hub.vrf_public_hex),
        max_age=timedelta(seconds=settings.max_age_seconds),
        now=node.app.clock,
        keep=SqlMapKeep(node.engine, agency),
        witnesses=tuple(name for name, _ in witness_entries(node.config)),
        witness_keys=lambda party, key_id: directory.sender_keys(node.app.clock())(party, key_id),
        quorum=settings.witness_quorum,
        deadline=timedelta(seconds=settings.witness_deadline_seconds),
        registrations=partial(person_check, node.engine),
        mac=KeyedHash.of(code_secret(node.keys, agency)),
    )


def person_check(engine: Engine, code: str) -> bytes | None:
    """The keyed check kept when the number of ``code``'s person was typed (None: no registration kept here, or
    one kept before the hub's VRF key was known)."""
    r = linkage_registrations.c
    with engine.connect() as conn:
        found = conn.execute(select(r.person_check).where(r.subject == subject_of(code))).scalar()
    return None if found is None else bytes(found)


class MapGate:
    """Each message from the hub through the checks (or, without them, the flag map's own kinds set aside)."""

    def __init__(self, node: Any, engine: Engine, checks: MapChecks | None) -> None:
        self.node, self.engine, self.checks = node, engine, checks
        self.raised = 0  # incidents recorded by this gate

    def __call__(self, message: Message) -> Message | None:
        """The message to apply, or None when it was the map's own (consumed)."""
        checks = self.checks
        if isinstance(message, Registered):
            self._registered(message.code)
        if checks is None:  # a hub without the map, or its key not taken in: its routing taken on trust
            if isinstance(message, ProvenQuery):
                return message.plain(message.answer)
            return None if type(message).kind in MAP_KINDS else message
        before = len(checks.incidents)
        checked = checks.take(message)
        for incident in checks.incidents[before:]:
            self._record(incident)
        return checked

    def overdue(self) -> int:
        """Record the incidents of deadlines the hub let pass (``MapChecks.overdue``); returns how many."""
        if self.checks is None:
            return 0
        found = self.checks.overdue()
        for incident in found:
            self._record(incident)
        return len(found)

    def _registered(self, code: str) -> None:
        """The hub filed the person's registration: the number sealed to it is not kept a moment longer (a later
        theft of the hub's key would open every number a copy of this table still held); the row stays, so the
        registration is never sent again."""
        with self.engine.begin() as conn:
            conn.execute(
                update(linkage_registrations)
                .where(linkage_registrations.c.subject == subject_of(code))
                .values(sealed=b"", sent=SENT)
            )

    def _record(self, incident: HubIncident) -> None:
        """Park the evidence beside the bridge's other parked messages and raise the incident from it."""
        raw = encode_evidence(incident.evidence) if incident.evidence is not None else incident.digest.encode()
        with self.engine.begin() as conn:
            done = conn.execute(
                insert(linkage_parked).values(
                    at=self.node.app.clock().isoformat(),
                    direction="in",
                    code=incident.code,
                    reason=incident.note[:2000],
                    message=raw,
                )
            )
            parked_id = int(done.inserted_primary_key[0])  # type: ignore[index]
        log.error("the hub's flag map check failed (%s): %s", incident.code, incident.note)
        self.raised += len(
            raise_incidents(self.node, ParkedMessage(parked_id, incident.code, incident.note, "linkage:hub", raw))
        )
