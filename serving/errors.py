"""Errors that know their HTTP status, and the JSON body every error answer has.

Every error the API returns has the same shape::

    {"error": {"code": "invalid_request", "message": "...", "details": [...]}}

``details`` lists, for validation errors, each problem with its location in the
request (``["body", "events", 3, "timestamp"]``). Handlers are installed by
:func:`install_error_handlers`; an unexpected exception becomes a 500 with no
internals in the body (and is logged without personal data).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from features.contract import ID_PATTERN, id_problem

log = logging.getLogger("nba.api")


class ErrorDetail(BaseModel):
    """One problem: where in the request, and what is wrong."""

    loc: list[str | int] = []
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorBody


class ApiError(Exception):
    """An error with its HTTP status and a stable machine-readable code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[ErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def response(self) -> JSONResponse:
        return error_response(self.status_code, self.code, self.message, self.details)


class UnauthorizedError(ApiError):
    status_code = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    status_code = 403
    code = "forbidden"


class NotFoundError(ApiError):
    status_code = 404
    code = "not_found"


class PayloadTooLargeError(ApiError):
    status_code = 413
    code = "payload_too_large"


class InvalidRequestError(ApiError):
    status_code = 422
    code = "invalid_request"


class TooManyRequestsError(ApiError):
    """The key's rate limit is spent; ``retry_after`` seconds until the next request passes."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        response = super().response()
        response.headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return response


class UnavailableError(ApiError):
    """A dependency is down and the request cannot be answered safely (retry later)."""

    status_code = 503
    code = "unavailable"


def error_response(
    status: int, code: str, message: str, details: list[ErrorDetail] | None = None
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details or []))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def _validation_details(errors: list[Any]) -> list[ErrorDetail]:
    out = []
    for err in errors:
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append(ErrorDetail(loc=loc, message=_in_words(err)))
    return out


def _in_words(err: Any) -> str:
    """A validation error's message, an identifier's in words: pydantic says "String
    should match pattern '^[^\\x00-\\x20...'", which tells a client nothing; the
    contract's id rule says what is wrong with the value (:func:`id_problem`)."""
    message = str(err.get("msg", "invalid value"))
    value = err.get("input")
    if (
        err.get("type") == "string_pattern_mismatch"
        and (err.get("ctx") or {}).get("pattern") == ID_PATTERN
        and isinstance(value, str)
    ):
        problem = id_problem(value)
        if problem is not None:
            return problem
    return message


_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the JSON :class:`ErrorResponse` shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(list(exc.errors()))
        where = ", ".join(".".join(str(p) for p in d.loc) for d in details[:3])
        first = f": {details[0].message}" if details else ""
        return error_response(
            422, "invalid_request", f"the request does not validate ({where}){first}", details
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cause = exc.__cause__
        if isinstance(cause, ApiError):
            # raised while FastAPI read the body (a streamed body over the limit): FastAPI
            # wraps it in a generic 400, the client must see the real status
            return cause.response()
        if exc.status_code == 400 and cause is not None:
            # FastAPI's 400 for a body it cannot decode (not UTF-8, nested too deep):
            # the same status as any other body that is not JSON
            return error_response(
                422,
                "invalid_request",
                "the body is not JSON (send UTF-8 encoded JSON)",
                [ErrorDetail(loc=["body"], message=f"{type(cause).__name__}: cannot decode")],
            )
        code = _STATUS_CODES.get(exc.status_code, "error")
        response = error_response(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, _route_of(request))
        return error_response(500, "internal", "internal error; the incident was logged")


def _route_of(request: Request) -> str:
    """The route template (``/v1/customers/{customer_id}/profile``), never the raw path,
    so that customer ids do not reach the logs."""
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")
