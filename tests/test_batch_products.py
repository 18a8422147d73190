"""Batch decisions carry the products of each row, chosen by the API's rule
(:func:`serving.products.products_for`): a cart reminder's cart items in stock, a
cross-sell's recommendations without what was just bought or sold out, none for an
action that shows none; the recommender asked once per chunk; the command writes them
(Parquet: a list column; CSV: a JSON array)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cli.decide import decide
from features.online.stock import StockLevels
from features.profile_table import profiles_frame
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.profile import CustomerProfile
from serving.batch_decisions import decide_audience
from training.baselines import PopularityRecommender
from training.recommendation import Recommendations, TrainingData

NOW = dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)
CATALOG = """
actions:
  - id: cart
    type: cart_reminder
    channels: [email]
    eligibility: "cart_size > 0"
    value: 100
    timing: asap
  - id: goes_with
    type: cross_sell
    channels: [email]
    eligibility: "len(last_purchased_products) > 0"
    value: 50
    timing: asap
  - id: news
    type: content
    channels: [email]
    value: 5
    timing: asap
  - {id: nothing, type: do_nothing}
"""
#: P01 the most popular, then P02, ... (P10 the least).
PRODUCTS = [f"P{i:02d}" for i in range(1, 11)]


class CountingRecommender(PopularityRecommender):
    """The popularity model, counting the calls and customers it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def recommend(self, customer_ids: Sequence[str], k: int = 10, **kw: Any) -> Recommendations:
        self.calls.append(list(customer_ids))
        return super().recommend(customer_ids, k, **kw)


@pytest.fixture
def recommender() -> CountingRecommender:
    products = pd.DataFrame({"product_id": PRODUCTS})
    interactions = pd.DataFrame(
        {
            "customer_id": ["X"] * len(PRODUCTS),
            "product_id": PRODUCTS,
            "weight": [float(len(PRODUCTS) - i) for i in range(len(PRODUCTS))],
        }
    )
    data = TrainingData(
        interactions,
        pd.DataFrame({"customer_id": ["X"]}),
        products,
        pd.DataFrame({"customer_id": [], "product_id": []}),
        pd.Timestamp(NOW),
    )
    model = CountingRecommender()
    model.fit(data)
    return model


@pytest.fixture
def stock() -> StockLevels:
    """P02 and P05 sold out."""
    units = [0 if p in ("P02", "P05") else 10 for p in PRODUCTS]
    return StockLevels(
        None, "", pd.DataFrame({"product_id": PRODUCTS, "price": 10.0, "stock": units})
    )


@pytest.fixture
def catalog() -> Catalog:
    return parse_catalog(CATALOG)


def _customer(customer_id: str, **fields: Any) -> CustomerProfile:
    return CustomerProfile(customer_id, as_of=NOW, consents={Channel.EMAIL: True}, **fields)


def _audience() -> list[CustomerProfile]:
    return [
        _customer("C1", cart_items=("P05", "P07", "P08"), cart_value=30.0, cart_age_hours=3.0),
        _customer("C2", last_purchased_products=("P01",), hours_since_last_purchase=30.0),
        _customer(
            "C3", last_purchased_products=("P03",), cart_items=(), hours_since_last_purchase=5.0
        ),
        _customer("C4"),
    ]


def _products(table: pd.DataFrame) -> dict[str, tuple[str, list[str]]]:
    return {
        r.customer_id: (r.action_id, list(r.products)) for r in table.itertuples() if r.rank == 0
    }


def test_each_row_carries_the_products_the_api_would_attach(
    catalog: Catalog, recommender: CountingRecommender, stock: StockLevels
) -> None:
    table = decide_audience(
        _audience(), catalog, now=NOW, stock=stock, recommender=recommender, popular=PRODUCTS
    )
    got = _products(table)
    # the cart's items that can be bought (P05 sold out)
    assert got["C1"] == ("cart", ["P07", "P08"])
    # recommendations without the item just bought (P01) nor the sold-out P02 and P05
    assert got["C2"] == ("goes_with", ["P03", "P04", "P06", "P07"])
    assert got["C3"] == ("goes_with", ["P01", "P04", "P06", "P07"])
    # an action that shows no product
    assert got["C4"] == ("news", [])
    # the recommender asked once, for the two customers who need recommendations
    assert recommender.calls == [["C2", "C3"]]


