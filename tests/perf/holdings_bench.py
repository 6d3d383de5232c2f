"""The code-map reads behind each head's holdings (``MapHeads.holdings_of``): one query per holding, as it was,
against one query for them all (``SqlCodeMap.holder_codes``), in the same run on the same SQLite hub database:
``python -m tests.perf.holdings_bench [--holdings N] [--others M] [--runs K] [--json PATH]``.

A head goes to every agency after every change and at least every 10 s, so this is paid per head per holder.
Each figure is the median of K runs; the ratio is "one per holding" over "one query". No figure is asserted:
``tests/perf/test_holdings_bench_smoke.py`` only runs it (and checks both reads agree).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert

from ledger.hub.log import open_hub_store
from ledger.hub.tables import hub_codes

HOLDER, OTHER = "131016", "131024"


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(holdings: int, others: int, runs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_hub_store(f"sqlite:///{Path(tmp) / 'hub.sqlite'}", "bench")
        try:
            held = [secrets.token_hex(16) for _ in range(holdings)]
            rest = [secrets.token_hex(16) for _ in range(others)]  # registered at the holder, held by nobody
            rows = [{"holder": HOLDER, "code": secrets.token_hex(16), "person": p} for p in held + rest]
            rows += [{"holder": OTHER, "code": secrets.token_hex(16), "person": p} for p in held[::3]]
            with store.engine.begin() as conn:
                conn.execute(insert(hub_codes), rows)
            codes = store.codes
            wanted = set(held)

            def per_holding() -> dict[str, str]:
                got = {p: codes.codes(p).get(HOLDER) for p in held}
                return {p: c for p, c in got.items() if c is not None}

            def one_query() -> dict[str, str]:
                return codes.holder_codes(HOLDER, wanted)

            if per_holding() != one_query():
                raise AssertionError("the two reads of the holder's codes differ")
            old, new = _median(per_holding, runs), _median(one_query, runs)
        finally:
            store.close()
    return {
        "holdings": holdings,
        "others": others,
        "runs": runs,
        "figures": [
            {"figure": "the holder's codes, one query per holding (s)", "seconds": old},
            {"figure": "the holder's codes, one query (s)", "seconds": new},
        ],
        "ratio_old_over_new": old / new if new else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--holdings", type=int, default=20_000)
    ap.add_argument("--others", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    result = run(args.holdings, args.others, args.runs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
