"""The API learns online: decisions are exposures, outcome events are joined to them, the
statistics are read back by the next decision and shown at ``/metrics``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.api_support import ApiWorld, build_world, event


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return build_world(tmp_path_factory.mktemp("api-learning"))


@pytest.fixture(scope="module")
def api(world: ApiWorld) -> Iterator[TestClient]:
    app = create_app(world.settings(), client=world.client, registry=world.registry)
    with TestClient(app) as client:
        yield client


def metric(api: TestClient, world: ApiWorld, name: str) -> dict[str, float]:
    text = api.get("/metrics", headers=world.headers()).text
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            out[labels[len(name) :]] = float(value)
    return out


def outcome(
    world: ApiWorld, customer: str, kind: str, at: dt.datetime, decision_id: str | None
) -> dict[str, object]:
    ev = event(world, customer, kind, at, channel="email")
    ev["decision_id"] = decision_id
    if kind == "purchase":
        ev.update(product_id=str(world.data.products["product_id"].iloc[0]), revenue=20.0)
    return ev


def test_outcomes_are_joined_to_decisions_and_counted_per_action(
    api: TestClient, world: ApiWorld
) -> None:
    customer = world.customer(consent="email")
    product = str(world.data.products["product_id"].iloc[7])
    added = world.at(59)  # two days after the history: no contact cap in the way
    cart = event(world, customer, "add_to_cart", added, product_id=product)
    assert api.post("/v1/events", json={"events": [cart]}, headers=world.headers()).is_success
    for attempt in range(20):  # the engine explores: doing nothing may win a draw
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
            headers={**world.headers(), "Idempotency-Key": f"learn-{attempt}"},
        ).json()
        sent = [a for a in answer["actions"] if a["channel"] == "email"]
        if sent:
            break
    assert sent, (answer["actions"], answer["rejected"])
    [contact] = sent
    action = contact["action_id"]
    decision_id = answer["decision_id"]
    later = added + dt.timedelta(hours=3)
    events = [
        outcome(world, customer, "message_clicked", later, decision_id),
        outcome(world, customer, "purchase", later, decision_id),
        outcome(world, customer, "purchase", later, "d-does-not-exist"),
        outcome(world, "someone-else", "message_clicked", later, decision_id),  # foreign id
    ]
    out = api.post("/v1/events", json={"events": events}, headers=world.headers())
    assert out.status_code == 200, out.text
    assert out.json()["accepted"] == 4  # applied as ordinary events, all of them
    again = api.post("/v1/events", json={"events": events}, headers=world.headers())
    assert again.status_code == 200 and again.json()["duplicate"] == 4
    outcomes = metric(api, world, "nba_outcomes_total")
    assert outcomes['{result="attributed"}'] == 2.0
    assert outcomes['{result="unattributed"}'] == 4.0  # twice two: counted, never an error
    # counts decay from the (simulated) send to the server's clock: compare them
    label = f'{{action="{action}"}}'
    responses = metric(api, world, "nba_action_responses")[label]
    decisions = metric(api, world, "nba_action_decisions")[label]
    assert responses > 0 and responses == pytest.approx(decisions, rel=0.01)
    assert metric(api, world, "nba_action_response_rate")[label] == pytest.approx(1.0, rel=0.01)
    low = metric(api, world, "nba_action_response_rate_low")[label]
    high = metric(api, world, "nba_action_response_rate_high")[label]
    assert 0.0 <= low < high <= 1.0
    # the purchase's margin (its revenue times its product's margin rate) is learned too
    products = world.data.products
    first = products.iloc[0]
    rate = float(first["margin"]) / float(first["price"])
    margin = metric(api, world, "nba_action_margin")[label]
    assert margin == pytest.approx(20.0 * rate * decisions, rel=0.01)
    assert metric(api, world, "nba_action_margin_per_stated_value")[label] > 0
