"""``POST /v1/decisions`` reads its requests without FastAPI's dependency solver
(:class:`serving.routes.decisions.DecisionRoute`) and is answered without its router
(:class:`serving.routes.decisions.DecisionLane`): it must answer every request as the
same endpoint declared the ordinary FastAPI way does (same status, same error body)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.app import create_app
from serving.routes.decisions import decide
from tests.api_support import ApiWorld, build_world

REFERENCE = "/reference/decisions"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return build_world(tmp_path_factory.mktemp("route"), customers=30, days=10)


@pytest.fixture(scope="module")
def api(world: ApiWorld) -> Iterator[TestClient]:
    app = create_app(world.settings(rate_limits={}), client=world.client, registry=world.registry)
    # the same endpoint function, read by FastAPI's own solver
    app.router.add_api_route(REFERENCE, decide, methods=["POST"])
    with TestClient(app) as client:
        yield client


def both(api: TestClient, content: bytes, headers: dict[str, str]) -> tuple[object, object]:
    fast = api.post("/v1/decisions", content=content, headers=headers)
    reference = api.post(REFERENCE, content=content, headers=headers)
    if fast.status_code == 200:  # two decisions: ids and draws differ
        return fast.status_code, reference.status_code
    return (fast.status_code, fast.json()), (reference.status_code, reference.json())


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"", JSON, 422),  # no body
        (b"{not json", JSON, 422),  # JSON decode error, before the key is checked
        (b"o_'\xff", JSON, 422),  # not UTF-8: FastAPI's 400, mapped to a 422
        (b"[" * 100_000 + b"]" * 100_000, JSON, 422),  # nested too deep
        (b'{"customer_id": "C1"}', {"Content-Type": "text/plain"}, 422),  # not read as JSON
        (b'{"customer_id": "C1"}', {}, 422),  # no content type
        (b'{"customer_id": ""}', JSON, 422),
        (b'{"customer_id": "C1", "colour": "red"}', JSON, 422),
        (b'{"customer_id": "C1", "context": {"timestamp": 1}}', JSON, 422),
        (b'{"customer_id": "C1", "context": {"max_actions": 9}}', JSON, 422),
        (b'{"customer_id": "C1", "context": {"actions": ["nope"]}}', JSON, 422),
        (b'{"customer_id": "C1"}', {**JSON, "Idempotency-Key": "k" * 201}, 422),
        (b'{"customer_id": ""}', {**JSON, "Idempotency-Key": "k" * 201}, 422),  # both named
        (b'{"customer_id": "C1"}', {"Content-Type": "application/vnd.nba+json"}, 200),
        (b'{"customer_id": "C1"}', {"Content-Type": "application/json; charset=utf-8"}, 200),
        (b'\xef\xbb\xbf{"customer_id": "C1"}', JSON, 200),  # a BOM: only stdlib JSON reads it
    ],
)
def test_the_decision_route_answers_as_fastapi_would(
    api: TestClient, world: ApiWorld, content: bytes, headers: dict[str, str], status: int
) -> None:
    fast, reference = both(api, content, {**world.headers(), **headers})
    assert fast == reference
    assert (fast[0] if isinstance(fast, tuple) else fast) == status


@pytest.mark.parametrize(
    ("who", "content", "status"),
    [
        (None, b'{"customer_id": "C1"}', 401),
        (None, b'{"customer_id": ""}', 401),  # the key is checked before the body's fields
        ("crm", b'{"customer_id": "C1"}', 403),
        (None, b"{not json", 422),  # ...but after the body is decoded, as FastAPI does
    ],
)
def test_keys_are_checked_where_fastapi_checks_them(
    api: TestClient, world: ApiWorld, who: str | None, content: bytes, status: int
) -> None:
    headers = {**JSON, **({} if who is None else world.headers(who))}
    fast, reference = both(api, content, headers)
    assert fast == reference and fast[0] == status  # type: ignore[index]


BODY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    context=st.dictionaries(
        st.sampled_from(["channel", "timestamp", "max_actions", "actions", "session", "x"]), BODY
    )
)
def test_random_contexts_get_the_same_answer(
    api: TestClient, world: ApiWorld, context: dict[str, object]
) -> None:
    content = json.dumps({"customer_id": "C1", "context": context}).encode()
    fast, reference = both(api, content, {**world.headers(), **JSON})
    assert fast == reference


def test_the_lane_takes_only_the_decisions_post_and_keeps_the_latency_histogram(
    api: TestClient, world: ApiWorld
) -> None:
    """The lane answers the decisions' POST (also with the router's own route for it taken
    away), counts it in the latency histogram under its route template, and leaves every
    other request to the router: another method is a 405, a trailing slash redirected."""
    from serving.routes.decisions import PATH, router

    routes = list(router.routes)
    kept = [r for r in routes if getattr(r, "path", None) != PATH]
    good = b'{"customer_id": "C1"}'
    try:
        router.routes[:] = kept  # what the router would match for the path is gone
        assert api.post(PATH, content=good, headers={**JSON, **world.headers()}).status_code == 200
    finally:
        router.routes[:] = routes
    assert api.get(PATH, headers=world.headers()).status_code == 405
    slash = api.post(f"{PATH}/", content=good, headers={**JSON, **world.headers()})
    assert slash.status_code == 200 and slash.history and slash.history[0].status_code == 307
    metrics = api.get("/metrics").text
    assert 'endpoint="/v1/decisions",method="POST",status="200"' in metrics


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"customer_id": "C1"}', {}),  # no content type
        (b"{not json", JSON),
        (b'{"customer_id": "C1", "context": {"max_actions": 9}}', JSON),
        (b'{"customer_id": "C1"}', {**JSON, "Idempotency-Key": "k" * 201}),
        (b'{"customer_id": "C1", "pad": "' + b"x" * 1_100_000 + b'"}', JSON),  # over the limit
    ],
)
@pytest.mark.parametrize("who", [None, "crm", "journeys"])
def test_the_lane_in_front_of_the_stack_answers_as_the_stack_does(
    api: TestClient,
    world: ApiWorld,
    content: bytes,
    headers: dict[str, str],
    who: str | None,
) -> None:
    """``POST /v1/decisions`` is answered in front of the middleware stack
    (:class:`serving.lane.DecisionLane`); with the lane turned away the same request takes
    the stack (body limit, router, exception middleware): same status, same body, same
    headers; the lane's answer counted in the latency histogram under the route's template."""
    app = api.app
    sent = {**({} if who is None else world.headers(who)), **headers}

    def counted(status: int) -> float:
        label = f'endpoint="/v1/decisions",method="POST",status="{status}"'
        for line in api.get("/metrics").text.splitlines():
            if line.startswith("nba_request_seconds_count") and label in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    app._plain = lambda: False  # type: ignore[attr-defined]  # the stack's way
    try:
        stacked = api.post("/v1/decisions", content=content, headers=sent)
    finally:
        del app._plain  # type: ignore[attr-defined]
    before = counted(stacked.status_code)
    fast = api.post("/v1/decisions", content=content, headers=sent)
    assert counted(fast.status_code) == before + 1  # (the stack counts a body declared
    # over the limit as "unmatched": refused before the router)
    assert fast.status_code == stacked.status_code != 200
    assert fast.json() == stacked.json()
    assert {k: v for k, v in fast.headers.items() if k != "content-length"} == {
        k: v for k, v in stacked.headers.items() if k != "content-length"
    }


def test_the_lane_answers_a_decision_with_the_stacks_headers(
    api: TestClient, world: ApiWorld
) -> None:
    app = api.app
    sent = {**world.headers(), **JSON}
    good = b'{"customer_id": "C1"}'
    fast = api.post("/v1/decisions", content=good, headers=sent)
    app._plain = lambda: False  # type: ignore[attr-defined]
    try:
        stacked = api.post("/v1/decisions", content=good, headers=sent)
    finally:
        del app._plain  # type: ignore[attr-defined]
    assert fast.status_code == stacked.status_code == 200
    assert fast.headers["content-type"] == stacked.headers["content-type"] == "application/json"
    assert int(fast.headers["content-length"]) == len(fast.content)
    assert fast.json().keys() == stacked.json().keys()
