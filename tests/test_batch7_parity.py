"""``nba decide --redis-url`` gives the API's decision for the same customers and moment,
where the profile is the hard part: customers whose orders were returned or cancelled,
customers erased from the API, and send times held back by quiet hours in several time
zones. Everything is built from raw contract events through the real API, its Redis and
the real feature code; the batch run reads the audience written from the online store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.decide import decide
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.profile_table import profiles_frame
from serving.app import create_app
from tests.api_support import ApiWorld, build_world, event
from tests.redis_servers import RedisServer, free_port, redis_server_binary

SEED = 11


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    running = RedisServer(binary, free_port(), tmp_path_factory.mktemp("redis")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, server: RedisServer) -> ApiWorld:
    root = tmp_path_factory.mktemp("batch7")
    client = server.client()
    return build_world(root, customers=300, days=40, client=client)


def _cli() -> typer.Typer:
    cli = typer.Typer()
    cli.command("decide")(decide)
    cli.command("unused")(lambda: None)  # a group, so that 'decide' is a subcommand
    return cli


def _batch_rows(table: pd.DataFrame, customer: str) -> list[tuple[Any, ...]]:
    rows = table[table["customer_id"] == customer].sort_values("rank")
    return [
        (
            r.action_id,
            None if pd.isna(r.channel) else r.channel,
            None if pd.isna(r.send_at_utc) else r.send_at_utc.to_pydatetime(),
            None if pd.isna(r.offer_id) else r.offer_id,
            round(float(r.propensity), 6) if not pd.isna(r.propensity) else None,
            list(r.products),
        )
        for r in rows.itertuples()
        if not pd.isna(r.action_id)
    ]


def _served_rows(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            a["action_id"],
            a["channel"],
            None if a["send_at"] is None else dt.datetime.fromisoformat(a["send_at"]),
            (a.get("offer") or {}).get("offer_id"),
            a["propensity"],
            a["products"],
        )
        for a in answer["actions"]
    ]


def _customers(world: ApiWorld, zone: str, consent: str, n: int, skip: int = 0) -> list[str]:
    c = world.data.customers
    ok = c[c[f"consent_{consent}"].fillna(False) & c["timezone"].str.startswith(zone)]
    return [str(x) for x in ok["customer_id"].iloc[skip : skip + n]]


def test_batch_with_the_apis_redis_decides_as_the_api(
    world: ApiWorld, server: RedisServer, tmp_path: Path
) -> None:
    """One audience, one moment (02:30 UTC: night in Europe, evening in America): returned
    and cancelled orders, carts left in both continents, one customer erased after the
    audience was written. The batch run with the API's Redis gives every customer the
    API's actions, channels, send times, offers, propensities and products."""
    now = world.at(26.5)  # 02:30 UTC the day after next
    europe = _customers(world, "Europe/", "email", 14)
    america = _customers(world, "America/", "email", 8)
    returning, cancelling, erased = europe[0:3], europe[3:6], europe[6]
    carts = [*europe[6:12], *america[:6]]
    products = world.data.products["product_id"].astype(str).tolist()
    events = []
    bought_by: dict[str, str] = {}
    for k, who in enumerate(returning + cancelling):
        bought = bought_by[who] = products[(5 * k) % len(products)]
        events.append(
            event(world, who, "purchase", now - dt.timedelta(hours=30), product_id=bought)
        )
        # a return names the product; a cancellation names none (the latest order)
        events.append(
            event(
                world,
                who,
                "order_returned" if who in returning else "order_cancelled",
                now - dt.timedelta(hours=4),
                product_id=bought if who in returning else None,
            )
        )
    for k, who in enumerate(carts):
        events.append(
            event(
                world,
                who,
                "add_to_cart",
                now - dt.timedelta(hours=2),
                product_id=products[(7 * k + 3) % len(products)],
            )
        )
    audience_ids = sorted({*europe, *america})
    app = create_app(
        world.settings(response_stats=False), client=world.client, registry=world.registry
    )
    with TestClient(app) as api:
        response = api.post("/v1/events", json={"events": events}, headers=world.headers())
        assert response.status_code == 200, response.text
        online = OnlineProfiles(
            RedisOnlineStore(world.client, prefix=world.prefix), world.data.products
        )
        profiles = online.profiles(audience_ids, now)
        assert all(p is not None for p in profiles)
        by_id = {p.customer_id: p for p in profiles if p is not None}
        # the returns and cancellations took the purchase back out of the profiles
        for who in returning + cancelling:
            assert bought_by[who] not in by_id[who].last_purchased_products, who
        audience = tmp_path / "audience.parquet"
        profiles_frame(list(by_id.values())).to_parquet(audience, index=False)

        response = api.delete(f"/v1/customers/{erased}", headers=world.headers("ops"))
        assert response.status_code == 204, response.text

        args = [
            "decide",
            "--audience",
            str(audience),
            "--now",
            now.isoformat(),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--tracking-uri",
            f"sqlite:///{world.root / 'mlflow.db'}",
            "--products",
            str(world.products_path),
            "--redis-prefix",
            world.prefix,
        ]
        plain, out = tmp_path / "plain.parquet", tmp_path / "decisions.parquet"
        runner = CliRunner()
        result = runner.invoke(_cli(), [*args, "--out", str(plain)])
        assert result.exit_code == 0, result.output
        result = runner.invoke(_cli(), [*args, "--out", str(out), "--redis-url", server.url])
        assert result.exit_code == 0, result.output

        answers = {}
        for customer in audience_ids:  # the batch's order: budgets are used alike
            response = api.post(
                "/v1/decisions",
                json={"customer_id": customer, "context": {"timestamp": now.isoformat()}},
                headers={**world.headers(), "Idempotency-Key": f"{SEED}:{customer}"},
            )
            assert response.status_code == 200, response.text
            answers[customer] = response.json()

    table = pd.read_parquet(out)
    for customer in audience_ids:
        assert _batch_rows(table, customer) == _served_rows(answers[customer]), customer

    # the comparison covers what it claims to
    erased_plain = _batch_rows(pd.read_parquet(plain), erased)
    assert any(row[1] is not None for row in erased_plain), "the erased customer's cart"
    assert all(row[1] is None for row in _batch_rows(table, erased)), "forgotten: no contact"
    deferred_zones = {
        str(r.timezone)
        for r in table.itertuples()
        if not pd.isna(r.send_at_utc) and r.send_at_utc.to_pydatetime() > now
    }
    assert any(z.startswith("Europe/") for z in deferred_zones), deferred_zones
    assert any(z.startswith("America/") for z in deferred_zones), deferred_zones
    reminded = table[table["action_type"] == "cart_reminder"]
    assert len(set(reminded["customer_id"])) >= 4, reminded


