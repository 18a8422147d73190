"""``/v1/decisions``: next best actions for one customer or a batch."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

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
from serving.runtime import Runtime
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
    """A ``POST /v1/decisions`` read and answered (by :class:`DecisionRoute`; the app
    answers it in front of its middleware, :class:`serving.lane.DecisionLane`)."""
    errors: list[Any] = []
    body = await json_body(request, DecisionRequest, errors)
    runtime = authorised(request, "decide")
    header_errors: list[Any] = []
    idempotency_key = idempotency_key_of(request, header_errors)
    if body is None or errors or header_errors:
        raise RequestValidationError(header_errors + errors)  # FastAPI's order
    return await decide(body, runtime, request, idempotency_key)


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
    answer = await decision_json(runtime, body, idempotency_key, caller_of(request))
    return Response(answer, media_type="application/json")


async def decision_json(
    runtime: Runtime, body: DecisionRequest, idempotency_key: str | None, caller: str
) -> bytes:
    """The answer to a read and authorised ``POST /v1/decisions`` (its JSON), logged."""
    check_actions(body.context.max_actions, runtime.settings.max_actions)
    if runtime.decider is not None:
        asked = Asked(body.customer_id, body.context, idempotency_key, caller)
        answer = await runtime.decider.answer(asked)
    else:
        answer = await run_in_threadpool(
            runtime.decisions.answer, body.customer_id, body.context, idempotency_key, caller=caller
        )
    if answer.logged is not None:
        await runtime.commit.append([answer.logged])
    return answer.body


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
