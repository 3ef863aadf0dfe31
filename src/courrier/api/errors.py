"""One JSON error shape for every failure: ``{"error": {"code", "message", "field"?}}``.

Handlers here turn Courrier's errors, FastAPI's request validation and
Starlette's routing errors (404, 405, 413) into that shape, so an integrator
parses one thing whatever went wrong. ``field`` is a dotted path into the
request (``subject.start``, ``email``, ``limit``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from courrier.errors import AuthenticationError, ConfigurationError, NotFoundError, ValidationError

log = structlog.get_logger(__name__)

#: HTTP status → the error code given when Starlette raises it (routing, 413...).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}

#: FastAPI's words when reading the body failed (e.g. JSON nested too deeply).
BODY_NOT_PARSED = "There was an error parsing the body"

#: Where in the request a validation error came from; ``body`` is left out of the path.
LOCATIONS = {"body", "query", "path", "header", "cookie"}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The one error shape, with ``field`` only when there is one."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def dotted(loc: Sequence[int | str]) -> str:
    """``("body", "subject", "start")`` → ``subject.start``; list indexes as ``roles.2``."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def first_problem(exc: RequestValidationError) -> tuple[str, str]:
    """The field and message of the first validation error, worded for people."""
    errors = exc.errors()
    if not errors:
        return "body", "the request is not valid"
    error = errors[0]
    loc = tuple(error.get("loc", ()))
    kind = str(error.get("type", ""))
    if kind == "json_invalid":
        return "body", "the body is not valid JSON"
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    if kind == "missing":
        message = "is required"
    return dotted(loc), message


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, RequestValidationError):
        field, message = first_problem(exc)
    else:
        assert isinstance(exc, ValidationError)
        field, message = exc.field or "body", exc.message
    return error_response(422, "invalid", f"{field}: {message}", field)


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "not_found", str(exc) or "not found")


async def _unauthorized(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        401,
        "unauthorized",
        str(exc) or "an API key is needed",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(503, "unavailable", str(exc))


async def _database(request: Request, exc: Exception) -> JSONResponse:
    """The database busy past its wait (SQLite's write lock) or unreachable: try again later."""
    log.warning("database unavailable", path=request.url.path, error=str(exc).splitlines()[0])
    return error_response(
        503,
        "unavailable",
        "the database is busy or unreachable: try again shortly (with the same"
        " idempotency key, a request that did go through is answered, not repeated)",
        headers={"Retry-After": "1"},
    )


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == BODY_NOT_PARSED:
        message = "body: the body could not be read as JSON (malformed, or nested too deeply)"
        return error_response(422, "invalid", message, "body")
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error", path=request.url.path, error=repr(exc), exc_info=exc)
    return error_response(500, "internal", "an unexpected error happened; it was logged")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` answer in the one shape."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ValidationError, _validation)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(AuthenticationError, _unauthorized)
    app.add_exception_handler(ConfigurationError, _unavailable)
    app.add_exception_handler(OperationalError, _database)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