def test_without_a_recommender_the_popular_products_in_stock(
    catalog: Catalog, stock: StockLevels
) -> None:
    table = decide_audience(_audience()[1:2], catalog, now=NOW, stock=stock, popular=PRODUCTS)
    # the popularity list without the item just bought nor the sold-out ones
    assert _products(table)["C2"] == ("goes_with", ["P03", "P04", "P06", "P07"])


def test_nothing_eligible_and_do_nothing_rows_have_no_products(catalog: Catalog) -> None:
    mute = CustomerProfile("C9", as_of=NOW)  # no consent: do nothing
    table = decide_audience([mute], catalog, now=NOW, popular=PRODUCTS)
    assert table["action_id"].tolist() == ["nothing"]
    assert table["products"].map(list).tolist() == [[]]


def _command(tmp_path: Path, out: Path, *extra: str) -> None:
    """``nba decide`` on :func:`_audience`, P05 sold out, no registry."""
    audience = tmp_path / "audience.parquet"
    profiles_frame(_audience()).to_parquet(audience, index=False)
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    products = tmp_path / "products.parquet"
    pd.DataFrame(
        {
            "product_id": PRODUCTS,
            "name": PRODUCTS,
            "category": "shoes",
            "price": 10.0,
            "margin": 4.0,
            "stock": [0 if p == "P05" else 3 for p in PRODUCTS],
            "launch_date": "2025-01-01",
        }
    ).to_parquet(products)
    app = typer.Typer()
    app.command("decide")(decide)
    app.command("unused")(lambda: None)
    result = CliRunner().invoke(
        app,
        [
            "decide",
            "--audience",
            str(audience),
            "--out",
            str(out),
            "--catalog",
            str(tmp_path / "catalog.yaml"),
            "--products",
            str(products),
            "--now",
            NOW.isoformat(),
            "--workers",
            "1",
            *extra,
        ],
        env={"NBA_DATA_DIR": str(tmp_path)},  # no registry: popularity
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_the_command_writes_the_products(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"decisions{suffix}"
    _command(tmp_path, out)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        assert str(pq.read_schema(out).field("products").type) == "list<element: string>"
        table = pd.read_parquet(out)
        rows = {r.customer_id: list(r.products) for r in table.itertuples()}
    else:
        table = pd.read_csv(out)
        rows = {r.customer_id: json.loads(r.products) for r in table.itertuples()}
    assert rows["C1"] == ["P07", "P08"]
    # no registry, no Redis: the products table's order is the popularity list (the API's
    # before it counted any event), P05 sold out and P01 just bought left out
    assert rows["C2"] == ["P02", "P03", "P04", "P06"]
    assert rows["C4"] == []


def test_the_command_takes_the_apis_popularity_from_its_redis(tmp_path: Path) -> None:
    """With ``--redis-url`` the popularity list is the one the API counted from events."""
    from features.online.contact_state import RedisContactState
    from features.online.redis_store import RedisOnlineStore
    from tests.redis_servers import RedisServer, free_port, redis_server_binary

    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    server = RedisServer(binary, free_port(), tmp_path / "redis").start()
    out = tmp_path / "decisions.parquet"
    try:
        with server.client() as client:
            counted = RedisContactState(RedisOnlineStore(client, prefix="nba"))
            counted.add_popularity({"P09": 50.0, "P05": 40.0, "P01": 30.0, "P10": 20.0})
            counted.add_popularity({"P08": 10.0, "P03": 5.0})
        _command(tmp_path, out, "--redis-url", server.url)
    finally:
        server.stop()
    rows = {r.customer_id: list(r.products) for r in pd.read_parquet(out).itertuples()}
    # the API's order, without the sold-out P05 and the just-bought P01
    assert rows["C2"] == ["P09", "P10", "P08", "P03"]
