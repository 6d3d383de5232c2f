"""The app factory: routers, error mapping, security headers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from ledger.api import (
    bodies,
    commands,
    companions,
    console,
    console_acts,
    console_bodies,
    console_cases,
    console_codes,
    console_guardians,
    console_identity,
    console_keys,
    console_probes,
    console_prompts,
    console_proxy_approvals,
    console_references,
    console_requests,
    console_signin,
    console_year,
    console_year_acts,
    disclosure,
    incidents,
    proxy_approvals,
    queries,
    system,
    year,
)
from ledger.api.errors import install_error_handlers
from ledger.api.gate import ConcurrencyGate
from ledger.api.settings import HttpSettings
from ledger.capacity import Capacity
from ledger.runtime.bootstrap import Node

__all__ = ["create_app", "openapi_document"]

DESCRIPTION = """\
Commands and queries of a flagledger node for staff and system callers.

Every call carries `Authorization: Bearer <token>`; tokens come from each person's own sign-in
(`POST /api/v1/sign-in`, `flagledger staff token`) and are bound to
an agency, a staff member and roles. The agency's recorded permission table decides, as on the command line.
Errors are `{"code": ..., "message": ...}`: 401 unauthenticated, 403 refused (the code never tells whether a
person is protected), 404 unknown, 409 conflict, 422 invalid input (`fields` names them).
"""


def create_app(node: Node | None = None, concurrency: int | None = None) -> FastAPI:
    """The ASGI app serving ``node`` (None: only for producing the OpenAPI document), working on at most
    ``concurrency`` requests at once (default: the node's configured capacity; see ``ledger.api.gate``)."""
    app = FastAPI(
        title="flagledger",
        version="1",
        description=DESCRIPTION,
        docs_url=None,  # no third-party scripts in a console handling victims' data
        redoc_url=None,
    )
    app.state.node = node
    app.state.gates = []  # SIGTERM stops admitting through these (ledger.api.gate.stop_admitting)
    app.state.http = HttpSettings.from_config(node.config if node is not None else None)
    install_error_handlers(app)
    app.include_router(commands.router)
    app.include_router(year.router)
    app.include_router(companions.router)
    app.include_router(proxy_approvals.router)
    app.include_router(bodies.router)
    app.include_router(disclosure.router)
    app.include_router(queries.router)
    app.include_router(console.router)
    app.include_router(console_signin.router)
    app.include_router(console_keys.router)
    app.include_router(console_codes.router)
    app.include_router(console_requests.router)
    app.include_router(console_references.router)
    app.include_router(console_year.router)
    app.include_router(console_year_acts.router)
    app.include_router(console_cases.router)
    app.include_router(console_prompts.router)
    app.include_router(console_guardians.router)
    app.include_router(console_proxy_approvals.router)
    app.include_router(console_identity.router)
    app.include_router(console_probes.router)
    app.include_router(console_acts.router)
    app.include_router(console_bodies.router)
    app.include_router(incidents.router)
    app.include_router(system.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'"
        )
        return response

    if concurrency is None:
        concurrency = Capacity.from_config(node.config).api_concurrency if node is not None else 1
    app.add_middleware(ConcurrencyGate, limit=concurrency, gates=app.state.gates)  # added last: the outermost of ours
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document (the console's HTML pages are left out of it)."""
    doc: dict[str, Any] = create_app(None).openapi()
    return doc


def openapi_text() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
