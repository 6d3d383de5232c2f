"""Child process of the memory figure: ``python rss_child.py rebuild|audit DATA_DIR [HEADS_IN_MEMORY]``.

Prints one JSON line: resident set size (MB) after opening the node, at each tenth of the work, the peak
sampled per page and ``VmHWM`` (the kernel's own peak for this process image). The audit's worker processes
(``ledger.audit.workers``) are sampled with it: ``workers_peak_mb`` is the largest sum of their ``VmHWM`` seen,
and ``total_mb`` (own ``VmHWM`` plus that) is what the memory figure reports. ``ru_maxrss`` is not used: on
Linux it survives ``exec`` and so reports the parent's peak (the benchmark itself) as the child's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parents[2]))


def main() -> None:
    from ledger.audit.verify import verify_log
    from ledger.runtime.bootstrap import open_node

    what, data_dir = sys.argv[1], Path(sys.argv[2])
    heads = {"heads_in_memory": int(sys.argv[3])} if len(sys.argv) > 3 else {}
    proc = psutil.Process()
    mb = lambda: proc.memory_info().rss / 2**20  # noqa: E731
    node = open_node(data_dir)
    opened = mb()
    tenths: dict[int, float] = {}
    spilled = 0
    peak = opened
    workers_peak = 0.0

    def progress(position: int, end: int) -> None:
        nonlocal peak, workers_peak
        rss = mb()
        peak = max(peak, rss)
        workers = sum(vm_hwm_kb(c.pid) for c in proc.children(recursive=True)) / 1024
        workers_peak = max(workers_peak, workers)
        tenths.setdefault(min(10, position * 10 // max(end, 1)), rss)

    if what == "rebuild":
        events = node.projector.rebuild(progress=progress)
    else:
        report = verify_log(node.app, progress=progress, **heads)
        assert report.ok, report.first_bad
        events = report.events
        spilled = report.heads_spilled
    node.close()
    print(
        json.dumps(
            {
                "what": what,
                "events": events,
                **({"heads_spilled": spilled} if what == "audit" else {}),
                "opened_mb": round(opened, 1),
                "peak_mb": round(peak, 1),
                "by_tenth_mb": {k: round(v, 1) for k, v in sorted(tenths.items())},
                "vm_hwm_mb": round(vm_hwm_kb() / 1024, 1),
                "workers_peak_mb": round(workers_peak, 1),
                "total_mb": round(vm_hwm_kb() / 1024 + workers_peak, 1),
            }
        )
    )


def vm_hwm_kb(pid: int | str = "self") -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # a worker that ended between listing and reading
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status (not Linux?)")


if __name__ == "__main__":
    main()
