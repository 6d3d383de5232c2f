"""The hub's part in witnessing (issue #20): it forwards what parties seal to each other, and every agency's own
tree head to the witnesses.

* ``relay``: a message the sender sealed to another party (an agency's head to a witness, a witness's gossip,
  cosignature or incident; a provider's wire key or wire erasure to the portal, ``ledger.linkage.wire_keys``).
  The hub forwards the bytes unopened — it cannot read them — after checking their routing header names the
  sender and the recipient the relay names, so no party can pass off another's message; a recipient without a
  published key is refused (parked) — but the portal, which is always there (its key's import may lag).
* ``tree_head``: the head an agency shows the hub, forwarded to every witness with the agency's signature
  inside, so a witness compares it with the head the agency showed the witness itself.
* ``witness_incident`` sent to the hub (a witness accusing it): parked under the incident's code, so the hub's
  operators see it among the parked messages; the agencies were told by the witness itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.errors import Code, InputError, IntegrityError, PermissionDenied
from ledger.linkage.directory import Directory
from ledger.linkage.messages import Message, decode
from ledger.linkage.names import HUB, PORTAL
from ledger.linkage.sealing import Opened, read_header
from ledger.linkage.tree_heads import RelayMessage, TreeHeadMessage, WitnessIncident

__all__ = ["WITNESSING", "witnessing"]

WITNESSING = (RelayMessage.kind, TreeHeadMessage.kind, WitnessIncident.kind)
Seal = Callable[[str, Message], tuple[str, bytes]]


def witnessing(opened: Opened, directory: Directory, witnesses: Sequence[str], seal: Seal) -> list[tuple[str, bytes]]:
    """The messages the hub owes for one of the ``WITNESSING`` kinds; a ledger error (parked) if it is refused."""
    if opened.kind == RelayMessage.kind:
        m = decode(RelayMessage, opened.payload)
        inner = bytes.fromhex(m.sealed)
        header = read_header(inner)
        if header.sender != opened.sender or header.recipient != m.to or m.to in (HUB, opened.sender):
            raise PermissionDenied("a relay carries the sender's own message to another party", code=Code.WRONG_ROUTE)
        if m.to != PORTAL:  # the portal is always there: its key import may lag, its wire keys must not be lost
            directory.sealing_key(m.to)  # a party with a published key, or not_found
        return [(m.to, inner)]
    if opened.kind == TreeHeadMessage.kind:
        t = decode(TreeHeadMessage, opened.payload)
        if t.tree_head().origin != opened.sender:
            raise PermissionDenied(f"{opened.sender} sent another party's head", code=Code.WRONG_AGENCY)
        return [seal(w, t) for w in witnesses if w != opened.sender]
    if opened.kind == WitnessIncident.kind:
        incident = decode(WitnessIncident, opened.payload)
        raise IntegrityError(f"{opened.sender} reports {incident.code}: {incident.note}", code=incident.code)
    raise InputError(f"the hub takes no message of kind {opened.kind!r}", code=Code.MALFORMED)
