"""Health, readiness and Prometheus metrics (no key needed; readiness details need admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from serving.auth import key_from_headers
from serving.deps import model_status, runtime_of
from serving.errors import ApiError
from serving.redis_gate import RedisDownError
from serving.runtime import Runtime
from serving.schemas import Health, Readiness

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["operations"], summary="The process is up")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["operations"],
    summary="Ready to serve? 503 when degraded; details with an admin key",
    responses={503: {"model": Readiness, "description": "Degraded: Redis is unreachable."}},
)
def readyz(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    try:
        runtime.gate.call(runtime.client.ping)
        redis = "ok"
    except RedisDownError as error:
        redis = str(error)
    ready = Readiness(status="ready" if redis == "ok" else "degraded")
    if _is_admin(runtime, request):
        ready.redis, ready.models = redis, model_status(runtime)
        ready.durability = runtime.durability
    body = {k: v for k, v in ready.model_dump(mode="json").items() if v is not None}
    return JSONResponse(body, status_code=200 if redis == "ok" else 503)


def _is_admin(runtime: Runtime, request: Request) -> bool:
    """Whether the request carries a key with the admin scope (no error when it does not)."""
    headers = request.headers
    key = key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
    try:
        runtime.keys.authorise(key, "admin")
    except ApiError:
        return False
    return True


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
