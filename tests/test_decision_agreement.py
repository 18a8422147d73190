"""The API and ``nba decide`` give the same decision for the same profile, time, seed
and models: both build it with :func:`nba.pipeline.build_pipeline`, load the registry's
champions with :func:`serving.models.champion_models` and prepare the context with the
champions' send-time model; each action shows the same products (the champion
recommender's, asked once per chunk in batch, one customer at a time in the API)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import training.api
from cli.decide import decide
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.profile_table import profiles_frame
from nba.actions import ActionType
from serving.app import create_app
from serving.products import RECOMMENDED
from tests.api_support import FAST, ApiWorld, build_world, event
from training.api import CHANNELS_NAME, SEND_TIME_NAME, train_channels, train_send_time

RECOMMENDER_NAME = training.api.RECOMMENDER_NAME

SEED = 7


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    world = build_world(tmp_path_factory.mktemp("agreement"), customers=400, days=45)
    channels = train_channels(world.data, registry=world.registry)
    send_time = train_send_time(world.data, registry=world.registry)
    world.registry.promote(CHANNELS_NAME, channels.version.version)
    world.registry.promote(SEND_TIME_NAME, send_time.version.version)
    recommender = training.api.train_recommender(
        world.data, registry=world.registry, config=FAST, evaluate_first=False
    )
    world.registry.promote(RECOMMENDER_NAME, recommender.version.version)
    return world


def test_the_api_and_nba_decide_give_the_same_decisions(world: ApiWorld, tmp_path: Path) -> None:
    now = world.at(9)
    c = world.data.customers
    customers = [str(x) for x in c.loc[c["consent_email"].fillna(False), "customer_id"][:30]]

    # Without online statistics: each API decision adds an exposure the next one reads,
    # which a batch run (reading them once, nba decide --redis-url) cannot replay.
    app = create_app(
        world.settings(response_stats=False), client=world.client, registry=world.registry
    )
    answers = []
    with TestClient(app) as api:
        # carts filled two hours ago: cart reminders and their products
        products = world.data.products["product_id"].astype(str).tolist()
        carts = [
            event(world, who, "add_to_cart", now - dt.timedelta(hours=2), product_id=product)
            for who, product in zip(customers[:8], products[::7], strict=False)
        ]
        response = api.post("/v1/events", json={"events": carts}, headers=world.headers())
        assert response.status_code == 200, response.text
        online = OnlineProfiles(
            RedisOnlineStore(world.client, prefix=world.prefix), world.data.products
        )
        profiles = online.profiles(customers, now)
        assert all(p is not None for p in profiles)
        for customer in customers:  # in the audience's order: budgets are used alike
            response = api.post(
                "/v1/decisions",
                json={"customer_id": customer, "context": {"timestamp": now.isoformat()}},
                headers={**world.headers(), "Idempotency-Key": f"{SEED}:{customer}"},
            )
            assert response.status_code == 200, response.text
            answers.append(response.json())
    label = answers[0]["model_version"]
    assert f"{CHANNELS_NAME}:" in label and f"{SEND_TIME_NAME}:" in label
    assert f"{RECOMMENDER_NAME}:" in label

    audience, out = tmp_path / "audience.parquet", tmp_path / "decisions.parquet"
    profiles_frame([p for p in profiles if p is not None]).to_parquet(audience, index=False)
    cli = typer.Typer()
    cli.command("decide")(decide)
    cli.command("unused")(lambda: None)  # a group, so that 'decide' is a subcommand
    tracking_uri = f"sqlite:///{world.root / 'mlflow.db'}"
    result = CliRunner().invoke(
        cli,
        [
            "decide",
            "--audience",
            str(audience),
            "--out",
            str(out),
            "--now",
            now.isoformat(),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--tracking-uri",
            tracking_uri,
            "--products",  # the API's products table: the same stock levels
            str(world.products_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"models: {label}" in " ".join(result.output.split())
    table = pd.read_parquet(out)

    contacted = 0
    for customer, answer in zip(customers, answers, strict=True):
        rows = table[table["customer_id"] == customer].sort_values("rank")
        assert rows["decision_id"].unique().tolist() == [answer["decision_id"]]
        assert rows["policy"].unique().tolist() == [answer["policy"]]
        batch = [
            (
                r.action_id,
                None if pd.isna(r.channel) else r.channel,
                None if pd.isna(r.send_at_utc) else r.send_at_utc.to_pydatetime(),
                round(float(r.propensity), 6),
                round(float(r.priority), 6),
                list(r.products),
            )
            for r in rows.itertuples()
        ]
        served = [
            (
                a["action_id"],
                a["channel"],
                None if a["send_at"] is None else dt.datetime.fromisoformat(a["send_at"]),
                a["propensity"],
                a["score"],
                a["products"],
            )
            for a in answer["actions"]
        ]
        assert batch == served, customer
        contacted += sum(1 for a in answer["actions"] if a["channel"] is not None)
    assert contacted > 0  # the comparison covers channels and send times
    shown = [a for answer in answers for a in answer["actions"] if a["products"]]
    # and the products of reminders and of the champion recommender
    assert any(ActionType(a["type"]) in RECOMMENDED for a in shown), shown
    assert any(ActionType(a["type"]) == ActionType.CART_REMINDER for a in shown), shown
