"""An order cancelled and the product ordered again since (issue 12, fix10 item 2).

A cancellation (or return) naming a product takes back that product's latest purchase
before it, whichever order that was: the state keeps every purchase of the return window
by product and day (``bp``), not only each product's latest (``cb``), so that an order
placed again after the cancellation (or before it was reported) no longer hides the one
cancelled. The simulated retailer gets a cancellation of a fifth of its orders, each
followed by the product ordered again; the purchases counted equal the events' truth, and
the pandas build, the online store and Spark agree.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from features.batch import build_profiles
from features.dataset import RetailDataset, write_dataset
from features.online.profiles import OnlineProfiles
from features.online.store import MemoryOnlineStore
from features.profile_table import row_to_profile
from simulator import SimulatorConfig, simulate
from tests.helpers import assert_profiles_equal

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CONFIG = SimulatorConfig(n_customers=300, days=30, seed=11)


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    """The simulated retailer; a fifth of its orders (one per customer and product) is
    cancelled 1 to 48 hours later naming the product, and the product ordered again
    1 to 72 hours after the order (before or after the cancellation)."""
    sim = simulate(CONFIG)
    events = sim.events
    rng = np.random.default_rng(3)
    bought = events[(events["event_type"] == "purchase") & events["product_id"].notna()]
    chosen = bought.sample(frac=0.2, random_state=3).drop_duplicates(["customer_id", "product_id"])
    cancel = chosen.copy()
    cancel["event_id"] = [f"X{i}" for i in range(len(cancel))]
    cancel["event_type"] = "order_cancelled"
    cancel["timestamp"] = cancel["timestamp"] + pd.to_timedelta(
        rng.integers(1, 48, len(cancel)), "h"
    )
    cancel["channel"] = "app"
    cancel[["revenue", "offer_id", "quantity", "decision_id"]] = None
    again = chosen.copy()
    again["event_id"] = [f"A{i}" for i in range(len(again))]
    again["timestamp"] = again["timestamp"] + pd.to_timedelta(rng.integers(1, 72, len(again)), "h")
    again["decision_id"] = None
    end = events["timestamp"].max()
    merged = pd.concat([events, cancel[cancel["timestamp"] < end], again[again["timestamp"] < end]])
    merged = merged.sort_values("timestamp", kind="stable", ignore_index=True)
    return RetailDataset(sim.customers, sim.products, sim.offers, merged)


def _truth(events: pd.DataFrame) -> dict[str, int]:
    """Purchases per customer less those cancelled: each cancellation takes back its
    product's latest purchase before it (one cancellation per product here)."""
    counts: dict[str, int] = (
        events[events["event_type"] == "purchase"].groupby("customer_id").size().to_dict()
    )
    bought = events[events["event_type"] == "purchase"]
    for row in events[events["event_type"] == "order_cancelled"].itertuples():
        before = bought[
            (bought["customer_id"] == row.customer_id)
            & (bought["product_id"] == row.product_id)
            & (bought["timestamp"] <= row.timestamp)
        ]
        if len(before):
            counts[row.customer_id] -= 1
    return counts


def test_each_cancelled_order_leaves_the_counts_once(data: RetailDataset) -> None:
    build = build_profiles(data, CONFIG.end, workers=1)
    truth = _truth(data.events)
    cancelled = set(data.events.loc[data.events["event_type"] == "order_cancelled", "customer_id"])
    assert len(cancelled) >= 30
    got = {p.customer_id: p.purchases_total for p in build.profiles}
    wrong = {c: (got[c], truth.get(c, 0)) for c in cancelled if got[c] != truth.get(c, 0)}
    assert not wrong, wrong


def test_the_online_store_reads_the_batch_profiles(data: RetailDataset) -> None:
    """Materialised before the cancellations' week, the rest ingested in time order."""
    cut = pd.Timestamp(CONFIG.end) - pd.Timedelta(days=7)
    events = data.events
    early = RetailDataset(
        data.customers, data.products, data.offers, events[events["timestamp"] < cut]
    )
    online = OnlineProfiles(MemoryOnlineStore(), data.products)
    online.materialise(build_profiles(early, cut.to_pydatetime(), workers=1))
    late = events[events["timestamp"] >= cut].reset_index(drop=True)
    for start in range(0, len(late), 500):
        online.ingest(late.iloc[start : start + 500])
    expected = build_profiles(data, CONFIG.end, workers=1, priors=online.priors)
    cancelled = sorted(set(events.loc[events["event_type"] == "order_cancelled", "customer_id"]))
    got = online.profiles(cancelled, CONFIG.end)
    by_id = {p.customer_id: p for p in expected.profiles}
    for cid, profile in zip(cancelled, got, strict=True):
        assert profile is not None
        assert profile.purchases_total == by_id[cid].purchases_total, cid
        assert profile.revenue_total == pytest.approx(by_id[cid].revenue_total), cid
        assert profile.returned_products == by_id[cid].returned_products, cid
        assert profile.last_purchased_products == by_id[cid].last_purchased_products, cid


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    pytest.importorskip("pyspark", reason="pyspark is the optional extra nba[spark]")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("Spark needs Java 17+ (not found)")
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSPARK_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("nba-tests-fix10")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.legacy.parquet.nanosAsLong", "true")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


@pytest.mark.integration
def test_spark_builds_the_pandas_profiles(
    spark: SparkSession, data: RetailDataset, tmp_path: Path
) -> None:
    from features.spark import build_profiles_from_parquet

    expected = build_profiles(data, CONFIG.end, workers=1)
    folder = tmp_path / "data"
    write_dataset(data, folder)
    out = tmp_path / "profiles"
    build_profiles_from_parquet(spark, str(folder), CONFIG.end, str(out))
    rows = pd.read_parquet(out).to_dict("records")
    got = {p.customer_id: p for p in (row_to_profile(r) for r in rows)}  # type: ignore[arg-type]
    assert sorted(got) == sorted(p.customer_id for p in expected.profiles)
    for profile in expected.profiles:
        assert_profiles_equal(got[profile.customer_id], profile)
