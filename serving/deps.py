"""Dependencies of the routes: the runtime, API-key scopes, shared headers and errors.

Routes declare what they need as ``Annotated`` aliases (``Decide``, ``Ingest``,
``Admin``): the dependency checks the key's scope and hands over the runtime.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from serving.auth import key_from_headers
from serving.errors import ErrorDetail, ErrorResponse, ForbiddenError, InvalidRequestError
from serving.runtime import Runtime
from serving.schemas import ModelStatus
from serving.settings import Scope as KeyScope

#: Errors any route may answer (the body limit applies before routing).
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Body, batch or list too large."},
}
#: Errors of the ``/v1`` routes: they need a key and read parameters or a body.
V1_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or unknown API key."},
    403: {"model": ErrorResponse, "description": "The API key lacks the scope."},
    429: {
        "model": ErrorResponse,
        "description": "The API key's rate limit is spent: retry after `Retry-After` seconds.",
    },
    422: {"model": ErrorResponse, "description": "The request does not validate."},
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "Redis is down: retry."}
}
#: How a key is sent, for the OpenAPI schema (the values are read by ``key_from_headers``).
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="`Authorization: Bearer <key>` (create a key with `nba serve-key NAME`).",
)
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="apiKey",
    description="The same key in `X-API-Key` (`Authorization` wins when both are sent).",
)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def authorised(request: Request, scope: KeyScope) -> Runtime:
    """The runtime, once the request's API key is known to hold ``scope`` (401, 403 or 429
    otherwise); the key's name is kept for :func:`caller_of`."""
    # the raw headers decide (the security dependencies only document the schemes), so that
    # a non-Bearer Authorization is refused rather than skipped for X-API-Key
    runtime = runtime_of(request)
    headers = request.headers
    request.state.api_key = caller_named(
        runtime, headers.get("authorization"), headers.get("x-api-key"), scope
    )
    return runtime


def caller_named(
    runtime: Runtime, authorization: str | None, x_api_key: str | None, scope: KeyScope
) -> str:
    """The name of the API key these two headers carry, once it is known to hold ``scope``
    (401, 403 or 429 otherwise)."""
    return runtime.keys.check(key_from_headers(authorization, x_api_key), scope).name


def _scoped(scope: KeyScope) -> Callable[..., Awaitable[Runtime]]:
    async def dependency(  # async: no thread-pool hop for a dictionary look-up
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
        _header: Annotated[str | None, Security(API_KEY_HEADER)],
    ) -> Runtime:
        return authorised(request, scope)

    return dependency


Decide = Annotated[Runtime, Depends(_scoped("decide"))]
Ingest = Annotated[Runtime, Depends(_scoped("ingest"))]
Profiles = Annotated[Runtime, Depends(_scoped("profiles"))]
Admin = Annotated[Runtime, Depends(_scoped("admin"))]


async def _erase_or_admin(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    _header: Annotated[str | None, Security(API_KEY_HEADER)],
) -> Runtime:
    """The ``erase`` scope, or ``admin``; 401, 403 or 429 otherwise (as :func:`authorised`)."""
    try:
        return authorised(request, "erase")
    except ForbiddenError:
        try:
            return authorised(request, "admin")
        except ForbiddenError:
            raise ForbiddenError("this API key lacks the 'erase' (or 'admin') scope") from None


Erase = Annotated[Runtime, Depends(_erase_or_admin)]
#: Longest ``Idempotency-Key`` accepted.
IDEMPOTENCY_KEY_MAX = 200
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=IDEMPOTENCY_KEY_MAX,
        description="A retried request with the same key returns the same decision.",
    ),
]
_IDEMPOTENCY_KEY = TypeAdapter(Annotated[str, Field(max_length=IDEMPOTENCY_KEY_MAX)])
Body = TypeVar("Body", bound=BaseModel)


def idempotency_key_of(request: Request, errors: list[Any]) -> str | None:
    """The ``Idempotency-Key`` header as :data:`IdempotencyKey` reads it; a problem is
    added to ``errors`` (located as FastAPI locates it) and gives ``None``."""
    return idempotency_key_in(request.headers.get("idempotency-key"), errors)


def idempotency_key_in(value: str | None, errors: list[Any]) -> str | None:
    """The ``Idempotency-Key`` header's ``value`` checked (see :func:`idempotency_key_of`)."""
    if value is None:
        return None
    try:
        return _IDEMPOTENCY_KEY.validate_python(value)
    except ValidationError as error:
        errors.extend(_located(error, ("header", "Idempotency-Key")))
        return None


async def json_body(request: Request, model: type[Body], errors: list[Any]) -> Body | None:
    """The request's body as ``model``, read as FastAPI reads a route's only body parameter,
    at a fraction of the cost: a JSON body is validated by pydantic straight from its bytes.

    Only a body that fast path refuses is read again FastAPI's way (stdlib JSON, then
    validation), so that what is accepted and every error (a 422 located in the body, a
    400 for a body that cannot be decoded) are FastAPI's own. A validation problem is added
    to ``errors`` and gives ``None``; an undecodable body raises at once, before the key is
    checked, as in FastAPI."""
    return body_as(await request.body(), request.headers.get("content-type"), model, errors)


def body_as(
    raw: bytes, content_type: str | None, model: type[Body], errors: list[Any]
) -> Body | None:
    """A body read with this ``Content-Type`` as :func:`json_body` reads it."""
    if not raw:
        errors.append({"type": "missing", "loc": ("body",), "msg": "Field required"})
        return None
    if not _is_json(content_type):
        data: Any = raw  # FastAPI validates the bytes themselves: a 422 naming the body
    else:
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            pass
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error"}]
            ) from error
        except Exception as error:  # not UTF-8, nested too deep: FastAPI's 400
            raise HTTPException(400, "There was an error parsing the body") from error
    try:
        return model.model_validate(data, from_attributes=True)  # as FastAPI validates
    except ValidationError as error:
        errors.extend(_located(error, ("body",)))
        return None


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body with this ``Content-Type`` as JSON."""
    if content_type is None:
        return False  # FastAPI's strict content type: no header, no JSON
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _located(error: ValidationError, where: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{**e, "loc": (*where, *e["loc"])} for e in error.errors(include_url=False)]


def over_limit(loc: list[str | int], message: str) -> InvalidRequestError:
    """A list longer than this deployment allows: 422 naming the field (the OpenAPI schema
    states the same limit, so the request did not validate)."""
    return InvalidRequestError(message, [ErrorDetail(loc=loc, message=message)])


def check_actions(asked: int, limit: int) -> None:
    if asked > limit:
        raise over_limit(
            ["body", "context", "max_actions"],
            f"context.max_actions: {asked} asked, at most {limit}",
        )


def model_status(runtime: Runtime) -> list[ModelStatus]:
    current = runtime.models.current
    out = []
    for name in runtime.models.names:
        version = current.versions.get(name)
        at = current.loaded_at.get(name)
        out.append(
            ModelStatus(
                name=name,
                version=None if version is None else str(version),
                loaded_at=at,
                error=runtime.models.errors.get(name),
            )
        )
    return out


def caller_of(request: Request) -> str:
    """The name of the API key that made ``request`` (after a scoped dependency ran)."""
    return str(getattr(request.state, "api_key", "anonymous"))
