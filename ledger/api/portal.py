"""The portal role's HTTP routes (issue 19): card sign-in and a person's page, served by ``flagledger node`` on a
portal directory with ``--serve-port`` (the metrics port stays the operators': it serves only ``/metrics``,
``/healthz`` and ``/readyz`` and is bound to 127.0.0.1 by default).

* ``POST /portal/v1/challenges``: a one-time challenge (hex) and when it expires;
* ``POST /portal/v1/sign-in``: the challenge, the card's certificate and its signature over the challenge
  (``ledger.portal.cards``) → a short-lived bearer token;
* ``GET /portal/v1/page`` (``?viewer=guardian``): the signed-in card's page;
* ``POST /portal/v1/proxy-page``: a proxy, signed in with their own card, names the person by number (in the
  body, never the URL) → the person's page if the hub lists them as proxy;
* ``POST /portal/v1/sign-out``.

Errors are the API's (``ledger.api.errors``): 401 with the sign-in's code (``card_certificate``,
``card_issuer_unknown``, ``card_expired``, ``card_signature``, ``challenge_expired``, ``challenge_unknown``,
``unauthenticated``, ``session_ended``), 403 ``card_revoked`` or ``proxy_refused`` with a fixed wording, 404
``not_found`` while the hub has not fed the card's page yet, 422 ``invalid_input`` naming the field only. No
route takes a number to sign anyone in: a guessed number without the card gets nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from ledger.api.errors import install_error_handlers
from ledger.api.gate import DEFAULT_CONCURRENCY, ConcurrencyGate
from ledger.api.schemas import ERROR_RESPONSES
from ledger.errors import AuthError
from ledger.portal.cards import MAX_CERTIFICATE
from ledger.portal.rules import PortalView
from ledger.portal.sign_ins import CardSignIns

__all__ = ["create_portal_app"]

router = APIRouter(prefix="/portal/v1", tags=["the portal"], responses=ERROR_RESPONSES)
bearer = HTTPBearer(auto_error=False, description="the token POST /portal/v1/sign-in gave")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChallengeOut(_Strict):
    challenge: str
    expires_at: str


class SignInIn(_Strict):
    challenge: str = Field(min_length=2 * 32, max_length=2 * 32, pattern="^[0-9a-f]+$")
    certificate: str = Field(min_length=1, max_length=MAX_CERTIFICATE)
    signature: str = Field(min_length=128, max_length=128, pattern="^[0-9a-f]+$")


class SessionOut(_Strict):
    token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_at: str


class ProxyPageIn(_Strict):
    number: str = Field(min_length=12, max_length=14, description="the person's individual number")


class RecordOut(_Strict):
    record_id: str
    made_at: str
    querier: str
    provider: str
    procedure: str
    legal_item: int
    info_kind: str
    outcome: str


class PageOut(_Strict):
    records: list[RecordOut]
    note: str | None


def _sign_ins(request: Request) -> CardSignIns:
    found: CardSignIns = request.app.state.sign_ins
    return found


SignIns = Annotated[CardSignIns, Depends(_sign_ins)]


def _token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError("send `Authorization: Bearer <token>` from POST /portal/v1/sign-in")
    return credentials.credentials


Token = Annotated[str, Depends(_token)]


def _page(shown: PortalView) -> PageOut:
    return PageOut(records=[RecordOut(**asdict(r)) for r in shown.records], note=shown.note)


@router.post("/challenges", response_model=ChallengeOut, status_code=201, summary="a one-time sign-in challenge")
def challenge(sign_ins: SignIns) -> ChallengeOut:
    value, expires = sign_ins.challenge()
    return ChallengeOut(challenge=value, expires_at=expires)


@router.post("/sign-in", response_model=SessionOut, summary="sign a card in: its certificate and its signature")
def sign_in(body: SignInIn, sign_ins: SignIns) -> SessionOut:
    session = sign_ins.sign_in(body.challenge, body.certificate, body.signature)
    return SessionOut(token=session.token, expires_at=session.expires_at)


@router.get("/page", response_model=PageOut, summary="the signed-in card's page (as the person, or guardian)")
def page(sign_ins: SignIns, token: Token, viewer: Annotated[Literal["self", "guardian"], Query()] = "self") -> PageOut:
    return _page(sign_ins.page(token, viewer))


@router.post("/proxy-page", response_model=PageOut, summary="a person's page, read by their proxy's own card")
def proxy_page(body: ProxyPageIn, sign_ins: SignIns, token: Token) -> PageOut:
    return _page(sign_ins.proxy_page(token, body.number))


@router.post("/sign-out", status_code=204, summary="end the session")
def sign_out(sign_ins: SignIns, token: Token) -> Response:
    sign_ins.sign_out(token)
    return Response(status_code=204)


def create_portal_app(sign_ins: CardSignIns, concurrency: int = DEFAULT_CONCURRENCY) -> FastAPI:
    """The portal's ASGI app over ``sign_ins`` (its store, keys, directory and trusted card issuers), working on
    at most ``concurrency`` requests at once (``ledger.api.gate``, as the agency's API)."""
    app = FastAPI(title="flagledger portal", version="1", docs_url=None, redoc_url=None)
    app.state.sign_ins = sign_ins
    app.state.gates = []  # SIGTERM stops admitting through these (ledger.api.gate.stop_admitting)
    install_error_handlers(app)
    app.include_router(router)

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.add_middleware(ConcurrencyGate, limit=concurrency, gates=app.state.gates)  # the outermost of ours
    return app


_HEADERS: dict[str, Any] = {
    "Cache-Control": "no-store",  # a person's page is never kept by a shared cache or the browser
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
