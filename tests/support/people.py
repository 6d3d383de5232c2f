"""Valid individual numbers for tests (never real people: generated with a correct check digit)."""

from __future__ import annotations

import random

from ledger.log.pseudonym import check_digit


def individual_number(rng: random.Random | None = None) -> str:
    r = rng or random.Random()
    first = "".join(str(r.randrange(10)) for _ in range(11))
    return first + str(check_digit(first))
