"""Files a node writes are its operator's alone: 0600 files in 0700 directories.

The databases, their SQLite ``-wal``/``-shm`` companions, audit reports, exported checkpoints and proofs,
``node-status.json`` and the keys all say something about protected people (or let someone act as the agency);
another account on the same machine must read none of them. SQLite creates a database file with mode
``0644 & ~umask`` and gives its ``-wal``/``-shm`` files the database file's own mode, so a database file
created 0600 here keeps its companions 0600 too. Every ``flagledger`` process also sets its umask to ``077``
(:func:`private_umask`), so a file this code forgets is still private.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import IO, Any

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "create_private",
    "open_private",
    "private_dir",
    "private_file",
    "private_umask",
    "replace_private",
    "write_private",
]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_umask() -> None:
    """New files 0600 and directories 0700 in this process (and the processes it starts)."""
    os.umask(0o077)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its missing parents, also 0700) or tighten it to 0700 if we own it."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # a mounted volume owned by another account: left as it is
        if path.stat().st_mode & 0o777 != PRIVATE_DIR:
            path.chmod(PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if it does not exist, or tighten it to 0600 (an empty file is a
    valid empty SQLite database: SQLite then writes into the file we made, with our mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    os.close(fd)
    with contextlib.suppress(PermissionError):
        if path.stat().st_mode & 0o777 != PRIVATE_FILE:
            path.chmod(PRIVATE_FILE)
    return path


def write_private(path: Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` (replacing it) with mode 0600, whatever the umask or the file's old mode."""
    raw = data.encode(encoding) if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
    with contextlib.suppress(PermissionError):
        os.chmod(path, PRIVATE_FILE)


def create_private(path: Path, data: bytes, *, replace: bool = False) -> bool:
    """Put ``data`` at ``path`` whole, mode 0600, unless a file is there already (``replace``: in any case).
    Whether this call's ``data`` was put there.

    Written under a private name, then put in place in one step: two threads (API requests) or processes asking
    at once never read a half-written file, and without ``replace`` only the first one's is kept."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def replace_private(path: Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600: a reader sees the old file or the new one, never a
    truncated one (``node-status.json`` is rewritten several times a second while monitoring reads it).

    The new content goes to a private temporary file beside ``path`` (``mkstemp`` creates it 0600) and is
    renamed over it. No fsync: this is for state that is rewritten soon anyway; after a power cut the file is
    the old or the new version, or empty, and the next write repairs it.
    """
    raw = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE)


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file created (or tightened to) 0600."""
    fh: IO[Any] = open(path, mode, opener=_opener, **kwargs)  # noqa: SIM115 (the caller closes it)
    with contextlib.suppress(PermissionError):
        os.chmod(path, PRIVATE_FILE)
    return fh
