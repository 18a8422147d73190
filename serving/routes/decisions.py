"""``/v1/decisions``: next best actions for one customer or a batch."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from serving.deps import (
    V1_ERRORS,
    Decide,
    IdempotencyKey,
    caller_of,
    check_actions,
    over_limit,
)
from serving.schemas import (
    BatchDecisionRequest,
    BatchDecisionResponse,
    DecisionRequest,
    DecisionResponse,
)

router = APIRouter(tags=["decisions"], responses=V1_ERRORS)


@router.post(
    "/v1/decisions",
    summary="Next best action(s) for one customer",
    response_model=DecisionResponse,
)
async def decide(
    body: DecisionRequest,
    runtime: Decide,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # decided in the thread pool (two Redis round trips: other requests are parsed and
    # decided while one waits), then the decision log's group commit is awaited on the
    # event loop: durable before the answer, and no thread is held by an fsync
    check_actions(body.context.max_actions, runtime.settings.max_actions)
    answer = await run_in_threadpool(
        runtime.decisions.answer,
        body.customer_id,
        body.context,
        idempotency_key,
        caller=caller_of(request),
    )
    if answer.logged is not None:
        await runtime.log.append([answer.logged])
    return Response(answer.body, media_type="application/json")


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
            runtime.decisions.decide(cid, body.context, idempotency_key, caller=caller)
            for cid in body.customer_ids
        ]
    )
