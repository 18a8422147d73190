"""The HTTP API against real Redis and a real MLflow registry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.archive import read_archive
from features.contract import EventRecord, id_problem
from features.online.profiles import OnlineProfiles
from features.online.store import MemoryOnlineStore
from serving.app import create_app
from tests.api_support import FAST, ApiWorld, build_world, event
from training.api import RECOMMENDER_NAME, train_recommender


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return build_world(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def api(world: ApiWorld) -> Iterator[TestClient]:
    app = create_app(world.settings(), client=world.client, registry=world.registry)
    with TestClient(app) as client:
        yield client


def decide(api: TestClient, world: ApiWorld, customer: str, **context: object) -> dict:  # type: ignore[type-arg]
    response = api.post(
        "/v1/decisions",
        json={"customer_id": customer, "context": context},
        headers=world.headers(),
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer nba_not-a-key"}, 401),
        ({"X-API-Key": "nba_not-a-key"}, 401),
    ],
)
def test_requests_without_a_valid_key_get_401_json(
    api: TestClient, headers: dict[str, str], status: int
) -> None:
    response = api.post("/v1/decisions", json={"customer_id": "C1"}, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_scopes_are_enforced_with_403(api: TestClient, world: ApiWorld) -> None:
    ev = {"events": [event(world, "C1", "product_view", world.at(1), product_id="P00001")]}
    reader = api.post("/v1/events", json=ev, headers=world.headers("reader"))
    assert reader.status_code == 403 and "ingest" in reader.json()["error"]["message"]
    ops = api.post("/v1/decisions", json={"customer_id": "C1"}, headers=world.headers("ops"))
    assert ops.status_code == 403
    journeys = api.post("/v1/admin/models/reload", headers=world.headers("journeys"))
    assert journeys.status_code == 403
    key = {"X-API-Key": world.keys["reader"]}
    assert api.post("/v1/decisions", json={"customer_id": "C1"}, headers=key).status_code == 200


def test_an_app_without_keys_refuses_to_start(world: ApiWorld) -> None:
    with pytest.raises(ValueError, match="NBA_API_KEYS"):
        create_app(world.settings(api_keys=[]))


# ---------------------------------------------------------------- events -> decisions


def test_a_cart_added_a_moment_ago_drives_the_next_decision(
    api: TestClient, world: ApiWorld
) -> None:
    customer = world.customer(consent="email")
    product = str(world.data.products["product_id"].iloc[7])
    added = world.at(59)  # two days after the history: no contact cap in the way
    ev = event(world, customer, "add_to_cart", added, product_id=product)
    response = api.post("/v1/events", json={"events": [ev]}, headers=world.headers())
    assert response.status_code == 200
    assert response.json()["accepted"] == 1

    seen = api.get(
        f"/v1/customers/{customer}/profile",
        params={"as_of": (added + dt.timedelta(minutes=1)).isoformat()},
        headers=world.headers("crm"),
    ).json()
    assert seen["known"] and product in seen["profile"]["cart_items"]

    chosen = []
    for attempt in range(5):
        answer = api.post(
            "/v1/decisions",
            json={
                "customer_id": customer,
                "context": {
                    "timestamp": (added + dt.timedelta(hours=2)).isoformat(),
                    "channel": "email",
                    "actions": ["cart_reminder_1"],
                },
            },
            headers={**world.headers(), "Idempotency-Key": f"cart-{attempt}"},
        ).json()
        for action in answer["actions"]:
            if action["action_id"] == "cart_reminder_1":
                assert action["channel"] == "email"
                assert action["products"] == [product]
                assert action["send_at"] is not None and action["reasons"]
                chosen.append(action)
    assert chosen, "the cart reminder was never chosen for a fresh cart"


def test_events_are_idempotent_and_bad_ones_rejected_with_their_field(
    api: TestClient, world: ApiWorld
) -> None:
    customer = world.customer(consent="sms")
    good = event(world, customer, "product_view", world.at(3), product_id="P00002")
    bad_time = {**event(world, customer, "product_view", world.at(3)), "timestamp": "yesterday"}
    bad_type = {**event(world, customer, "product_view", world.at(3)), "event_type": "teleport"}
    body = {"events": [good, bad_time, good, bad_type]}
    first = api.post("/v1/events", json=body, headers=world.headers()).json()
    assert (first["accepted"], first["duplicate"], first["rejected"]) == (1, 1, 2)
    assert [(r["index"], r["field"]) for r in first["rejections"]] == [
        (1, "timestamp"),
        (3, "event_type"),
    ]
    again = api.post("/v1/events", json={"events": [good]}, headers=world.headers()).json()
    assert (again["accepted"], again["duplicate"]) == (0, 1)


def test_segment_track_and_identify_are_accepted(api: TestClient, world: ApiWorld) -> None:
    customer = world.customer(consent="email")
    track = {
        "type": "track",
        "messageId": "seg-track-1",
        "userId": customer,
        "event": "Product Viewed",
        "timestamp": world.at(4).isoformat(),
        "properties": {"product_id": "P00005", "channel": "web"},
    }
    identify = {
        "type": "identify",
        "messageId": "seg-identify-1",
        "userId": customer,
        "timestamp": world.at(4).isoformat(),
        "traits": {"consent_sms": False, "timezone": "Europe/Paris"},
    }
    out = api.post("/v1/events", json={"events": [track, identify]}, headers=world.headers())
    assert out.status_code == 200 and out.json()["rejected"] == 0
    seen = api.get(
        f"/v1/customers/{customer}/profile",
        params={"as_of": world.at(4.1).isoformat()},
        headers=world.headers(),
    ).json()["profile"]
    assert "P00005" in seen["browsed_products"]
    assert seen["consents"]["sms"] is False and seen["timezone"] == "Europe/Paris"


# ---------------------------------------------------------------- decisions


def test_idempotency_key_returns_the_same_decision(api: TestClient, world: ApiWorld) -> None:
    customer = world.customer()
    body = {"customer_id": customer, "context": {"timestamp": world.at(30).isoformat()}}
    headers = {**world.headers(), "Idempotency-Key": "retry-me"}
    first = api.post("/v1/decisions", json=body, headers=headers).json()
    again = api.post("/v1/decisions", json=body, headers=headers).json()
    assert again == first
    other = api.post(
        "/v1/decisions", json=body, headers={**world.headers(), "Idempotency-Key": "another"}
    ).json()
    assert other["decision_id"] != first["decision_id"]


def test_a_reused_idempotency_key_with_another_request_is_refused(
    api: TestClient, world: ApiWorld
) -> None:
    customer = world.customer()
    body = {"customer_id": customer, "context": {"timestamp": world.at(31).isoformat()}}
    headers = {**world.headers(), "Idempotency-Key": "order-42"}
    first = api.post("/v1/decisions", json=body, headers=headers)
    assert first.status_code == 200
    later = {**body, "context": {"timestamp": world.at(32).isoformat()}}
    reused = api.post("/v1/decisions", json=later, headers=headers)
    assert reused.status_code == 422  # not the first answer passed off as this one's
    error = reused.json()["error"]
    assert "order-42" in error["message"] and error["details"][0]["loc"][-1] == "Idempotency-Key"
    # the key is scoped to the API key: another client's "order-42" is its own request
    mine = api.post(
        "/v1/decisions",
        json=later,
        headers={**world.headers("reader"), "Idempotency-Key": "order-42"},
    )
    assert mine.status_code == 200 and mine.json()["decided_at"] != first.json()["decided_at"]
    assert api.post("/v1/decisions", json=body, headers=headers).json() == first.json()


def test_unknown_customers_get_a_cold_start_decision_without_outbound_contact(
    api: TestClient, world: ApiWorld
) -> None:
    answer = decide(api, world, "never-seen-before", timestamp=world.at(12).isoformat())
    assert answer["cold_start"] and not answer["degraded"]
    assert all(a["channel"] in (None, "web", "app") for a in answer["actions"])
    web = decide(api, world, "never-seen-before", channel="web", max_actions=3)
    assert web["actions"] and all(a["channel"] in (None, "web") for a in web["actions"])


def test_channel_and_action_restrictions_hold(api: TestClient, world: ApiWorld) -> None:
    customer = world.customer(consent="email")
    for _ in range(5):
        answer = decide(api, world, customer, channel="email", max_actions=3)
        assert all(a["channel"] in (None, "email") for a in answer["actions"])
    unknown = api.post(
        "/v1/decisions",
        json={"customer_id": customer, "context": {"actions": ["no_such_action"]}},
        headers=world.headers(),
    )
    assert unknown.status_code == 422 and "no_such_action" in unknown.json()["error"]["message"]


def test_batch_decisions(api: TestClient, world: ApiWorld) -> None:
    ids = world.data.customers["customer_id"].head(20).tolist()
    out = api.post(
        "/v1/decisions/batch",
        json={"customer_ids": ids, "context": {"timestamp": world.at(13).isoformat()}},
        headers=world.headers(),
    )
    assert out.status_code == 200
    assert [d["customer_id"] for d in out.json()["decisions"]] == ids


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/v1/decisions", {"customer_id": ""}, 422),
        ("/v1/decisions", {"customer_id": "C1", "colour": "red"}, 422),
        ("/v1/decisions", {"customer_id": "C1", "context": {"timestamp": "2026-01-01T00:00"}}, 422),
        ("/v1/decisions", {"customer_id": "C1", "context": {"max_actions": 9}}, 422),
        ("/v1/decisions/batch", {"customer_ids": ["C1"] * 501}, 422),
        ("/v1/events", {"events": []}, 422),
        ("/v1/events", {"events": [{}] * 1001}, 422),
    ],
)
def test_bad_requests_get_a_4xx_json_error_naming_the_field(
    api: TestClient, world: ApiWorld, path: str, body: object, code: int
) -> None:
    response = api.post(path, json=body, headers=world.headers())
    assert response.status_code == code
    error = response.json()["error"]
    assert error["code"] and error["message"]


def test_bodies_over_the_limit_get_413(api: TestClient, world: ApiWorld) -> None:
    huge = b'{"customer_id": "' + b"x" * 2_000_000 + b'"}'
    response = api.post(
        "/v1/decisions",
        content=huge,
        headers={**world.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_malformed_json_is_a_422_not_a_500(api: TestClient, world: ApiWorld) -> None:
    response = api.post(
        "/v1/events",
        content=b"{not json",
        headers={**world.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


# ---------------------------------------------------------------- models


def test_no_model_means_rules_then_reload_serves_the_new_champion(
    api: TestClient, world: ApiWorld
) -> None:
    customer = world.customer()
    assert decide(api, world, customer)["model_version"] == "rules"
    run = train_recommender(world.data, registry=world.registry, config=FAST, evaluate_first=False)
    world.registry.promote(RECOMMENDER_NAME, run.version.version)

    answers: list[int] = []
    stop = threading.Event()

    def hammer() -> None:  # decisions keep flowing during the swap
        while not stop.is_set():
            r = api.post("/v1/decisions", json={"customer_id": customer}, headers=world.headers())
            answers.append(r.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    reloaded = api.post("/v1/admin/models/reload", headers=world.headers("ops"))
    stop.set()
    for t in threads:
        t.join()
    assert reloaded.status_code == 200 and reloaded.json()["changed"] is True
    assert answers and set(answers) == {200}
    assert (
        decide(api, world, customer)["model_version"] == f"{RECOMMENDER_NAME}:{run.version.version}"
    )
    again = api.post("/v1/admin/models/reload", headers=world.headers("ops")).json()
    assert again["changed"] is False


def test_operations_endpoints(api: TestClient, world: ApiWorld) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}  # no details without a key
    ready = api.get("/readyz", headers=world.headers("ops")).json()
    assert ready["status"] == "ready" and ready["redis"] == "ok" and ready["durability"]
    decide(api, world, world.customer())
    ev = event(world, world.customer(), "product_view", world.at(5), product_id="P00009")
    assert api.post("/v1/events", json={"events": [ev]}, headers=world.headers()).status_code == 200
    metrics = api.get("/metrics").text
    assert 'nba_request_seconds_bucket{endpoint="/v1/decisions"' in metrics
    assert "nba_decisions_total{" in metrics and "nba_events_total{" in metrics
    for customer_id in world.data.customers["customer_id"]:
        assert str(customer_id) not in metrics


def test_customer_ids_never_reach_the_logs(
    world: ApiWorld, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    app = create_app(world.settings(), client=world.client, registry=world.registry)
    with caplog.at_level("DEBUG"), TestClient(app) as client:
        client.get("/v1/customers/SECRET-ID-42/profile", headers=world.headers())
        client.post("/v1/decisions", json={"customer_id": "SECRET-ID-42"}, headers=world.headers())
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_side, "nothing was logged at DEBUG: the check would be empty"
    assert not [r.getMessage() for r in server_side if "SECRET-ID-42" in r.getMessage()]


# ---------------------------------------------------------------- found by fuzzing (test_api_fuzz)


@pytest.mark.parametrize(
    ("body", "cause"),
    [(b"o_'\xff", "UnicodeDecodeError"), (b"[" * 100_000 + b"]" * 100_000, "RecursionError")],
)
def test_a_body_that_cannot_be_decoded_is_a_documented_422(
    api: TestClient, world: ApiWorld, body: bytes, cause: str
) -> None:
    # FastAPI answered an undocumented 400 'There was an error parsing the body'
    response = api.post(
        "/v1/events", content=body, headers={**world.headers(), "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and "JSON" in error["message"]
    assert error["details"][0]["loc"] == ["body"] and cause in error["details"][0]["message"]


def test_a_streamed_body_over_the_limit_gets_413_not_400(api: TestClient, world: ApiWorld) -> None:
    # without Content-Length the limit trips while FastAPI reads the body, which it wrapped in a 400
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 50_000

    response = api.post(
        "/v1/events",
        content=chunks(),
        headers={**world.headers(), "Content-Type": "application/json"},
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_a_non_bearer_authorization_is_refused_even_with_a_valid_x_api_key(
    api: TestClient, world: ApiWorld
) -> None:
    # the key is read from the raw headers ('Authorization' wins), not from the documented
    # security schemes, which would skip a Basic Authorization and accept the X-API-Key
    valid = world.keys["journeys"]
    body = {"customer_id": "C1"}
    basic = {"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": valid}
    assert api.post("/v1/decisions", json=body, headers=basic).status_code == 401
    both = {"Authorization": f"Bearer {valid}", "X-API-Key": "nba_not-a-key"}
    assert api.post("/v1/decisions", json=body, headers=both).status_code == 200
    lower = {"authorization": f"bearer {valid}"}
    assert api.post("/v1/decisions", json=body, headers=lower).status_code == 200


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1969-12-31T23:59:59Z",
        # affinity scores overflowed (500) or became NaN in Redis after a partial write
        "2082-04-01T00:00:00Z",
        "2100-01-01T00:00:00Z",
        "2199-06-01T00:00:00Z",
    ],
)
def test_moments_out_of_range_are_refused_with_their_field_not_a_500(
    api: TestClient, world: ApiWorld, moment: str
) -> None:
    # converting these to UTC (or to pandas' nanoseconds) overflowed: 500 on all three routes
    decision = api.post(
        "/v1/decisions",
        json={"customer_id": "C1", "context": {"timestamp": moment}},
        headers=world.headers(),
    )
    assert decision.status_code == 422
    assert decision.json()["error"]["details"][0]["loc"] == ["body", "context", "timestamp"]
    visit = api.post(
        "/v1/decisions",
        json={
            "customer_id": "C1",
            "context": {"session": {"channel": "web", "started_at": moment}},
        },
        headers=world.headers(),
    )
    assert visit.status_code == 422
    assert visit.json()["error"]["details"][0]["loc"][-1] == "started_at"
    profile = api.get("/v1/customers/C1/profile", params={"as_of": moment}, headers=world.headers())
    assert profile.status_code == 422 and "1970" in profile.json()["error"]["message"]
    customer = world.customer()
    bad = {
        **event(world, customer, "product_view", world.at(6), product_id="P00001"),
        "timestamp": moment,
    }
    good = event(world, customer, "product_view", world.at(6), product_id="P00002")
    out = api.post("/v1/events", json={"events": [bad, good]}, headers=world.headers())
    assert out.status_code == 200
    body = out.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["rejections"][0]["index"] == 0 and body["rejections"][0]["field"] == "timestamp"


def test_a_request_whose_every_event_is_rejected_is_a_422_naming_each(
    api: TestClient, world: ApiWorld
) -> None:
    """All refused (nothing stored): a 4xx in the error shape, each event's index and
    field in the details, the 200's counts beside; one good event or one already seen in
    the batch: a 200 that applies it and lists the others."""
    customer = f"new-{uuid.uuid4().hex[:10]}"  # nobody the store knows yet
    fax = {**event(world, customer, "product_view", world.at(6), product_id="P00001")}
    fax["channel"] = "fax"
    late = {**event(world, customer, "product_view", world.at(6), product_id="P00002")}
    late["timestamp"] = "2999-01-01T00:00:00+00:00"
    refused = api.post("/v1/events", json={"events": [fax, late]}, headers=world.headers())
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["error"]["code"] == "events_rejected"
    assert "all 2 events were rejected" in body["error"]["message"]
    assert [d["loc"] for d in body["error"]["details"]] == [
        ["body", "events", 0, "channel"],
        ["body", "events", 1, "timestamp"],
    ]
    assert (body["accepted"], body["rejected"]) == (0, 2)
    assert (
        api.get(f"/v1/customers/{customer}/profile", headers=world.headers()).json()["known"]
        is False
    )

    good = event(world, customer, "add_to_cart", world.at(7), product_id="P00003")
    mixed = api.post("/v1/events", json={"events": [fax, good]}, headers=world.headers())
    assert mixed.status_code == 200 and "error" not in mixed.json()
    assert (mixed.json()["accepted"], mixed.json()["rejected"]) == (1, 1)
    seen = api.post("/v1/events", json={"events": [good, fax]}, headers=world.headers())
    assert seen.status_code == 200  # the good one is a duplicate: it was stored before
    assert (seen.json()["duplicate"], seen.json()["rejected"]) == (1, 1)


def test_popularity_gathers_in_memory_and_reaches_redis_on_flush(
    api: TestClient, world: ApiWorld
) -> None:
    product = str(world.data.products["product_id"].iloc[11])
    key = f"{world.prefix}:pop"
    before = world.client.zscore(key, product) or 0.0
    customer = world.customer()
    events = [
        event(world, customer, "add_to_cart", world.at(70), product_id=product),
        event(world, customer, "purchase", world.at(71), product_id=product),
    ]
    assert (
        api.post("/v1/events", json={"events": events}, headers=world.headers()).status_code == 200
    )
    api.app.state.runtime.ingestor.flush_popularity()  # type: ignore[attr-defined]
    assert world.client.zscore(key, product) == before + 3 + 5  # add to cart 3, purchase 5


def test_one_id_rule_for_events_decisions_and_profiles(api: TestClient, world: ApiWorld) -> None:
    customer = world.customer()
    for bad_id in ("C1\n", "C\t1", "C1\x00", "x" * 129):
        ev = {**event(world, customer, "product_view", world.at(7), product_id="P00001")}
        ev["customer_id"] = bad_id
        out = api.post("/v1/events", json={"events": [ev]}, headers=world.headers()).json()
        assert (out["accepted"], out["rejected"]) == (0, 1), bad_id
        assert out["rejections"][0]["field"] == "customer_id"
        decision = api.post("/v1/decisions", json={"customer_id": bad_id}, headers=world.headers())
        assert decision.status_code == 422, bad_id
        # the id rule in words, not the regular expression behind it
        [detail] = decision.json()["error"]["details"]
        assert "pattern" not in detail["message"]
        assert detail["message"] == id_problem(bad_id) or "at most 128" in detail["message"]
        batch = api.post(
            "/v1/decisions/batch",
            json={"customer_ids": [customer, bad_id]},
            headers=world.headers(),
        )
        assert batch.status_code == 422 and batch.json()["error"]["details"][0]["loc"][-1] == 1
    profile = api.get("/v1/customers/C1%0A/profile", headers=world.headers())
    assert profile.status_code == 422
    assert "control character" in profile.json()["error"]["details"][0]["message"]
    spaced = api.get("/v1/customers/%20C1/profile", headers=world.headers())
    assert spaced.status_code == 422 and "starts or ends with a space" in spaced.text
    assert world.client.keys(f"{world.prefix}:*C1\n*") == []  # nothing was created for them


def test_request_limits_match_the_schema(api: TestClient, world: ApiWorld) -> None:
    empty_action = {"customer_id": "C1", "context": {"actions": [""]}}
    assert api.post("/v1/decisions", json=empty_action, headers=world.headers()).status_code == 422
    epoch = api.get("/v1/customers/C1/profile", params={"as_of": "0.5"}, headers=world.headers())
    assert epoch.status_code == 422  # a number is not read as 1970-01-01T00:00:00.5
    schema = api.get("/openapi.json").json()["components"]["schemas"]
    assert schema["DecisionContext"]["properties"]["max_actions"]["maximum"] == (
        world.settings().max_actions
    )


def test_profiles_need_their_own_scope_and_are_rate_limited(world: ApiWorld) -> None:
    settings = world.settings(rate_limits={"profiles": 2.0})
    with TestClient(create_app(settings, client=world.client, registry=world.registry)) as api:
        path = f"/v1/customers/{world.customer()}/profile"
        refused = api.get(path, headers=world.headers("reader"))  # a decide-only key
        assert refused.status_code == 403 and "profiles" in refused.json()["error"]["message"]
        answers = [api.get(path, headers=world.headers()) for _ in range(4)]
        assert [a.status_code for a in answers[:2]] == [200, 200]
        limited = answers[-1]
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "too_many_requests"
        assert int(limited.headers["Retry-After"]) >= 1
        # other scopes of the same key are not limited by it
        assert (
            api.post(
                "/v1/decisions", json={"customer_id": "C1"}, headers=world.headers()
            ).status_code
            == 200
        )


def test_unknown_customers_are_prospects_or_rejected_as_configured(world: ApiWorld) -> None:
    known = world.customer()
    product = str(world.data.products["product_id"].iloc[3])
    prospect = event(world, "prospect-1", "product_view", world.at(8), product_id=product)
    stranger = event(world, known, "product_view", world.at(8), product_id="NOT-A-PRODUCT")
    ok = event(world, known, "product_view", world.at(8), product_id=product)
    app = create_app(world.settings(), client=world.client, registry=world.registry)
    with TestClient(app) as api:
        out = api.post(
            "/v1/events", json={"events": [prospect, stranger, ok]}, headers=world.headers()
        ).json()
        assert (out["accepted"], out["rejected"]) == (3, 0)  # accepted, and counted
        metrics = api.get("/metrics").text
        assert 'nba_events_unknown_total{kind="customer"} 1.0' in metrics
        assert 'nba_events_unknown_total{kind="product"} 1.0' in metrics
    strict = world.settings(unknown_customers="reject")
    with TestClient(create_app(strict, client=world.client, registry=world.registry)) as api:
        again = [{**e, "event_id": f"{e['event_id']}-strict"} for e in (prospect, stranger, ok)]
        out = api.post("/v1/events", json={"events": again}, headers=world.headers()).json()
        assert (out["accepted"], out["rejected"]) == (1, 2)
        fields = {r["index"]: r["field"] for r in out["rejections"]}
        assert fields == {0: "customer_id", 1: "product_id"}


def test_events_from_the_future_are_rejected_one_by_one(api: TestClient, world: ApiWorld) -> None:
    customer = world.customer()
    now = dt.datetime.now(dt.UTC)
    ahead = event(world, customer, "product_view", now + dt.timedelta(hours=2), product_id="P00001")
    skewed = event(
        world, customer, "product_view", now + dt.timedelta(minutes=1), product_id="P00001"
    )
    out = api.post("/v1/events", json={"events": [ahead, skewed]}, headers=world.headers()).json()
    assert (out["accepted"], out["rejected"]) == (1, 1)  # a minute of clock skew is fine
    assert out["rejections"][0]["index"] == 0 and out["rejections"][0]["field"] == "timestamp"
    profile = api.get(f"/v1/customers/{customer}/profile", headers=world.headers()).json()
    assert profile["profile"]["days_since_last_visit"] >= -0.01  # no visit from the future


_ID_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
_EVENT_TYPES = st.sampled_from(
    ["product_view", "add_to_cart", "purchase", "message_sent", "unsubscribe", "opt_in", "nope"]
)
_EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "event_id": st.text(_ID_CHARS, min_size=0, max_size=140),
            "timestamp": st.datetimes(
                min_value=dt.datetime(1900, 1, 1),
                max_value=dt.datetime(2300, 1, 1),
                timezones=st.just(dt.UTC),
            ).map(dt.datetime.isoformat),
            "channel": st.sampled_from(["web", "app", "email", "sms", "push", "fax"]),
            "event_type": _EVENT_TYPES,
            "product_id": st.one_of(
                st.none(), st.sampled_from(["P00001", "P00002"]), st.text(_ID_CHARS, max_size=3)
            ),
            "quantity": st.one_of(st.none(), st.integers(min_value=-5, max_value=10**30)),
            "revenue": st.one_of(
                st.none(), st.floats(min_value=-1.0, max_value=1e308, allow_nan=False)
            ),
        }
    ),
    min_size=1,
    max_size=6,
)


@pytest.fixture(scope="module")
def unlimited_api(world: ApiWorld) -> Iterator[TestClient]:
    """The API without rate limits (a property test reads many profiles a second)."""
    app = create_app(world.settings(rate_limits={}), client=world.client, registry=world.registry)
    with TestClient(app) as client:
        yield client


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=_EVENTS, suffix=st.text(_ID_CHARS, min_size=0, max_size=4))
def test_any_event_is_applied_or_rejected_whole_and_never_a_5xx(
    unlimited_api: TestClient, world: ApiWorld, raw: list[dict[str, object]], suffix: str
) -> None:
    """Events over the whole range of every field (times 1900-2300, huge amounts, every
    character in ids): each is applied or rejected on its own, never a server error, and
    the profile is exactly the profile of the accepted events (no partial write)."""
    customer = f"fz-{uuid.uuid4().hex[:10]}{suffix}"
    events = [{**e, "customer_id": customer} for e in raw]
    response = unlimited_api.post("/v1/events", json={"events": events}, headers=world.headers())
    body = response.json()
    rejected = {r["index"] for r in body["rejections"]}
    # a 422 exactly when every event was rejected (nothing stored), naming each one
    assert response.status_code == (422 if len(rejected) == len(events) else 200), response.text
    if response.status_code == 422:
        assert body["error"]["code"] == "events_rejected"
        assert {d["loc"][2] for d in body["error"]["details"]} == rejected
    assert body["accepted"] + body["duplicate"] + body["stale"] + body["rejected"] == len(events)
    if id_problem(customer) is not None:
        assert rejected == set(range(len(events)))
        return
    accepted = [EventRecord.model_validate(e) for i, e in enumerate(events) if i not in rejected]
    store = MemoryOnlineStore()
    store.write_priors(unlimited_api.app.state.runtime.decisions.profiles.priors)  # type: ignore[attr-defined]
    # the API's: a customer of unknown time zone lives in the retailer's
    zone = unlimited_api.app.state.runtime.decisions.profiles.default_timezone  # type: ignore[attr-defined]
    mirror = OnlineProfiles(store, world.data.products, default_timezone=zone)
    mirror.ingest_records(list({r.event_id: r for r in accepted}.values()))
    at = world.at(100).isoformat()
    read = unlimited_api.get(
        f"/v1/customers/{quote(customer, safe='')}/profile",
        params={"as_of": at},
        headers=world.headers(),
    )
    assert read.status_code == 200, (customer, read.text)
    seen = read.json()
    expected = mirror.profile(customer, dt.datetime.fromisoformat(at))
    assert seen["known"] == (expected is not None)
    if expected is not None:
        assert seen["profile"] == jsonable_encoder(dataclasses.asdict(expected))


def test_accepted_events_are_archived_before_the_answer(api: TestClient, world: ApiWorld) -> None:
    customer = world.customer()
    good = event(world, customer, "add_to_cart", world.at(9), product_id="P00003")
    bad = {**event(world, customer, "product_view", world.at(9)), "channel": "fax"}
    out = api.post("/v1/events", json={"events": [good, bad]}, headers=world.headers()).json()
    assert (out["accepted"], out["rejected"]) == (1, 1)
    archived = read_archive(world.settings().archive_path)  # read while the API runs
    mine = archived[archived["customer_id"] == customer]
    assert good["event_id"] in set(mine["event_id"]) and bad["event_id"] not in set(
        mine["event_id"]
    )
    row = mine.set_index("event_id").loc[good["event_id"]]
    assert (row["event_type"], row["product_id"]) == ("add_to_cart", "P00003")
