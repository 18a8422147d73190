"""Health, readiness and Prometheus metrics (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import model_status, runtime_of
from serving.redis_gate import RedisDownError
from serving.schemas import Health, Readiness

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["operations"], summary="The process is up")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["operations"],
    summary="Dependencies: Redis, models, durability",
)
def readyz(request: Request) -> Readiness:
    runtime = runtime_of(request)
    try:
        runtime.gate.call(runtime.client.ping)
        redis = "ok"
    except RedisDownError as error:
        redis = str(error)
    return Readiness(
        status="ready" if redis == "ok" else "degraded",
        redis=redis,
        models=model_status(runtime),
        durability=runtime.durability,
    )


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(request: Request) -> Response:
    body = runtime_of(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
