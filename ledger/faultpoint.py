"""A test seam for the fault-injection suite (``tests/faults``): die at a named point.

Inert unless ``FLAGLEDGER_FAULTPOINT=name:count`` is set in the environment (never in production): the
``count``-th time this process passes ``faultpoint(name)`` it SIGKILLs itself, exactly as a power cut or
the OOM killer would — nothing flushed, closed or committed.
"""

from __future__ import annotations

import os
import signal

__all__ = ["faultpoint"]

ENV = "FLAGLEDGER_FAULTPOINT"
_passes: dict[str, int] = {}


def faultpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec or not spec.startswith(name + ":"):
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] >= int(spec.rsplit(":", 1)[1]):
        os.kill(os.getpid(), signal.SIGKILL)
