"""Request-scoped pieces shared by the routers: the node (one at a time) and the authenticated caller."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.api.auth import AuthError, Principal, verify_token
from ledger.bootstrap import Node

__all__ = ["COOKIE", "Caller", "LockedNode", "caller", "locked_node"]

COOKIE = "flagledger_session"
bearer = HTTPBearer(auto_error=False, description="token from `flagledger staff token --as AGENCY/ADMIN STAFF`")


def _lock(request: Request) -> threading.Lock:
    lock: threading.Lock = request.app.state.lock
    return lock


def locked_node(request: Request) -> Iterator[Node]:
    """The node, held for the whole request: the ledger application and its projector are used by one
    request at a time (a staff console's load; reads follow writes without interleaving)."""
    with _lock(request):
        node: Node = request.app.state.node
        yield node


LockedNode = Annotated[Node, Depends(locked_node)]


def caller(
    node: LockedNode, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError("send `Authorization: Bearer <token>` (issued by `flagledger staff token`)")
    return verify_token(node, credentials.credentials)


Caller = Annotated[Principal, Depends(caller)]
