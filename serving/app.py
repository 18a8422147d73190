"""The HTTP API: ``create_app(settings)`` builds it; nothing happens at import.

The lifespan opens the Redis connection (embedded when no URL is configured),
loads the action catalog and contact policy, loads the champion models from the
MLflow registry (rules decide when there are none) and starts polling the
registry for new champions. Endpoints are versioned under ``/v1``; every error
has the JSON body of :class:`serving.errors.ErrorResponse`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import ApiKeys, key_from_headers
from serving.decisions import (
    DecisionService,
    DecisionSink,
    Keys,
    PopularProducts,
    refresh_popular,
)
from serving.errors import (
    ErrorDetail,
    ErrorResponse,
    InvalidRequestError,
    PayloadTooLargeError,
    UnavailableError,
    error_response,
    install_error_handlers,
)
from serving.ingest import EventIngestor
from serving.metrics import ApiMetrics
from serving.models import (
    OFFERS,
    SERVED_MODELS,
    ModelManager,
    ModelPoller,
    ScorerFactory,
    model_scorer_factory,
)
from serving.redis_gate import RedisDownError, RedisGate
from serving.schemas import (
    BatchDecisionRequest,
    BatchDecisionResponse,
    DecisionRequest,
    DecisionResponse,
    EventsRequest,
    EventsResponse,
    Health,
    ModelStatus,
    ProfileResponse,
    Readiness,
    ReloadResponse,
    check_moment,
)
from serving.settings import Scope as KeyScope
from serving.settings import Settings

log = logging.getLogger("nba.api")

#: Errors any route may answer (the body limit applies before routing).
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Body, batch or list too large."},
}
#: Errors of the ``/v1`` routes: they need a key and read parameters or a body.
V1_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or unknown API key."},
    403: {"model": ErrorResponse, "description": "The API key lacks the scope."},
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


@dataclass
class Runtime:
    """Everything the endpoints use, built by the lifespan."""

    settings: Settings
    keys: ApiKeys
    client: Any
    gate: RedisGate
    decisions: DecisionService
    ingestor: EventIngestor
    models: ModelManager
    metrics: ApiMetrics
    durability: str
    sink: Any


class BodyLimit:
    """Refuses bodies over ``limit`` bytes with 413 (declared or streamed) — pure ASGI."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLargeError(f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "payload_too_large", f"request body over {self.limit} bytes")
        await response(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    client: Any | None = None,
    registry: Any | None = None,
    scorer_factory: ScorerFactory | None = None,
    sink: DecisionSink | None = None,
) -> FastAPI:
    """Build the API. ``client`` (a Redis client) and ``registry`` default to those the
    settings describe; tests pass their own real ones."""
    settings = settings or Settings()
    keys = ApiKeys(settings.api_keys, allow_anonymous=settings.allow_anonymous)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await run_in_threadpool(
            _start, settings, keys, client, registry, scorer_factory, sink
        )
        app.state.runtime = runtime
        poller = ModelPoller(
            runtime.models, settings.model_poll_seconds, also=lambda: _refresh_popular(runtime)
        )
        poller.start()
        try:
            yield
        finally:
            poller.stop()
            with contextlib.suppress(Exception):
                runtime.ingestor.flush_popularity()
            with contextlib.suppress(Exception):
                runtime.sink.close()
            if client is None:
                with contextlib.suppress(Exception):
                    runtime.client.close()

    app = FastAPI(
        title="nba",
        version="1",
        summary="Next-best-action decisions and event ingestion for multichannel marketing.",
        lifespan=lifespan,
        responses=ERRORS,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(_Timing)
    _routes(app)
    return app


def _start(
    settings: Settings,
    keys: ApiKeys,
    client: Any | None,
    registry: Any | None,
    scorer_factory: ScorerFactory | None,
    sink: DecisionSink | None,
) -> Runtime:
    from features.online.connect import connect_redis
    from features.online.profiles import OnlineProfiles
    from features.online.redis_store import RedisOnlineStore
    from serving.startup import (
        durability_of,
        load_catalog_setting,
        load_contact_policy_setting,
        load_experiment_setting,
        load_products,
        open_registry,
    )

    if client is None:
        client = connect_redis(
            settings.redis_url,
            settings.data_dir,
            cluster=settings.redis_cluster,
            socket_timeout=settings.redis_timeout_seconds,
            durable=True,
        )
    store = RedisOnlineStore(client, prefix=settings.redis_prefix)
    products = load_products(settings.products_file)
    profiles = OnlineProfiles(store, products)
    gate = RedisGate(settings.redis_retry_seconds)
    metrics = ApiMetrics()
    if registry is None:
        registry = open_registry(settings.tracking_uri)
    if sink is None:
        from experiments.decision_log import JsonlDecisionLog

        sink = JsonlDecisionLog(settings.decision_log_path, fsync=settings.decision_log_fsync)
    experiment = load_experiment_setting(settings.experiment_file)
    factory = scorer_factory or model_scorer_factory(use_uplift_model=settings.use_uplift_model)
    served = tuple(n for n in SERVED_MODELS if settings.use_uplift_model or n != OFFERS)
    models = ModelManager(registry, names=served, scorer_factory=factory)
    if models.refresh():
        metrics.model_reloads.inc()
    redis_keys = Keys(settings.redis_prefix)
    popular = PopularProducts(products["product_id"].astype(str).head(50).tolist())
    with contextlib.suppress(RedisDownError):
        gate.call(lambda: refresh_popular(client, redis_keys, popular))
    decisions = DecisionService(
        client=client,
        profiles=profiles,
        gate=gate,
        catalog=load_catalog_setting(settings.catalog_path),
        contact_policy=load_contact_policy_setting(settings.contact_policy_path),
        models=models,
        metrics=metrics,
        keys=redis_keys,
        popular=popular,
        idempotency_seconds=int(settings.idempotency_hours * 3600),
        sink=sink,
        experiment=experiment,
    )
    ingestor = EventIngestor(
        client=client, profiles=profiles, gate=gate, keys=redis_keys, metrics=metrics
    )
    return Runtime(
        settings=settings,
        keys=keys,
        client=client,
        gate=gate,
        decisions=decisions,
        ingestor=ingestor,
        models=models,
        metrics=metrics,
        durability=durability_of(client, gate),
        sink=sink,
    )


def _refresh_popular(runtime: Runtime) -> None:
    with contextlib.suppress(RedisDownError):
        runtime.gate.call(runtime.ingestor.flush_popularity)
    with contextlib.suppress(RedisDownError):
        runtime.gate.call(
            lambda: refresh_popular(
                runtime.client, runtime.decisions.keys, runtime.decisions.popular
            )
        )


class _Timing:
    """Latency histogram per route template (never the raw path: it may hold an id).

    Pure ASGI (no ``BaseHTTPMiddleware``), so it adds no task or stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            runtime = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
            if runtime is not None:
                endpoint = getattr(scope.get("route"), "path", "unmatched")
                runtime.metrics.latency.labels(endpoint, scope["method"], str(status)).observe(
                    time.perf_counter() - start
                )


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _scoped(scope: KeyScope) -> Callable[..., Runtime]:
    def dependency(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
        _header: Annotated[str | None, Security(API_KEY_HEADER)],
    ) -> Runtime:
        # the security dependencies document the schemes; the raw headers decide, so that a
        # non-Bearer Authorization is refused rather than skipped for X-API-Key
        runtime = _runtime(request)
        headers = request.headers
        key = key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
        runtime.keys.check(key, scope)
        return runtime

    return dependency


Decide = Annotated[Runtime, Depends(_scoped("decide"))]
Ingest = Annotated[Runtime, Depends(_scoped("ingest"))]
Admin = Annotated[Runtime, Depends(_scoped("admin"))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="A retried request with the same key returns the same decision.",
    ),
]


def _routes(app: FastAPI) -> None:
    @app.post(
        "/v1/decisions",
        response_model=DecisionResponse,
        tags=["decisions"],
        summary="Next best action(s) for one customer",
        responses=V1_ERRORS,
    )
    def decide(
        body: DecisionRequest, runtime: Decide, idempotency_key: IdempotencyKey = None
    ) -> DecisionResponse:
        _check_actions(body.context.max_actions, runtime.settings.max_actions)
        return runtime.decisions.decide(body.customer_id, body.context, idempotency_key)

    @app.post(
        "/v1/decisions/batch",
        response_model=BatchDecisionResponse,
        tags=["decisions"],
        summary="Decisions for many customers with one context",
        responses=V1_ERRORS,
    )
    def decide_batch(
        body: BatchDecisionRequest, runtime: Decide, idempotency_key: IdempotencyKey = None
    ) -> BatchDecisionResponse:
        limit = runtime.settings.max_batch_customers
        if len(body.customer_ids) > limit:
            raise PayloadTooLargeError(
                f"customer_ids: {len(body.customer_ids)} customers, at most {limit} per request"
            )
        _check_actions(body.context.max_actions, runtime.settings.max_actions)
        for position, cid in enumerate(body.customer_ids):
            if not cid or len(cid) > 128 or any(ord(ch) < 32 for ch in cid):
                raise InvalidRequestError(
                    f"customer_ids.{position}: not a customer id (1-128 printable characters)"
                )
        return BatchDecisionResponse(
            decisions=[
                runtime.decisions.decide(
                    cid, body.context, None if idempotency_key is None else f"{idempotency_key}"
                )
                for cid in body.customer_ids
            ]
        )

    @app.post(
        "/v1/events",
        response_model=EventsResponse,
        tags=["events"],
        summary="Ingest events (contract or Segment track/identify)",
        responses={**V1_ERRORS, **UNAVAILABLE},
    )
    def events(body: EventsRequest, runtime: Ingest) -> EventsResponse:
        limit = runtime.settings.max_events
        if len(body.events) > limit:
            raise PayloadTooLargeError(f"events: {len(body.events)} events, at most {limit}")
        try:
            return runtime.ingestor.ingest(body.events)
        except RedisDownError as error:
            raise UnavailableError(
                f"events not stored ({error}); nothing was acknowledged, retry later"
            ) from None

    @app.get(
        "/v1/customers/{customer_id}/profile",
        response_model=ProfileResponse,
        tags=["customers"],
        summary="The profile as the engine sees it now",
        responses={**V1_ERRORS, **UNAVAILABLE},
    )
    def profile(
        customer_id: Annotated[str, Path(min_length=1, max_length=128)],
        runtime: Decide,
        as_of: Annotated[
            dt.datetime | None,
            Query(
                description="The moment to read the profile at (with time zone, 1970-2200); "
                "default: now."
            ),
        ] = None,
    ) -> ProfileResponse:
        from serving.startup import profile_payload

        if as_of is not None and as_of.tzinfo is None:
            raise InvalidRequestError("as_of: add a time zone (Z or an offset)")
        if as_of is not None:
            try:
                check_moment(as_of)
            except ValueError as error:
                where = ErrorDetail(loc=["query", "as_of"], message=str(error))
                raise InvalidRequestError(f"as_of: {error}", [where]) from None
        moment = (as_of or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        try:
            return runtime.gate.call(lambda: profile_payload(runtime, customer_id, moment))
        except RedisDownError as error:
            raise UnavailableError(f"profile not readable ({error})") from None

    @app.post(
        "/v1/admin/models/reload",
        response_model=ReloadResponse,
        tags=["admin"],
        summary="Load the registry's champions now (checked, then swapped atomically)",
        responses=V1_ERRORS,
    )
    def reload(runtime: Admin) -> ReloadResponse:
        changed = runtime.models.refresh()
        if changed:
            runtime.metrics.model_reloads.inc()
        return ReloadResponse(changed=changed, models=_model_status(runtime))

    @app.get("/healthz", response_model=Health, tags=["operations"], summary="The process is up")
    def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Readiness,
        tags=["operations"],
        summary="Dependencies: Redis, models, durability",
    )
    def readyz(request: Request) -> Readiness:
        runtime = _runtime(request)
        try:
            runtime.gate.call(runtime.client.ping)
            redis = "ok"
        except RedisDownError as error:
            redis = str(error)
        return Readiness(
            status="ready" if redis == "ok" else "degraded",
            redis=redis,
            models=_model_status(runtime),
            durability=runtime.durability,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def metrics(request: Request) -> Response:
        body = _runtime(request).metrics.render()
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def _check_actions(asked: int, limit: int) -> None:
    if asked > limit:
        raise PayloadTooLargeError(f"context.max_actions: {asked} asked, at most {limit}")


def _model_status(runtime: Runtime) -> list[ModelStatus]:
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
