"""``nba decide`` on Spark (local mode): the same decision per customer as on one machine.

Few and small on purpose: a Spark session takes seconds to start. The audience is
split into many chunks (so into several tasks) and a daily offer budget binds, so
equality also shows that the budget shares hold across partitions.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import serving.batch_decisions as batch
from cli.decide import decide, load_contact_policy
from features.batch import build_profiles
from features.dataset import RetailDataset
from features.online.stock import StockLevels
from features.profile_table import profiles_frame, profiles_from_frame
from nba.catalog import Catalog, parse_catalog
from nba.pipeline import build_pipeline
from serving.batch_decisions import BatchJob, decide_audience
from simulator import SimulatorConfig, simulate
from tests.test_spark import spark  # noqa: F401  (the local session fixture)
from training.baselines import PopularityRecommender
from training.recommendation import TrainingData

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CATALOG = """
actions:
  - id: gift
    type: offer
    channels: [email, push]
    value: 50
    timing: asap
    offer: {id: gift10, kind: fixed_discount, value: 10, cost: 1, daily_budget: 9}
  - id: cart_reminder
    type: cart_reminder
    channels: [email, sms]
    eligibility: "cart_size > 0"
    value: "cart_value * 0.3"
  - id: goes_with
    type: cross_sell
    channels: [email, push]
    eligibility: "len(last_purchased_products) > 0"
    value: 3
  - id: hello
    type: content
    channels: [email]
    value: 2
    daily_volume: 25
  - {id: nothing, type: do_nothing}
"""


CONFIG = SimulatorConfig(n_customers=240, days=30, seed=11, n_products=200)


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    sim = simulate(CONFIG)
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


@pytest.fixture(scope="module")
def audience(tmp_path_factory: pytest.TempPathFactory, data: RetailDataset) -> Path:
    cut = CONFIG.start + dt.timedelta(days=30, hours=-15)
    path = tmp_path_factory.mktemp("audience") / "profiles.parquet"
    profiles_frame(build_profiles(data, as_of=cut, workers=1).profiles).to_parquet(path)
    return path


def _recommender(data: RetailDataset) -> PopularityRecommender:
    """The products bought most (a real recommender, fitted on the history)."""
    bought = data.events[data.events["event_type"] == "purchase"].dropna(subset=["product_id"])
    interactions = (
        bought.groupby(["customer_id", "product_id"]).size().rename("weight").reset_index()
    )
    owned = interactions[["customer_id", "product_id"]]
    model = PopularityRecommender()
    model.fit(
        TrainingData(
            interactions.astype({"weight": float}),
            data.customers,
            data.products,
            owned,
            pd.Timestamp(data.events["timestamp"].max()),
        )
    )
    return model


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by customer and rank, columns in order, missing text as None, products as
    lists."""
    table = table.sort_values(["customer_id", "rank"], ignore_index=True)
    table = table[list(batch.DECISION_COLUMNS)].astype({"rank": "Int64"})
    table["products"] = table["products"].map(list)
    for name in table.columns:
        if table[name].dtype == object or pd.api.types.is_string_dtype(table[name]):
            table[name] = table[name].astype(object).where(table[name].notna(), None)
    return table


def _utc(table: pd.DataFrame, zone: str) -> pd.DataFrame:
    """Spark's toPandas gives naive session-local times: back to UTC instants."""
    for name in batch.TIME_COLUMNS:
        table[name] = (
            table[name].dt.tz_localize(zone).dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        )
    return table


def test_spark_decides_as_one_machine(
    spark: SparkSession,  # noqa: F811
    data: RetailDataset,
    audience: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serving.batch_spark import decide_audience_spark

    monkeypatch.setattr(batch, "CHUNK_SIZE", 30)  # 8 chunks of ~30 customers
    catalog: Catalog = parse_catalog(CATALOG)
    contacts = load_contact_policy(None)
    frame = pd.read_parquet(audience)
    now = profiles_from_frame(frame.iloc[:1])[0].as_of
    assert now is not None
    # products: the recommender's, without the sold-out (every tenth product)
    products = data.products.assign(
        stock=[0 if i % 10 == 0 else 5 for i in range(len(data.products))]
    )
    stock = StockLevels(None, "", products)
    popular = products["product_id"].astype(str).tolist()
    recommender = _recommender(data)
    job = BatchJob(
        build_pipeline(catalog, contacts),
        now,
        seed=4,
        stock=stock,
        recommender=recommender,
        popular=popular,
    )
    local = decide_audience(
        frame,
        catalog,
        contacts,
        now,
        policy=job.policy,
        seed=4,
        stock=stock,
        recommender=recommender,
        popular=popular,
        workers=2,
    )
    assert (local["offer_id"] == "gift10").sum() == 9, "the budget should bind"
    assert 0 < (local["action_id"] == "hello").sum() <= 25
    shown = local.loc[local["action_id"].isin(["goes_with", "cart_reminder"]), "products"]
    assert (local["action_id"] == "goes_with").any() and shown.map(len).gt(0).all()

    assert batch.chunk_count(len(frame)) == 8

    remote = decide_audience_spark(spark.read.parquet(str(audience)), job, catalog)
    got = _utc(remote.toPandas(), spark.conf.get("spark.sql.session.timeZone") or "UTC")
    expected = local.astype({name: "datetime64[us, UTC]" for name in batch.TIME_COLUMNS})
    pd.testing.assert_frame_equal(_comparable(got), _comparable(expected), check_dtype=False)


def test_command_decides_on_spark(
    spark: SparkSession,  # noqa: F811
    audience: Path,
    tmp_path: Path,
) -> None:
    app = typer.Typer()
    app.command("decide")(decide)
    app.command("unused")(lambda: None)
    args = ["decide", "--audience", str(audience), "--seed", "2", "--workers", "1"]
    here = tmp_path / "here.parquet"
    there = tmp_path / "there"
    assert CliRunner().invoke(app, [*args, "--out", str(here)]).exit_code == 0
    result = CliRunner().invoke(app, [*args, "--out", str(there), "--spark"])
    assert result.exit_code == 0, result.output
    assert "customers decided" in result.output
    local, remote = pd.read_parquet(here), pd.read_parquet(there)
    key, shown = ["customer_id", "rank"], ["customer_id", "action_id", "channel", "products"]
    pd.testing.assert_frame_equal(
        remote.sort_values(key, ignore_index=True)[shown].assign(
            products=lambda t: t["products"].map(list)
        ),
        local.sort_values(key, ignore_index=True)[shown].assign(
            products=lambda t: t["products"].map(list)
        ),
    )
    assert (remote["send_at_utc"].dropna() >= local["decided_at"].min()).all()

    broken = tmp_path / "broken.parquet"
    pd.read_parquet(audience).assign(lifecycle_state="zombie").to_parquet(broken)
    result = CliRunner().invoke(
        app, ["decide", "--audience", str(broken), "--out", str(tmp_path / "b"), "--spark"]
    )
    assert result.exit_code == 2, result.output
    assert "field 'lifecycle_state'" in result.output and "Traceback" not in result.output
