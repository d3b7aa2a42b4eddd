"""One error body for every failure: ``{"error": {"code", "message", "details"}}``.

Domain errors carry their code and status; FastAPI's validation errors become
``422 invalid_request`` with the offending fields; malformed JSON becomes
``400 malformed_json``; ``429 rate_limited`` carries a ``Retry-After`` header;
anything unexpected is a ``500 internal_error`` whose details never include
internals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chain.errors import ChainError
from gateway.errors import GatewayError, RateLimited
from gateway.schemas import ErrorResponse

log = logging.getLogger("pointsnet.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the one error body for each of ``statuses``."""
    return {status: {"model": ErrorResponse} for status in statuses}


#: What the wallet's endpoints (and the public reads beside them) may answer.
WALLET_ERRORS = error_responses(400, 401, 403, 404, 409, 422, 429, 503)


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details or {}}},
    )


def invalid_request(
    errors: Sequence[Mapping[str, Any]], loc_prefix: Sequence[Any] = ()
) -> dict[str, Any]:
    """The body of a ``422 invalid_request``: the offending fields of pydantic's
    ``errors`` (each ``loc`` after ``loc_prefix``, as text), their messages and types.
    A request that fails validation gets it, and so does each batch item that does."""
    fields = [
        {"loc": [str(p) for p in (*loc_prefix, *e.get("loc", ()))], "msg": str(e.get("msg", "")),
         "type": str(e.get("type", ""))}
        for e in errors
    ]  # fmt: skip
    return {
        "error": {
            "code": "invalid_request",
            "message": "the request is not valid",
            "details": {"errors": fields},
        }
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(_request: Request, exc: GatewayError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message, _json_safe(exc.details))
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        return JSONResponse(status_code=422, content=invalid_request(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(ChainError)
    async def _chain_error(_request: Request, exc: ChainError) -> JSONResponse:
        log.warning("chain unavailable: %s", exc)
        return error_response(503, "chain_unavailable", "the chain could not be reached; retry")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "unexpected error; nothing was written")
