"""The parties and flags of the hub leak-freedom model (``hub_model.py``): the three agencies, the two flags, and
the refusals the product owes a random history."""

from __future__ import annotations

from ledger.errors import Code
from tests.support.hub_world import A, B, C

ND, NAR = "NON_DISCLOSURE", "NO_AUTO_RESPONSE"
AGENCIES = (A, B, C)
# refusals the product owes a random history; anything else raised is a failure of the test
OWED = {Code.HANDOVER_PENDING, Code.NOT_RESIDENCE}
