"""A guard that refuses I/O while armed: opening a file, a socket, a database or a process.

It is a Python audit hook, so C-level opens made through Python's own APIs are caught too. The domain tests
(tests/unit/domain/) arm it for the body of every test: the aggregates decide who may do what on a
protected person's flags, and must be testable, hence reviewable, without a data directory, keys or a
database.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Guard", "IOInDomainTest"]

# audit events that reach outside the process (see the "Audit events table" of the Python docs)
REFUSED = ("open", "os.", "shutil.", "socket.", "sqlite3.", "subprocess.", "ctypes.", "urllib.", "http.")
HARMLESS = ("os.putenv", "os.unsetenv")  # os.* events that touch nothing outside the process


class IOInDomainTest(BaseException):
    """Raised at the operation; a BaseException so that no ``except Exception`` in the code under test hides it."""


class Guard:
    armed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if Guard.armed and event.startswith(REFUSED) and not event.startswith(HARMLESS):
        Guard.armed = False  # so that reporting the failure may read source lines
        raise IOInDomainTest(f"a domain test reached I/O: {event} {args!r:.200}")


sys.addaudithook(_hook)  # one per process (this module is imported once); idle unless armed
