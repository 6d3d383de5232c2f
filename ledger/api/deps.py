"""Request-scoped pieces shared by the routers: the node and the authenticated caller.

Requests share one node without a lock around them: reads run side by side, and each write is one sealed
batch that the event store serialises (SQLite's writer lock, PostgreSQL's table lock); a write racing another
on the same stream loses at the unique (stream, version) key and answers 409. The pieces of the node kept in
memory are safe for that (see ``docs/concurrency.md``); how many requests run at once is bounded by
:class:`ledger.api.gate.ConcurrencyGate`, below the worker threads and the database connections.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.api.auth import Principal, verify_token
from ledger.errors import AuthError
from ledger.runtime.bootstrap import Node

__all__ = ["COOKIE", "Caller", "CurrentNode", "LockedNode", "caller", "current_node"]

COOKIE = "flagledger_session"
bearer = HTTPBearer(
    auto_error=False, description="your own token: `flagledger staff token --as AGENCY/YOU` or POST /api/v1/sign-in"
)


async def current_node(request: Request) -> Node:
    """The node serving this app (async: a plain attribute read needs no worker thread)."""
    node: Node = request.app.state.node
    return node


CurrentNode = Annotated[Node, Depends(current_node)]
# the name the routers used while a lock was held around every request (kept for the console's imports)
LockedNode = CurrentNode


def caller(
    node: CurrentNode, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError(
            "send `Authorization: Bearer <token>` "
            "(from your own sign-in: `flagledger staff token` or POST /api/v1/sign-in)"
        )
    return verify_token(node, credentials.credentials)


Caller = Annotated[Principal, Depends(caller)]
