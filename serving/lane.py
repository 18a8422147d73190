"""``POST /v1/decisions`` answered in one ASGI callable, in front of the middleware stack.

Through the app, a decision request passes FastAPI's and Starlette's entry points, the
server-error, exception-telemetry and body-limit middleware, the latency histogram's, the
API's own body limit and the exception middleware, each an ``await`` and most a wrapper
around ``send``, then a :class:`~starlette.requests.Request` and a
:class:`~starlette.responses.Response` (BENCHMARKS.md, issue 15 items 1-2, sixth pass).
:class:`DecisionLane` does what those layers do for this one path, itself: it refuses a
body over the limit (413), reads the headers it needs in one pass, checks the key (401,
403, 429), reads the body as :func:`serving.deps.json_body` does (the same 422s and the
same order), decides (:func:`serving.routes.decisions.decision_json`), sends the answer
and counts it in the latency histogram under the route's template. An error goes to the
app's own handlers, looked up as Starlette's exception middleware looks them up; an
unexpected one to the app's 500 handler, then re-raised, as Starlette's server-error
middleware does. :class:`serving.app.Api` sends the path here only when the stack adds
nothing else to it (no root path, no FastAPI body limit, no OpenTelemetry configured);
otherwise the request takes the stack, to the same route.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from serving.deps import body_as, caller_named, idempotency_key_in
from serving.errors import PayloadTooLargeError
from serving.routes.decisions import PATH, decision_json, router
from serving.schemas import DecisionRequest

Handler = Callable[[Request, Exception], Any]
#: the headers the lane reads (uvicorn and Starlette's test client give names in lower case)
_WANTED = frozenset(
    (b"content-length", b"content-type", b"authorization", b"x-api-key", b"idempotency-key")
)
_JSON_HEADERS = (b"content-type", b"application/json")


class DecisionLane:
    """Answers ``POST /v1/decisions`` for an app whose exception ``handlers`` are installed
    (:attr:`FastAPI.exception_handlers`), refusing bodies over ``limit`` bytes."""

    def __init__(self, handlers: Mapping[Any, Handler], limit: int) -> None:
        self.limit = limit
        self.route = next(r for r in router.routes if getattr(r, "path", None) == PATH)
        self._by_status: dict[int, Handler] = {}
        self._by_class: dict[type[BaseException], Handler] = {}
        self._unexpected: Handler | None = None
        for key, handler in handlers.items():
            if key in (500, Exception):
                self._unexpected = handler
            elif isinstance(key, int):
                self._by_status[key] = handler
            else:
                self._by_class[key] = handler
        self._latency: dict[int, Any] = {}  # the histogram's child per status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        scope["route"] = self.route  # the histogram's label and the 500 log's route
        status = 500
        try:
            status = await self._answer(scope, receive, send)
        finally:
            runtime = getattr(scope["app"].state, "runtime", None)
            if runtime is not None:
                child = self._latency.get(status)
                if child is None:
                    child = runtime.metrics.latency.labels(PATH, "POST", str(status))
                    self._latency[status] = child
                child.observe(time.perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answer the request; its status (an unexpected error is answered, then raised; an
        error while the answer is sent is raised)."""
        try:
            answer = await self._decide(scope, receive)
        except Exception as error:
            handler = self._handler(error)
            request = Request(scope, receive, send)
            if handler is None:  # Starlette's server-error middleware: answer, then raise
                if self._unexpected is None:
                    raise
                response = await _call(self._unexpected, request, error)
                await response(scope, receive, send)
                raise
            response = await _call(handler, request, error)
            await response(scope, receive, send)
            return int(response.status_code)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode()), _JSON_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": answer})
        return 200

    async def _decide(self, scope: Scope, receive: Receive) -> bytes:
        """The answer's JSON (raises the request's error)."""
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _WANTED and (name not in found or name == b"content-length"):
                found[name] = value  # the first of each, the body limit's last length
        declared = found.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            raise PayloadTooLargeError(f"request body over {self.limit} bytes")
        raw = await self._body(receive)
        errors: list[Any] = []
        body = body_as(raw, _text(found.get(b"content-type")), DecisionRequest, errors)
        runtime = scope["app"].state.runtime
        caller = caller_named(
            runtime, _text(found.get(b"authorization")), _text(found.get(b"x-api-key")), "decide"
        )
        header_errors: list[Any] = []
        idempotency_key = idempotency_key_in(_text(found.get(b"idempotency-key")), header_errors)
        if body is None or errors or header_errors:
            raise RequestValidationError(header_errors + errors)  # FastAPI's order
        return await decision_json(runtime, body, idempotency_key, caller)

    async def _body(self, receive: Receive) -> bytes:
        """The request's body, refused (413) once it grows over the limit."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.limit:
                    raise PayloadTooLargeError(f"request body over {self.limit} bytes")
                if chunk:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()

    def _handler(self, error: Exception) -> Handler | None:
        """The app's handler for ``error``, as Starlette's exception middleware finds it."""
        if isinstance(error, HTTPException):
            handler = self._by_status.get(error.status_code)
            if handler is not None:
                return handler
        for kind in type(error).__mro__:
            handler = self._by_class.get(kind)
            if handler is not None:
                return handler
        return None


async def _call(handler: Handler, request: Request, error: Exception) -> Any:
    if is_async_callable(handler):
        return await handler(request, error)
    return await run_in_threadpool(handler, request, error)


def _text(value: bytes | None) -> str | None:
    """A header's value as Starlette's ``Headers`` gives it (latin-1)."""
    return None if value is None else value.decode("latin-1")
