"""The HTTP API: ``create_app(settings)`` builds it; nothing happens at import.

The lifespan builds the runtime (:func:`serving.runtime.start_runtime`: Redis,
catalog, contact policy, models, decision log) and polls the registry for new
champions. Routes live in :mod:`serving.routes`, one module per resource, and
take what they need through the dependencies of :mod:`serving.deps`. Endpoints
are versioned under ``/v1``; every error has the JSON body of
:class:`serving.errors.ErrorResponse`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from serving.auth import ApiKeys
from serving.decisions import DecisionSink
from serving.deps import ERRORS
from serving.errors import install_error_handlers
from serving.lane import DecisionLane
from serving.middleware import BodyLimit, Timing
from serving.models import ModelPoller, ScorerFactory
from serving.rate_limit import RateLimits
from serving.routes import ROUTERS
from serving.routes.decisions import PATH
from serving.runtime import refresh_popularity, start_runtime
from serving.settings import Settings

#: Allocations (net, of objects the cyclic collector tracks) between two young collections
#: once the API runs (Python's default: 700). BENCHMARKS.md, "Issue 15: the open loop's
#: tail": the collector's CPU per request and its longest pause, by threshold.
GC_YOUNG_THRESHOLD = 10_000
#: Seconds between two looks at whether OpenTelemetry is configured (FastAPI's own test
#: costs ~6 µs; while it is, decisions take the middleware stack that reports them).
TELEMETRY_CHECK_SECONDS = 1.0


class Api(FastAPI):
    """FastAPI with ``POST /v1/decisions`` answered in front of the middleware stack
    (:class:`serving.lane.DecisionLane`: the same answers, errors and latency histogram);
    every other request, and this one when the stack would add something of its own (a
    root path, FastAPI's body limit, OpenTelemetry), takes the stack as usual."""

    def __init__(self, *args: Any, body_limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body_limit = body_limit
        self._lane: DecisionLane | None = None
        self._plain_until = 0.0  # monotonic time until which no telemetry was configured

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
            and not self.root_path
            and self.max_body_size is None
            and self._plain()
        ):
            lane = self._lane
            if lane is None:  # built on first use, once every handler is installed
                lane = self._lane = DecisionLane(self.exception_handlers, self.body_limit)
            scope["app"] = self
            await lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _plain(self) -> bool:
        """Whether FastAPI would report requests to no OpenTelemetry provider."""
        now = time.monotonic()
        if now < self._plain_until:
            return True
        if self._native_telemetry.enabled():
            return False
        self._plain_until = now + TELEMETRY_CHECK_SECONDS
        return True


def _show_audit_lines() -> None:
    """The audit log (``nba.audit``: erasures) on standard error at INFO, in every worker,
    unless it is configured already (uvicorn shows only warnings of other loggers)."""
    audit = logging.getLogger("nba.audit")
    if not audit.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        audit.addHandler(handler)
        audit.setLevel(logging.INFO)


def create_app(
    settings: Settings | None = None,
    *,
    client: Any | None = None,
    registry: Any | None = None,
    scorer_factory: ScorerFactory | None = None,
    sink: DecisionSink | None = None,
) -> Api:
    """Build the API. ``client`` (a Redis client) and ``registry`` default to those the
    settings describe; tests pass their own real ones."""
    settings = settings or Settings()
    _show_audit_lines()
    keys = ApiKeys(
        settings.api_keys,
        allow_anonymous=settings.allow_anonymous,
        rate_limits=RateLimits(settings.rate_limits),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await run_in_threadpool(
            start_runtime, settings, keys, client, registry, scorer_factory, sink
        )
        app.state.runtime = runtime
        # what start-up loaded (models, products, catalog) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it on a request;
        # a request leaves no cycles behind (the collector finds none), so it runs rarely
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        switch = sys.getswitchinterval()
        sys.setswitchinterval(settings.switch_interval_seconds)
        poller = ModelPoller(
            runtime.models, settings.model_poll_seconds, also=lambda: refresh_popularity(runtime)
        )
        poller.start()
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            sys.setswitchinterval(switch)
            poller.stop()
            with contextlib.suppress(Exception):
                runtime.ingestor.flush_popularity()
            if runtime.decider is not None:
                with contextlib.suppress(Exception):
                    runtime.decider.close()  # what is queued is decided first
            with contextlib.suppress(Exception):
                runtime.commit.close()  # what is queued is written first
            with contextlib.suppress(Exception):
                runtime.sink.close()
            with contextlib.suppress(Exception):
                runtime.ingestor.close()
            if client is None:
                with contextlib.suppress(Exception):
                    runtime.client.close()

    app = Api(
        body_limit=settings.max_body_bytes,
        title="nba",
        version="1",
        summary="Next-best-action decisions and event ingestion for multichannel marketing.",
        lifespan=lifespan,
        responses=ERRORS,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Timing)
    for router in ROUTERS:
        app.include_router(router)
    _document_limits(app, settings)
    return app


def _document_limits(app: FastAPI, settings: Settings) -> None:
    """Put this deployment's request limits into the OpenAPI schema, so that the schema
    states the limits the server enforces (``NBA_MAX_ACTIONS`` and the others)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        models = schema.get("components", {}).get("schemas", {})
        limits = (
            ("DecisionContext", "max_actions", "maximum", settings.max_actions),
            ("BatchDecisionRequest", "customer_ids", "maxItems", settings.max_batch_customers),
            ("EventsRequest", "events", "maxItems", settings.max_events),
        )
        for model, field, keyword, value in limits:
            prop = models.get(model, {}).get("properties", {}).get(field)
            if prop is not None:
                prop[keyword] = value
        actions = _catalog_action_ids(settings)
        restriction = models.get("DecisionContext", {}).get("properties", {}).get("actions")
        if actions and restriction is not None:
            for variant in restriction.get("anyOf", [restriction]):
                if variant.get("type") == "array":
                    variant["items"] = {"type": "string", "enum": list(actions)}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _catalog_action_ids(settings: Settings) -> tuple[str, ...]:
    """The configured catalog's action ids (for the schema), or none when it cannot be read
    (the API then refuses to start with the reason)."""
    from serving.startup import StartupError, load_catalog_setting

    try:
        return tuple(load_catalog_setting(settings.catalog_path).ids)
    except StartupError:
        return ()
