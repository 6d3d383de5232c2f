"""Our exception tree → HTTP answers. Nothing ever returns a stack trace; a 5xx is a bug or a broken store.

Refusals (403) carry the reason *code* and a fixed wording for that code, never the exception's own text:
the text may name agencies or roles, and a refusal must not tell anyone more than that it was refused.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import (
    AuthError,
    Code,
    ConfigurationError,
    FlagLedgerError,
    InputError,
    IntegrityError,
    NotFoundError,
    PermissionDenied,
    RuleViolation,
    SelfApprovalError,
    StorageError,
)

__all__ = ["FORBIDDEN_MESSAGES", "install_error_handlers", "status_for"]

log = logging.getLogger("flagledger.api")

FORBIDDEN_MESSAGES = {
    "foreign_agency": "that agency is not served by this node",
    "unknown_staff": "the staff member is not enrolled",
    "inactive_staff": "the staff member is deactivated",
    "role_not_permitted": "your roles do not allow this action",
    "token_scope": "your token's roles do not cover this action",
    "four_eyes": "the same person may not request and approve or decide (four eyes)",
    "role_conflict": "separation of duties: an administrator may not request, approve or execute, and a role may "
    "not gain these through the permission table (docs/staff.md)",
    "system_only": "only the portal's system account may do this, for the person or their proxy",
    "staff_only": "a system account acts only as its kind, never as a staff member",
    "system_role": "system accounts' roles and permissions belong to them alone",
    "holders_withheld": "which agencies protect a person is never shown to another agency",
    "staff_signature": "an act of this request is not signed by a certified staff member of the agency",
    "staff_signature_required": "acts are signed by the person: unlock your staff key first",
    "card_revoked": "this card was revoked or its number replaced: sign in with your current card",
    "proxy_refused": "this view of the person's page is not open to you (a proxy reads with their own card)",
    "forbidden": "not allowed",
}


_CONSOLE_422 = (
    '<!doctype html><html lang="ja"><meta charset="utf-8"><title>入力エラー</title>'
    "<p>入力内容に誤りがあります。必須項目を入力し、ページを再読み込みしてからやり直してください。</p>"
    '<p><a href="/console/">ホームへ戻る</a></p></html>'
)


# codes whose HTTP answer is not their class's: a flag act whose staff signature does not verify is an
# IntegrityError to the ledger (ingest and ``audit verify`` treat it as one), but over HTTP it is the caller's
# request that is refused — nothing is wrong with the store, so it must not read as an outage (503)
_STATUS_BY_CODE = {Code.STAFF_SIGNATURE: 403}


def status_for(exc: FlagLedgerError) -> int:
    by_code = _STATUS_BY_CODE.get(exc.code)
    if by_code is not None:
        return by_code
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, InputError):
        return 422
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PermissionDenied | SelfApprovalError):
        return 403
    if isinstance(exc, RuleViolation):
        return 409
    if isinstance(exc, IntegrityError | StorageError | ConfigurationError):
        return 503
    return 500


def error_body(exc: FlagLedgerError) -> dict[str, Any]:
    status = status_for(exc)
    if status == 403:
        return {"code": exc.code, "message": FORBIDDEN_MESSAGES.get(exc.code, FORBIDDEN_MESSAGES["forbidden"])}
    if status >= 500:
        return {"code": exc.code, "message": "the ledger cannot serve this now; operators: see the server log"}
    if isinstance(exc, InputError) and exc.field is not None:
        # as a schema refusal reads: the field named, its value never echoed
        return {
            "code": "invalid_input",
            "message": str(exc),
            "fields": [{"loc": ["body", exc.field], "msg": str(exc), "type": exc.code}],
        }
    return {"code": exc.code, "message": str(exc)}


def _headers(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if status == 401 else None


async def _ledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FlagLedgerError)
    status = status_for(exc)
    if status >= 500:
        log.error("%s %s failed [%s]: %s", request.method, request.url.path, exc.code, exc)
    return JSONResponse(error_body(exc), status_code=status, headers=_headers(status))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith("/console"):
        # a console form with a missing or oversized field: a page, not JSON, and no input echoed
        return HTMLResponse(_CONSOLE_422, status_code=422)
    # the offending input is left out: it may be an individual number
    fields = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    return JSONResponse(
        {"code": "invalid_input", "message": "the request is not valid", "fields": fields}, status_code=422
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {401: "unauthenticated", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"code": code, "message": str(exc.detail)},
        status_code=exc.status_code,
        headers=exc.headers or _headers(exc.status_code),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s: unexpected error", request.method, request.url.path)
    return JSONResponse(
        {"code": "internal", "message": "internal error; operators: see the server log"}, status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FlagLedgerError, _ledger_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
