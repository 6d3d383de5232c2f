"""The flag map's costs against plain SHA-256 in the same run:
``python -m tests.perf.flag_map_bench [--keys N] [--ops M] [--runs K] [--json PATH]``.

Each figure is the median of K runs, per operation, and as a count of "SHA-256 equivalents": the time of one
SHA-256 of a 65-byte input (a map node's) measured by a plain loop in the same process. A figure near its hash
count (an update ~256 hashes, a verification ~256, a non-member's verification ~log2 N) means the Python around
the hashing costs little. No figure is asserted: ``tests/perf/test_flag_map_bench_smoke.py`` only runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ledger.linkage.flag_map import FlagEntry, SparseMerkleMap, verify

VALUE = FlagEntry(frozenset({"NO_AUTO_RESPONSE"})).encode()


def _per_op(fn: Callable[[], int], runs: int) -> float:
    """Median seconds per operation over ``runs`` runs; ``fn`` does the work and returns how many ops it did."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        ops = fn()
        times.append((time.perf_counter() - start) / ops)
    return statistics.median(times)


def run(keys: int, ops: int, runs: int) -> dict[str, object]:
    data = [b"\x01" + os.urandom(64) for _ in range(ops)]

    def baseline() -> int:
        for d in data:
            hashlib.sha256(d).digest()
        return len(data)

    members = [os.urandom(32) for _ in range(keys)]
    start = time.perf_counter()
    m = SparseMerkleMap((k, VALUE) for k in members)
    root = m.root()
    build = time.perf_counter() - start
    probe = members[:ops]
    absent = [os.urandom(32) for _ in range(ops)]
    member_proofs = [m.prove(k) for k in probe]
    absent_proofs = [m.prove(k) for k in absent]

    def update() -> int:
        for k in probe:
            m.set(k, VALUE)
            m.root()
        return len(probe)

    def prove_member() -> int:
        for k in probe:
            m.prove(k)
        return len(probe)

    def prove_absent() -> int:
        for k in absent:
            m.prove(k)
        return len(absent)

    def verify_member() -> int:
        assert all(verify(p, root) for p in member_proofs)
        return len(member_proofs)

    def verify_absent() -> int:
        assert all(verify(p, root) for p in absent_proofs)
        return len(absent_proofs)

    sha = _per_op(baseline, runs)
    figures = {
        "update one key and read the root": _per_op(update, runs),
        "prove a member": _per_op(prove_member, runs),
        "prove a non-member": _per_op(prove_absent, runs),
        "verify a member's proof": _per_op(verify_member, runs),
        "verify a non-member's proof": _per_op(verify_absent, runs),
    }
    sizes = [len(p.siblings) for p in member_proofs]
    return {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "keys": keys,
        "ops": ops,
        "runs": runs,
        "build_seconds": build,
        "sha256_65_bytes_us": sha * 1e6,
        "siblings_per_proof_median": statistics.median(sizes),
        "proof_bytes_median": statistics.median(len(p.encode()) for p in member_proofs),
        "figures": [{"figure": k, "us": v * 1e6, "sha256_equivalents": v / sha} for k, v in figures.items()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=100_000, help="people in the map (default 100000)")
    parser.add_argument("--ops", type=int, default=500, help="operations per figure and run (default 500)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    result = run(args.keys, min(args.ops, args.keys), args.runs)
    print(
        f"{result['keys']} keys, built in {result['build_seconds']:.1f} s; SHA-256 of 65 bytes: "
        f"{result['sha256_65_bytes_us']:.2f} µs; a proof: {result['siblings_per_proof_median']} siblings, "
        f"{result['proof_bytes_median']} bytes (medians)"
    )
    for f in result["figures"]:  # type: ignore[attr-defined]
        print(f"  {f['figure']:<36} {f['us']:>9.1f} µs  = {f['sha256_equivalents']:>6.0f} × SHA-256")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
