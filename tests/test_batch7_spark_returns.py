"""Returned and cancelled orders through the batch builds: the store's rates of browse and
cart abandonment days (the trigger priors) are the mean of the profiles' own values,
which read purchases with their returns settled, in the pandas build and on Spark alike
(they were summed from the raw purchase days: a day whose only order was cancelled was
no cart left behind for the store, though it was for the customer)."""

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

from features.batch import build_profiles, settled_left_days
from features.dataset import RetailDataset, write_dataset
from features.finalise import LEFT_DAYS_WINDOW, left_days, split_state, trigger_prior
from features.profile_table import row_to_profile
from simulator import SimulatorConfig, simulate
from tests.helpers import assert_profiles_equal

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CONFIG = SimulatorConfig(n_customers=300, days=30, seed=9)


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    """The simulated retailer with a fifth of its purchases returned or cancelled after
    a few hours to days: named or not (the latest order), whole or partly refunded."""
    sim = simulate(CONFIG)
    events = sim.events
    rng = np.random.default_rng(4)
    bought = events[events["event_type"] == "purchase"].sample(frac=0.2, random_state=4)
    undo = bought.copy()
    kinds = np.array(["order_returned", "order_cancelled"])[np.arange(len(undo)) % 2]
    undo["event_id"] = [f"U{i}" for i in range(len(undo))]
    undo["event_type"] = kinds
    undo["timestamp"] = undo["timestamp"] + pd.to_timedelta(rng.integers(1, 120, len(undo)), "h")
    undo["channel"] = "web"
    undo.loc[undo.index[::3], "product_id"] = None  # the latest order
    partial = undo.index[1::4]
    undo["revenue"] = None
    undo.loc[partial, "revenue"] = bought.loc[partial, "revenue"] * 0.25
    undo["offer_id"] = None
    undo = undo[undo["timestamp"] < events["timestamp"].max()]
    merged = pd.concat([events, undo], ignore_index=True).sort_values(
        "timestamp", kind="stable", ignore_index=True
    )
    return RetailDataset(sim.customers, sim.products, sim.offers, merged)


def test_the_trigger_priors_are_the_mean_of_the_profiles_own_days(data: RetailDataset) -> None:
    build = build_profiles(data, CONFIG.end, workers=1)
    now = CONFIG.end.timestamp()
    states = build.states
    changed = [
        cid
        for cid in states
        if left_days(split_state(states[cid])[1], now) != settled_left_days(states[cid], now)
    ]
    assert changed, "some cancelled order left its day's cart behind"
    n = len(build.profiles)
    for kind in ("browse", "cart"):
        days = [getattr(p, f"{kind}_left_days_30d") for p in build.profiles]
        rate, weight = trigger_prior(n, float(sum(days)), float(sum(d * d for d in days)))
        assert getattr(build.priors, f"{kind}_left_rate") == pytest.approx(rate, abs=1e-15)
        assert getattr(build.priors, f"{kind}_left_weight") == pytest.approx(weight, rel=1e-12)
    cart = [p.cart_left_days_30d for p in build.profiles]
    assert build.priors.cart_left_rate == pytest.approx(sum(cart) / n / LEFT_DAYS_WINDOW)


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
            .appName("nba-tests-batch7")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.session.timeZone", "Asia/Tokyo")
            .config("spark.sql.legacy.parquet.nanosAsLong", "true")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


@pytest.mark.integration
def test_spark_builds_the_pandas_profiles_and_priors_with_returns(
    spark: SparkSession, data: RetailDataset, tmp_path: Path
) -> None:
    from features.spark import build_profiles_from_parquet

    expected = build_profiles(data, CONFIG.end, workers=1)
    returned = {
        str(c)
        for c in data.events.loc[
            data.events["event_type"].isin(["order_returned", "order_cancelled"]), "customer_id"
        ]
    }
    assert len(returned) >= 20
    folder = tmp_path / "data"
    write_dataset(data, folder)
    out = tmp_path / "profiles"
    build_profiles_from_parquet(spark, str(folder), CONFIG.end, str(out))
    rows = pd.read_parquet(out).to_dict("records")
    got = {p.customer_id: p for p in (row_to_profile(r) for r in rows)}  # type: ignore[arg-type]
    assert sorted(got) == sorted(p.customer_id for p in expected.profiles)
    for profile in expected.profiles:  # the trigger rates read the priors
        assert_profiles_equal(got[profile.customer_id], profile)
