"""Cancelled orders and the store's seasonality on Spark (local mode): the days shopped by
purchases alone whose orders were cancelled are left out of the store's month factors
and season prior as in the pandas build, and the profiles are the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.batch import build_profiles, settled_shopping_states
from features.dataset import RetailDataset, write_dataset
from simulator import SimulatorConfig, simulate
from tests.test_batch7_spark_returns import spark

__all__ = ["spark"]

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CONFIG = SimulatorConfig(n_customers=300, days=40, seed=5)


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    """The simulated retailer, with an app order placed on a quiet day (nothing else
    shopped that day) by 60 customers, cancelled the next morning by 40 of them."""
    sim = simulate(CONFIG)
    events = sim.events
    day = CONFIG.end - pd.Timedelta(days=20)
    busy = set(
        events.loc[
            (events["timestamp"] > day - pd.Timedelta(days=1))
            & (events["timestamp"] < day + pd.Timedelta(days=2)),
            "customer_id",
        ]
    )
    quiet = [c for c in sim.customers["customer_id"] if c not in busy][:60]
    assert len(quiet) == 60
    product = sim.products["product_id"].iloc[0]
    rows = []
    for i, cid in enumerate(quiet):
        at = day + pd.Timedelta(hours=12, minutes=i)
        rows.append((f"S9P{i}", cid, at, "app", "purchase", product, 30.0))
        if i < 40:
            rows.append(
                (f"S9C{i}", cid, at + pd.Timedelta(hours=8), "app", "order_cancelled", None, None)
            )
    added = pd.DataFrame(
        rows,
        columns=[
            "event_id",
            "customer_id",
            "timestamp",
            "channel",
            "event_type",
            "product_id",
            "revenue",
        ],
    )
    added["quantity"] = np.where(added["event_type"] == "purchase", 1, np.nan)
    merged = pd.concat([events, added], ignore_index=True).sort_values(
        "timestamp", kind="stable", ignore_index=True
    )
    return RetailDataset(sim.customers, sim.products, sim.offers, merged[events.columns])


def test_cancelled_quiet_days_leave_the_store_seasonality(data: RetailDataset) -> None:
    build = build_profiles(data, CONFIG.end, workers=1)
    states = dict(build.states.items())
    settled = settled_shopping_states(states, CONFIG.end.timestamp())
    gone = [
        cid
        for cid in states
        if sum(f.startswith("ad:") for f in states[cid])
        != sum(f.startswith("ad:") for f in settled[cid])
    ]
    assert len(gone) == 40


@pytest.mark.integration
def test_spark_leaves_the_same_days_out_of_the_store_seasonality(
    spark,  # type: ignore[no-untyped-def]
    data: RetailDataset,
    tmp_path: Path,
) -> None:
    from features.spark import compute_states_spark, estimate_priors_spark

    expected = build_profiles(data, CONFIG.end, workers=1).priors
    write_dataset(data, tmp_path)
    customers = spark.read.parquet(str(tmp_path / "customers.parquet"))
    events = spark.read.parquet(str(tmp_path / "events.parquet"))
    states = compute_states_spark(customers, events, data.products, CONFIG.end)
    got = estimate_priors_spark(states, CONFIG.end.timestamp())
    assert got.month_activity == pytest.approx(expected.month_activity, rel=1e-12)
    assert got.season_prior == pytest.approx(expected.season_prior, rel=1e-12)
