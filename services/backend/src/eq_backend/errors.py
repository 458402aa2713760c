"""Errors the services raise, and the handlers that turn every error into the envelope."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError

from eq_backend.db.pool import PoolTimeout
from eq_backend.envelope import ErrorEnvelope

logger = logging.getLogger("eq_backend.errors")

# Set in a request's scope (eq_backend.edge) when its client hung up before the app had
# read the whole request: no answer can reach it, and it is no failure of the server.
CLIENT_GONE = "eq.client_gone"
# What such a request is counted and logged as: nginx's "client closed request".
CLIENT_CLOSED_REQUEST = 499


class APIError(HTTPException):
    """An expected failure with a status, a message for people and optional details."""

    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: list[str] | None = None,
        details: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=message, status_code=status_code or self.status_code)
        self.errors = errors if errors is not None else [message]
        self.details = details
        self.data = data
        if headers:
            self.headers = headers


class Unauthorized(APIError):
    status_code = 401


class Forbidden(APIError):
    status_code = 403


class NotFound(APIError):
    status_code = 404


class Conflict(APIError):
    status_code = 409


class Unprocessable(APIError):
    status_code = 422


class TooManyRequests(APIError):
    status_code = 429


class BadGateway(APIError):
    status_code = 502


class ServiceUnavailable(APIError):
    status_code = 503


_DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request entity too large",
    415: "Unsupported media type",
    422: "Validation error",
    429: "Too many requests",
}


def _envelope_response(
    status: int,
    message: str,
    errors: list[str],
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    data: dict[str, Any] | None = None,
) -> Response[Any]:
    content: Any = ErrorEnvelope(success=False, message=message, errors=errors, details=details)
    if data is not None:
        content = {
            "success": False,
            "message": message,
            "data": data,
            "errors": errors,
            "details": details,
        }
    return Response(content=content, status_code=status, headers=headers, media_type=MediaType.JSON)


def _validation_errors(extra: Any) -> tuple[list[str], dict[str, Any] | None]:
    if not isinstance(extra, list):
        return [], None
    messages: list[str] = []
    for item in extra:
        if isinstance(item, dict):
            key = item.get("key")
            text = str(item.get("message", "invalid value"))
            messages.append(f"{key}: {text}" if key else text)
        else:
            messages.append(str(item))
    return messages, {"fields": extra}


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """APIError, Litestar's own HTTP errors and validation errors, all in the envelope."""
    if isinstance(exc, APIError):
        return _envelope_response(
            exc.status_code, exc.detail, exc.errors, exc.details, exc.headers, exc.data
        )
    status = exc.status_code
    if isinstance(exc, ValidationException):
        status = 422
        errors, details = _validation_errors(exc.extra)
        message = "Validation error"
        if not errors:
            errors = [exc.detail or message]
        return _envelope_response(status, message, errors, details)
    if status >= 500 and request.scope.get(CLIENT_GONE):
        logger.info(
            "client closed the connection before %s %s was read", request.method, request.url.path
        )
        return _envelope_response(CLIENT_CLOSED_REQUEST, "Client closed request", [])
    if status >= 500:
        logger.error("server error %s on %s %s: %s", status, request.method, request.url.path, exc)
        return _envelope_response(status, "Internal server error", ["Internal server error"])
    message = _DEFAULT_MESSAGES.get(status, "Request failed")
    detail = exc.detail if exc.detail and exc.detail != message else None
    return _envelope_response(status, message, [detail or message], None, exc.headers)


def _is_bad_value(exc: Exception) -> bool:
    """A value the database cannot store (NUL byte, lone surrogate, out-of-range number)."""
    if isinstance(exc, DataError):
        return True
    return isinstance(exc, StatementError) and isinstance(exc.orig, UnicodeError | ValueError)


# A write that references a row deleted meanwhile (the check before it saw the row): the
# client is told what vanished, as if it had arrived a moment later.
_VANISHED_PARENTS = {
    "comments_situation_id_fkey": "Situation not found",
    "reactions_situation_id_fkey": "Situation not found",
    "answers_situation_id_fkey": "Situation not found",
}


def _vanished_parent(exc: Exception) -> str | None:
    """For a foreign-key violation: what the client should be told is gone."""
    # Writes on the fast path (eq_backend.db.engine) raise psycopg's error itself; through
    # SQLAlchemy it arrives wrapped.
    orig = exc.orig if isinstance(exc, IntegrityError) else exc
    if isinstance(orig, psycopg.errors.ForeignKeyViolation):
        name = orig.diag.constraint_name or ""
        return _VANISHED_PARENTS.get(name, "Not found")
    if isinstance(exc, IntegrityError) and "FOREIGN KEY" in str(orig):  # SQLite names none
        return "Not found"
    return None


def _is_database_down(exc: Exception) -> bool:
    return isinstance(exc, OperationalError | PoolTimeout | psycopg.OperationalError)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unhandled: logged with its traceback, answered without internals.
    Values the database refuses and over-nested bodies are the client's error (422); a
    write whose parent was deleted meanwhile is a 404."""
    if isinstance(exc, RecursionError):
        # msgspec decodes a request body recursively: a body nested deeper than the
        # interpreter's recursion limit ends here, before any handler ran.
        return _envelope_response(
            422, "Validation error", ["the request body is nested too deeply"]
        )
    vanished = _vanished_parent(exc)
    if vanished is not None:
        return _envelope_response(404, vanished, [vanished])
    if _is_bad_value(exc):
        logger.info(
            "rejected a value on %s %s: %s", request.method, request.url.path, type(exc).__name__
        )
        return _envelope_response(422, "Validation error", ["a value cannot be stored"])
    if _is_database_down(exc):
        logger.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return _envelope_response(503, "Database unavailable", ["the database did not answer"])
    logger.exception("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return _envelope_response(
        HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error", ["Internal server error"]
    )
