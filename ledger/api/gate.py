"""How many HTTP requests a node works on at once; the rest wait their turn, in order, on the event loop.

The routers are synchronous: each request's work runs on one of anyio's worker threads (40) and holds a
database connection from the event store's pool and the views' pool while it does. Admitting at most
``limit`` requests (fewer than the threads and the pools' connections) means a request that got in always
finds a thread and a connection, so nothing can wait on something held by a request that is itself waiting.
Waiting requests hold neither: they are futures queued here. On SIGTERM (:func:`stop_admitting`) the queue is
answered at once with 503 ``stopping`` and a Retry-After — they touched nothing, so the client may send them
again to a node that is up — and the requests already admitted get the whole graceful-shutdown time to finish.
Leaving the queue to that time instead had uvicorn cancel what was still waiting when it ran out, and a
cancelled request is answered 500, indistinguishable from a bug.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.capacity import MAX_API_CONCURRENCY, Capacity
from ledger.errors import Code

__all__ = ["DEFAULT_CONCURRENCY", "MAX_CONCURRENCY", "STOPPING_BODY", "ConcurrencyGate", "stop_admitting"]

DEFAULT_CONCURRENCY: int = Capacity.model_fields["api_concurrency"].default
MAX_CONCURRENCY = MAX_API_CONCURRENCY

STOPPING_BODY = {
    "code": Code.STOPPING,
    "message": "the server is stopping and did not start this request; nothing was done: send it again",
}
_STOPPING = json.dumps(STOPPING_BODY).encode()


class ConcurrencyGate:
    """ASGI middleware admitting ``limit`` HTTP requests at a time, first come first served."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_CONCURRENCY, gates: list[ConcurrencyGate] | None = None):
        if not 1 <= limit <= MAX_CONCURRENCY:
            raise ValueError(f"API concurrency must be 1-{MAX_CONCURRENCY}")
        self.app = app
        self.limit = limit
        self.running = 0
        self.stopping = False
        self._queue: collections.deque[asyncio.Future[bool]] = collections.deque()
        if gates is not None:
            gates.append(self)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not await self._admit():
            await _answer_stopping(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    def stop(self) -> None:
        """Answer every waiting request (and every later one) with 503 ``stopping``; admitted ones go on."""
        self.stopping = True
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(False)

    async def _admit(self) -> bool:
        if self.stopping:
            return False
        if self.running < self.limit and not self._queue:
            self.running += 1
            return True
        turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            return await turn
        except asyncio.CancelledError:
            # the client went away: a turn handed over just before must pass on, not be lost
            if turn.done() and not turn.cancelled() and turn.result():
                self._release()
            else:
                with contextlib.suppress(ValueError):  # already taken off by stop()
                    self._queue.remove(turn)
            raise

    def _release(self) -> None:
        # the slot passes straight to the next in line, so ``running`` never dips and lets a newcomer jump it
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(True)
                return
        self.running -= 1


async def _answer_stopping(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_STOPPING)).encode()),
                (b"retry-after", b"5"),
                (b"connection", b"close"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _STOPPING})


def stop_admitting(app: object) -> None:
    """SIGTERM's first step for an app made by :func:`ledger.api.create_app`: see the module's note."""
    for gate in getattr(getattr(app, "state", None), "gates", []):
        gate.stop()
