"""How many HTTP requests a node works on at once; the rest wait their turn, in order, on the event loop.

The routers are synchronous: each request's work runs on one of anyio's worker threads (40) and holds a
database connection from the event store's pool and the views' pool while it does. Admitting at most
``limit`` requests (fewer than the threads and the pools' connections) means a request that got in always
finds a thread and a connection, so nothing can wait on something held by a request that is itself waiting.
Waiting requests hold neither: they are coroutines parked on a semaphore, which SIGTERM's graceful shutdown
lets finish (or, past ``flagledger serve --shutdown-timeout``, cancels before they touched anything).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.capacity import MAX_API_CONCURRENCY, Capacity

__all__ = ["DEFAULT_CONCURRENCY", "MAX_CONCURRENCY", "ConcurrencyGate"]

DEFAULT_CONCURRENCY: int = Capacity.model_fields["api_concurrency"].default
MAX_CONCURRENCY = MAX_API_CONCURRENCY


class ConcurrencyGate:
    """ASGI middleware admitting ``limit`` HTTP requests at a time, first come first served."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_CONCURRENCY) -> None:
        if not 1 <= limit <= MAX_CONCURRENCY:
            raise ValueError(f"API concurrency must be 1-{MAX_CONCURRENCY}")
        self.app = app
        self.limit = limit
        self._admitted = asyncio.Semaphore(limit)
        self.waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.waiting += 1
        try:
            await self._admitted.acquire()
        finally:
            self.waiting -= 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._admitted.release()