def test_history_files_hold_what_the_apis_redis_holds(
    world: ApiWorld, server: RedisServer, tmp_path: Path
) -> None:
    """Yesterday's decision file (``--history``) gives the next run the API's view: the
    same decisions as the run that reads what the API recorded of the same decisions in
    its Redis (cool-downs, sequences, caps, today's budgets), where a run without either
    sends the same messages again."""
    first = world.at(50)  # 02:00 UTC, another day than the test above
    later = first + dt.timedelta(hours=5)  # the same retailer's day (Paris)
    customers = sorted(_customers(world, "Europe/", "email", 24, skip=30))
    customers += sorted(_customers(world, "America/", "email", 6, skip=10))
    customers = sorted(customers)
    products = world.data.products["product_id"].astype(str).tolist()
    carts = [
        event(world, who, "add_to_cart", first - dt.timedelta(hours=3), product_id=products[k])
        for k, who in enumerate(customers[::2])
    ]
    app = create_app(
        world.settings(response_stats=False), client=world.client, registry=world.registry
    )
    runner = CliRunner()
    base = [
        "decide",
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--tracking-uri",
        f"sqlite:///{world.root / 'mlflow.db'}",
        "--products",
        str(world.products_path),
        "--redis-prefix",
        world.prefix,
    ]
    with TestClient(app) as api:
        response = api.post("/v1/events", json={"events": carts}, headers=world.headers())
        assert response.status_code == 200, response.text
        online = OnlineProfiles(
            RedisOnlineStore(world.client, prefix=world.prefix), world.data.products
        )
        audience = tmp_path / "audience.parquet"
        found = online.profiles(customers, first)
        profiles_frame([p for p in found if p is not None]).to_parquet(audience, index=False)
        yesterday = tmp_path / "yesterday.parquet"
        result = runner.invoke(
            _cli(),
            [
                *base,
                "--audience",
                str(audience),
                "--now",
                first.isoformat(),
                "--out",
                str(yesterday),
            ],
        )
        assert result.exit_code == 0, result.output
        table = pd.read_parquet(yesterday)
        for customer in customers:  # the API decides the same, and records it
            response = api.post(
                "/v1/decisions",
                json={"customer_id": customer, "context": {"timestamp": first.isoformat()}},
                headers={**world.headers(), "Idempotency-Key": f"{SEED}:{customer}"},
            )
            assert response.status_code == 200, response.text
            # products aside: the API shows its popular products, the file run the table's
            assert [r[:5] for r in _batch_rows(table, customer)] == [
                r[:5] for r in _served_rows(response.json())
            ], customer

    runs = {}
    for name, extra in {
        "redis": ["--redis-url", server.url],
        "history": ["--history", str(yesterday)],
        "neither": [],
    }.items():
        out = tmp_path / f"{name}.parquet"
        result = runner.invoke(
            _cli(),
            [
                *base,
                "--audience",
                str(audience),
                "--now",
                later.isoformat(),
                "--out",
                str(out),
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
        runs[name] = pd.read_parquet(out)
    for customer in customers:  # products aside: the Redis run shows the API's popular ones
        assert [r[:5] for r in _batch_rows(runs["history"], customer)] == [
            r[:5] for r in _batch_rows(runs["redis"], customer)
        ], customer
    sent = table.dropna(subset=["channel"])[["customer_id", "action_id"]]
    assert len(sent) >= 10
    again = runs["neither"].dropna(subset=["channel"]).merge(sent)
    assert len(again) >= 5, "without a history, the same messages go again"
    assert runs["history"].dropna(subset=["channel"]).merge(sent).empty


def test_a_history_file_that_does_not_read_as_decisions_is_refused_naming_row_and_field(
    world: ApiWorld, tmp_path: Path
) -> None:
    now = world.at(9)
    audience = tmp_path / "audience.parquet"
    online = OnlineProfiles(
        RedisOnlineStore(world.client, prefix=world.prefix), world.data.products
    )
    ids = _customers(world, "Europe/", "email", 3, skip=60)
    profiles_frame([p for p in online.profiles(ids, now) if p is not None]).to_parquet(audience)
    history = tmp_path / "history.csv"
    pd.DataFrame(
        {
            "customer_id": [ids[0], ids[1], ids[2]],
            "decision_id": ["d-1", "d-2", "d-3"],
            "decided_at": ["2026-01-01T09:00:00+00:00", "2026-01-01T09:00:00", None],
            "action_id": ["cart_reminder_1", "cart_remnder_1", "birthday"],
            "channel": ["email", "email", "fax"],
            "send_at_utc": [None, None, "2026-01-01T18:00:00+00:00"],
        }
    ).to_csv(history, index=False)
    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(
        _cli(),
        [
            "decide",
            "--audience",
            str(audience),
            "--out",
            str(out),
            "--now",
            now.isoformat(),
            "--history",
            str(history),
        ],
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"{history}: row 2, field 'action_id': unknown action 'cart_remnder_1'" in text, text
    assert f"{history}: row 2, field 'decided_at': '2026-01-01T09:00:00' is not a time" in text
    assert f"{history}: row 3, field 'channel': unknown channel 'fax'" in text, text
    assert "row 1" not in text and "Traceback" not in result.output
    assert not out.exists()


def test_the_erasure_register_holds_in_batch_without_the_apis_redis(
    world: ApiWorld, server: RedisServer, tmp_path: Path
) -> None:
    """``nba erase`` registers the erasure beside the event archive; ``nba decide
    --archive`` (no Redis) decides a profile built before it as an unknown visitor's, and
    one built after it (the customer's new relationship) as it is."""
    import dataclasses

    from cli.main import app

    now = world.at(80)
    who = _customers(world, "Europe/", "email", 1, skip=70)[0]
    product = world.data.products["product_id"].astype(str).iloc[5]
    with TestClient(create_app(world.settings(response_stats=False), client=world.client)) as api:
        cart = [event(world, who, "add_to_cart", now - dt.timedelta(hours=2), product_id=product)]
        response = api.post("/v1/events", json={"events": cart}, headers=world.headers())
        assert response.status_code == 200, response.text
    online = OnlineProfiles(
        RedisOnlineStore(world.client, prefix=world.prefix), world.data.products
    )
    (profile,) = online.profiles([who], now)
    assert profile is not None
    before = tmp_path / "before.parquet"
    profiles_frame([profile]).to_parquet(before)
    archive = tmp_path / "archive"
    archive.mkdir()
    args = ["--tracking-uri", f"sqlite:///{world.root / 'mlflow.db'}", "--workers", "1"]
    runner = CliRunner()

    def contacts(audience: Path, at: dt.datetime, *extra: str) -> list[tuple[Any, ...]]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}.parquet"
        result = runner.invoke(
            _cli(),
            [
                "decide",
                *("--audience", str(audience), "--out", str(out), "--now", at.isoformat()),
                *args,
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
        return _batch_rows(pd.read_parquet(out), who)

    assert any(r[1] is not None for r in contacts(before, now, "--archive", str(archive)))
    result = runner.invoke(
        app,
        [
            "erase",
            "--customer",
            who,
            "--redis-url",
            server.url,
            "--redis-prefix",
            world.prefix,
            "--archive",
            str(archive),
            "--decision-log",
            str(tmp_path / "log"),
        ],
    )
    assert result.exit_code == 0, result.output
    forgotten = contacts(before, now, "--archive", str(archive))
    assert all(r[1] is None for r in forgotten), forgotten

    # a profile built after the erasure holds only the new relationship: decided as it is
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    after = tmp_path / "after.parquet"
    profiles_frame([dataclasses.replace(profile, as_of=later)]).to_parquet(after)
    assert contacts(after, later, "--archive", str(archive)) == contacts(after, later)
    assert contacts(after, later) != forgotten
