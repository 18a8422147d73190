"""``/v1/decisions``: next best actions for one customer or a batch."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.decisions import Asked
from serving.deps import (
    V1_ERRORS,
    Decide,
    IdempotencyKey,
    authorised,
    caller_of,
    check_actions,
    idempotency_key_of,
    json_body,
    over_limit,
)
from serving.schemas import (
    BatchDecisionRequest,
    BatchDecisionResponse,
    DecisionRequest,
    DecisionResponse,
)

router = APIRouter(tags=["decisions"], responses=V1_ERRORS)


class DecisionRoute(APIRoute):
    """``POST /v1/decisions`` without FastAPI's dependency solver on the hot path.

    The OpenAPI schema comes from :func:`decide`'s signature, as for any route; a request
    is read by :func:`serving.deps.json_body`, :func:`serving.deps.authorised` and
    :func:`serving.deps.idempotency_key_of`, which answer what the declared parameters
    would (the same errors, in the same order) for a fraction of the CPU."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return decision_response


async def decision_response(request: Request) -> Response:
    """A ``POST /v1/decisions`` read and answered (by :class:`DecisionRoute` and by
    :class:`DecisionLane`)."""
    errors: list[Any] = []
    body = await json_body(request, DecisionRequest, errors)
    runtime = authorised(request, "decide")
    header_errors: list[Any] = []
    idempotency_key = idempotency_key_of(request, header_errors)
    if body is None or errors or header_errors:
        raise RequestValidationError(header_errors + errors)  # FastAPI's order
    return await decide(body, runtime, request, idempotency_key)


class DecisionLane:
    """Pure ASGI middleware: ``POST /v1/decisions`` answered without FastAPI's router.

    The router tries the routes in turn (every included router's) and wraps the matched
    one in its request and exception handling: ~0.1 ms of a decision's ~1 ms of CPU
    (BENCHMARKS.md, issue 15 items 1-2, third pass). The lane, mounted inside the user
    middleware (so the body limit and the latency histogram apply as before), sends the
    decisions' path straight to :func:`decision_response`, behind the app's own exception
    handlers (``handlers``: :attr:`FastAPI.exception_handlers`, read when the middleware
    stack is built, after every handler is installed): the same answers and the same
    errors. Every other request, another method on the path included, goes on to the
    router."""

    def __init__(self, app: ASGIApp, handlers: Mapping[Any, Any]) -> None:
        self.app = app
        self.route = next(r for r in router.routes if getattr(r, "path", None) == PATH)
        # what FastAPI's ExceptionMiddleware gets (the 500 handler is the outermost one's)
        own = {k: v for k, v in handlers.items() if k not in (500, Exception)}
        self.endpoint = ExceptionMiddleware(self._answer, handlers=own)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["route"] = self.route  # the latency histogram's label
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
        response = await decision_response(Request(scope, receive, send))
        await response(scope, receive, send)


async def decide(
    body: DecisionRequest,
    runtime: Decide,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # decided by the runtime's decider thread together with the requests queued meanwhile,
    # which logs them through the group commit (or in the thread pool,
    # NBA_DECIDE_IN=threads, then logged from here): durable before the answer, and no
    # thread is held while the disk syncs (a slow fsync then delays the answers it
    # covers, not every request queued behind it)
    check_actions(body.context.max_actions, runtime.settings.max_actions)
    caller = caller_of(request)
    if runtime.decider is not None:
        asked = Asked(body.customer_id, body.context, idempotency_key, caller)
        answer = await runtime.decider.answer(asked)
    else:
        answer = await run_in_threadpool(
            runtime.decisions.answer, body.customer_id, body.context, idempotency_key, caller=caller
        )
    if answer.logged is not None:
        await runtime.commit.append([answer.logged])
    return Response(answer.body, media_type="application/json")


#: The path of one customer's decision.
PATH = "/v1/decisions"
router.add_api_route(
    PATH,
    decide,
    methods=["POST"],
    summary="Next best action(s) for one customer",
    response_model=DecisionResponse,
    route_class_override=DecisionRoute,
)


@router.post("/v1/decisions/batch", summary="Decisions for many customers with one context")
def decide_batch(
    body: BatchDecisionRequest,
    runtime: Decide,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> BatchDecisionResponse:
    limit = runtime.settings.max_batch_customers
    if len(body.customer_ids) > limit:
        raise over_limit(
            ["body", "customer_ids"],
            f"customer_ids: {len(body.customer_ids)} customers, at most {limit} per request",
        )
    check_actions(body.context.max_actions, runtime.settings.max_actions)
    caller = caller_of(request)
    return BatchDecisionResponse(
        decisions=[
            DecisionResponse.model_validate_json(
                runtime.decisions.answer_logged(cid, body.context, idempotency_key, caller=caller)
            )
            for cid in body.customer_ids
        ]
    )
