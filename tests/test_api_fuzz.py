"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis).

Every operation gets generated requests, valid and invalid, sent in-process
(ASGI) to a real app on real Redis and a real MLflow registry, and every check
schemathesis has runs on each answer (as ``--checks all``): no server error; status,
content type, headers and body as documented; requests the schema allows are
accepted and requests it forbids refused with a 4xx (so the schema states the
server's real limits); a request that needs a key is refused without one. The run is bounded (examples per operation, derandomised) so
it stays well under a minute; a failure prints the request to replay.

The schema is read at collection from an app that is built but not started (the
schema does not depend on the settings). Its requests go to a stand-in ASGI app
that forwards to the app the fixture starts on the test world, so that every
request schemathesis sends (its auth probes too) reaches the real app.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import shutdown_lifespans

from serving.app import create_app
from serving.auth import new_api_key
from serving.settings import Settings
from tests.api_support import build_world

#: Generated requests per operation and phase: enough to find a crash, small enough for CI.
BOUNDED = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
#: Without a key every /v1 request stops at authentication: fewer examples find as much.
UNAUTHENTICATED = settings(BOUNDED, max_examples=10)
OPENAPI = create_app(Settings(api_keys=[], allow_anonymous=True)).openapi()


class Forward:
    """An ASGI app that forwards to ``target`` (set once the test world exists)."""

    def __init__(self) -> None:
        self.target: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "the served fixture sets the app"
        await self.target(scope, receive, send)


FORWARD = Forward()
schema = schemathesis.openapi.from_dict(OPENAPI)
schema.app = FORWARD


@pytest.fixture(scope="module")
def key_headers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start the app on a small simulated retailer; headers with a key holding every scope."""
    world = build_world(tmp_path_factory.mktemp("fuzz"), customers=80, days=20, seed=11)
    key, spec = new_api_key("fuzzer", ["decide", "ingest", "profiles", "admin"])
    FORWARD.target = create_app(
        world.settings(api_keys=[*world.specs, spec], rate_limits={}),
        client=world.client,
        registry=world.registry,
    )
    yield {"Authorization": f"Bearer {key}"}
    shutdown_lifespans()  # the ASGI transport started the app's lifespan on first call
    FORWARD.target = None


@schema.parametrize()
@BOUNDED
def test_every_answer_with_a_key_is_documented(case: Any, key_headers: dict[str, str]) -> None:
    # ignored_auth: a request that succeeded with the key is replayed without it and with a
    # wrong one, and must then be refused
    if case.headers and "Idempotency-Key" in case.headers:
        # a fresh key per generated request: reusing one with another body is a documented
        # 422 (tested in test_api.py), which a stateless fuzzer cannot tell from a refusal
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"
    case.call_and_validate(headers=key_headers)  # every check schemathesis has


@schema.parametrize()
@UNAUTHENTICATED
def test_every_answer_without_a_key_is_documented(case: Any, key_headers: dict[str, str]) -> None:
    response = case.call_and_validate()  # every check schemathesis has
    if case.path.startswith("/v1/") and case.method.upper() == case.operation.method.upper():
        # refused before anything is read or decided: no key, or a body that is not one
        assert response.status_code in (401, 413, 422), response.text


def test_the_schema_says_how_to_authenticate() -> None:
    schemes = OPENAPI["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"]["in"] == "header" and schemes["apiKey"]["name"] == "X-API-Key"
    for path, operations in OPENAPI["paths"].items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                assert operation["security"] == [{"bearer": []}, {"apiKey": []}], path
                assert {"401", "403", "422"} <= set(operation["responses"]), path
            else:  # operations endpoints are open and never answer 401
                assert "security" not in operation and "401" not in operation["responses"], path


def test_the_schema_documents_every_route() -> None:
    assert {
        "/v1/decisions",
        "/v1/decisions/batch",
        "/v1/events",
        "/v1/customers/{customer_id}/profile",
        "/v1/admin/models/reload",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(OPENAPI["paths"])
