"""``flagledger demo``: the seed, end to end, on a fresh node (scenes in ``demo_story``, tables in ``demo_tables``).

The demo runs real ledger commands on a fresh SQLite data directory hosting municipalities A, B and C, and
prints what the real projections return: what Y (the perpetrator) can see on Mynaportal, at A's counter, with
X's card and as X's proxy, before and after B protects X, after X moves on to C, and after release. Every
table it prints is scanned for the victim's whereabouts (B, later C); a step after protection that shows
them, or whose expected outcome does not hold, makes the command exit 1 — the demo is also a check.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click

from ledger.cli.demo_story import Demo
from ledger.cli.demo_tables import NAMES, X_NUMBER, Y_NUMBER, A, B, C, DemoResult, Step, Table
from ledger.cli.parsing import OneOf, SafeCommand, option
from ledger.errors import InputError
from ledger.runtime.bootstrap import AgencySpec, init_node

TOPOLOGIES = ("one-node", "hub")

__all__ = [
    "NAMES",
    "TOPOLOGIES",
    "X_NUMBER",
    "Y_NUMBER",
    "Demo",
    "DemoResult",
    "Step",
    "print_step",
    "run_demo",
    "run_hub_demo",
]


def print_step(step: Step, stream: TextIO = sys.stdout) -> None:
    tag = "  [after protection: checked]" if step.protected else ""
    print(f"\n== Step {step.number}. {step.title}{tag}", file=stream)
    for item in step.items:
        print(item.render() if isinstance(item, Table) else f"   · {item}", file=stream)
    for leak in step.leaks:
        verdict = "LEAK (fails the demo)" if step.protected else "leak (expected: not protected yet)"
        print(f"   ⚠ {verdict}: {leak}", file=stream)
    for f in step.failed:
        print(f"   ✗ expected, but did not hold: {f}", file=stream)
    if step.protected and not step.leaks and not step.failed:
        print("   ✓ no view Y can reach names B or C", file=stream)


@contextmanager
def _demo_environment() -> Iterator[None]:
    """The demo always runs on embedded SQLite with its own secrets: never on a deployment's database or keys
    that FLAGLEDGER_* variables may point at."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("FLAGLEDGER_")}
    try:
        yield
    finally:
        os.environ.update(saved)


def run_demo(data_dir: Path, emit: Callable[[Step], None] = print_step) -> DemoResult:
    started = time.perf_counter()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise InputError(f"{data_dir} is not empty: the demo needs a fresh data directory")
    with _demo_environment():
        return _play(data_dir, emit, started)


def run_hub_demo(data_dir: Path, emit: Callable[[Step], None] = print_step) -> DemoResult:
    """The seed with A, B and C as hub-mode agency nodes, a hub and a portal, each in its own directory under
    ``data_dir`` (``ledger.cli.demo_hub_world``), in this process on one in-memory broker."""
    from ledger.cli.demo_hub_story import HubDemo
    from ledger.cli.demo_hub_world import HubWorld

    started = time.perf_counter()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise InputError(f"{data_dir} is not empty: the demo needs a fresh data directory")
    with _demo_environment():
        world = HubWorld.open(data_dir)
        try:
            steps = HubDemo(world, emit).run()
        finally:
            world.close()
    return DemoResult(steps, data_dir, time.perf_counter() - started)


def _play(data_dir: Path, emit: Callable[[Step], None], started: float) -> DemoResult:
    node = init_node(
        data_dir,
        [
            AgencySpec(A, "A市", "municipality", second_administrator="admin2"),
            AgencySpec(B, "B市", "municipality", second_administrator="admin2"),
            AgencySpec(C, "C市", "municipality", second_administrator="admin2"),
        ],
    )
    try:
        steps = Demo(node, emit).run()
    finally:
        node.close()
    return DemoResult(steps, data_dir, time.perf_counter() - started)


# its own --data-dir (a fresh directory, never the node's): so not the commands' shared option
@click.command(
    "demo", cls=SafeCommand, help="play the seed scenario end to end on a fresh SQLite node (exit 1 on a leak)"
)
@option(
    "--data-dir",
    "demo_dir",
    default=None,
    help="an empty directory to keep the demo's node in (default: a new temporary directory)",
)
@option(
    "--topology",
    type=OneOf(TOPOLOGIES),
    default="one-node",
    show_default=True,
    help="one-node: A, B, C on one node (shared mode); hub: A, B, C, a hub and a portal, each its own directory",
)
def demo(demo_dir: str | None, topology: str) -> int:
    data_dir = Path(demo_dir) if demo_dir else Path(tempfile.mkdtemp(prefix="flagledger-demo-"))
    print(f"flagledger demo — the seed, end to end, in {data_dir}")
    print(
        f"X (victim) = {X_NUMBER}, Y (perpetrator) = {Y_NUMBER} (fictitious numbers; the ledger stores only pseudonyms)"
    )
    result = run_hub_demo(data_dir) if topology == "hub" else run_demo(data_dir)
    if topology == "hub":
        return _hub_verdict(result)
    late = [s for s in result.steps if s.protected and s.leaks]
    failed = [s for s in result.steps if s.failed]
    print(f"\n{len(result.steps)} steps in {result.seconds:.1f} s; data directory kept at {data_dir}")
    if result.ok:
        print(
            "OK: before protection Y learned B; after protection no view Y can reach named B or C, "
            "and every expected outcome held."
        )
        return 0
    print(
        f"FAILED: {len(late)} step(s) leaked after protection, {len(failed)} step(s) missed an expected "
        "outcome (see ⚠/✗ above).",
        file=sys.stderr,
    )
    return 1


def _hub_verdict(result: DemoResult) -> int:
    failed = [s for s in result.steps if s.failed]
    print(f"\n{len(result.steps)} steps in {result.seconds:.1f} s; the parties' directories kept in {result.data_dir}")
    if result.ok:
        print(
            "OK: C's query about X was held for A's staff, not answered automatically; A never learned B; "
            "the portal hid X's record; C took over X's protection from B through the hub, named no holder; no "
            "party's files hold an individual number."
        )
        return 0
    print(f"FAILED: {len(failed)} step(s) missed an expected outcome (see ✗ above).", file=sys.stderr)
    return 1
