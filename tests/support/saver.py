"""A process saving events as fast as it can: ``python -m tests.support.saver DATA_DIR AGENCY COUNT TAG GATE``.

It opens the node, creates ``GATE/ready-TAG`` and starts saving once ``GATE/go`` exists (so that two start
together).

Batches of 1-4 access records, each its own transaction, as an API server or a CLI command would make them;
two of these at once race for the store's write lock (tests/integration/test_log_head_concurrency.py).
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from pathlib import Path

from ledger.domain.identity import AccessRecord
from ledger.runtime.bootstrap import open_node


def _pseudonym(seed: str) -> str:
    return "p" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def main(data_dir: str, agency: str, count: int, tag: str, gate: str) -> None:
    node = open_node(Path(data_dir))
    rng = random.Random(tag)
    (Path(gate) / f"ready-{tag}").touch()
    deadline = time.monotonic() + 60
    while not (Path(gate) / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        saved = 0
        while saved < count:
            n = min(count - saved, rng.randint(1, 4))
            records = [
                AccessRecord(
                    agency=agency, staff="aud", subject=_pseudonym(f"{tag}{saved + i}"), what=tag, purpose="concurrency"
                )
                for i in range(n)
            ]
            node.app.save_as(agency, *records)
            saved += n
            # a client thinks between writes (and SQLite's busy handler lets a waiting writer in only then)
            time.sleep(rng.random() * 0.004)
    finally:
        node.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
