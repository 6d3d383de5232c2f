"""``flagledger projections rebuild``: the read models, rebuilt from the log."""

from __future__ import annotations

from ledger.cli.base import command, group, node, out, progress_printer
from ledger.cli.parsing import argument
from ledger.errors import InputError

projections = group("projections", "read models")


@command(projections, "rebuild", help="rebuild projections from the log")
@argument("name", nargs=-1)
def rebuild(name: tuple[str, ...]) -> int:
    """The progress line counts log positions read (every event of the log, up to its head); ``events_projected``
    counts the events among them that some projection reads (the rest, e.g. key and staff events, are passed)."""
    opened = node()
    known = opened.projector.by_name
    names = list(name) or None
    if names:
        unknown = set(names) - set(known)
        if unknown:
            raise InputError(f"unknown projection {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    show = progress_printer("rebuild (log positions)")
    read = [0]

    def progress(done: int, total: int) -> None:
        read[0] = done
        show(done, total)

    projected = opened.projector.rebuild(names, progress=progress)
    out({"rebuilt": names or sorted(known), "log_positions": read[0], "events_projected": projected})
    return 0
