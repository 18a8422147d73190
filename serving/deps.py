"""Dependencies of the routes: the runtime, API-key scopes, shared headers and errors.

Routes declare what they need as ``Annotated`` aliases (``Decide``, ``Ingest``,
``Admin``): the dependency checks the key's scope and hands over the runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from serving.auth import key_from_headers
from serving.errors import ErrorDetail, ErrorResponse, InvalidRequestError
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


def _scoped(scope: KeyScope) -> Callable[..., Awaitable[Runtime]]:
    async def dependency(  # async: no thread-pool hop for a dictionary look-up
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
        _header: Annotated[str | None, Security(API_KEY_HEADER)],
    ) -> Runtime:
        # the security dependencies document the schemes; the raw headers decide, so that a
        # non-Bearer Authorization is refused rather than skipped for X-API-Key
        runtime = runtime_of(request)
        headers = request.headers
        key = key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
        request.state.api_key = runtime.keys.check(key, scope).name
        return runtime

    return dependency


Decide = Annotated[Runtime, Depends(_scoped("decide"))]
Ingest = Annotated[Runtime, Depends(_scoped("ingest"))]
Profiles = Annotated[Runtime, Depends(_scoped("profiles"))]
Admin = Annotated[Runtime, Depends(_scoped("admin"))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="A retried request with the same key returns the same decision.",
    ),
]


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
