"""Spark profile build: the same profiles as the pandas build, on local Spark.

The session runs in a non-UTC time zone on purpose (Spark hands timestamps to
pandas as session-local wall-clock times), and reads the Parquet files that
``features.dataset.write_dataset`` writes (nanosecond timestamps).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from features.batch import build_profiles
from features.dataset import RetailDataset, write_dataset
from features.finalise import ChannelPrior, FeaturePriors
from features.profile_table import row_to_profile
from nba.profile import CustomerProfile
from simulator import SimulatedRetailer, SimulatorConfig, simulate
from tests.helpers import assert_profiles_equal

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = [
    pytest.mark.integration,
    # pyspark 4.3 on pandas 3: a support notice, and its own use of astype(copy=False)
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CONFIG = SimulatorConfig(n_customers=300, days=30, seed=5)
MIDDLE = dt.datetime(2026, 1, 20, 6, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    pytest.importorskip("pyspark", reason="pyspark is the optional extra nba[spark]")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("Spark needs Java 17+ (not found)")
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter
        session = (
            SparkSession.builder.master("local[2]")
            .appName("nba-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.session.timeZone", "America/New_York")
            .config("spark.sql.legacy.parquet.nanosAsLong", "true")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


@pytest.fixture(scope="module")
def sim() -> SimulatedRetailer:
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def data(sim: SimulatedRetailer) -> RetailDataset:
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


def written(data: RetailDataset, folder: Path) -> str:
    write_dataset(data, folder)
    return str(folder)


def by_customer(frame: pd.DataFrame) -> dict[str, CustomerProfile]:
    profiles = (row_to_profile(row) for row in frame.to_dict("records"))  # type: ignore[arg-type]
    return {p.customer_id: p for p in profiles}


def collect(profiles: DataFrame) -> dict[str, CustomerProfile]:
    frame = profiles.toPandas()
    # toPandas gives naive session-local times
    zone = profiles.sparkSession.conf.get("spark.sql.session.timeZone")
    frame["as_of"] = frame["as_of"].dt.tz_localize(zone).dt.tz_convert("UTC")
    return by_customer(frame)


def test_profiles_equal_the_pandas_build(
    spark: SparkSession, data: RetailDataset, tmp_path: Path
) -> None:
    from features.spark import build_profiles_from_parquet

    as_of = CONFIG.end
    expected = build_profiles(data, as_of)
    # the priors are estimated from enough messages to matter
    assert expected.priors.channels.get("*", {}).get("email") is not None

    out = tmp_path / "profiles"
    build_profiles_from_parquet(spark, written(data, tmp_path / "data"), as_of, str(out))
    got = by_customer(pd.read_parquet(out))

    assert sorted(got) == sorted(p.customer_id for p in expected.profiles)
    for profile in expected.profiles:
        assert_profiles_equal(got[profile.customer_id], profile)


def test_nothing_at_or_after_as_of_counts(
    spark: SparkSession, data: RetailDataset, tmp_path: Path
) -> None:
    from features.spark import build_profiles_spark

    events = data.events
    stamp = pd.Timestamp(MIDDLE)
    # a purchase exactly at as_of, by a customer known before it
    buyer = events[(events["event_type"] == "purchase") & (events["timestamp"] < stamp)].iloc[0]
    at_as_of = buyer.to_frame().T.astype(events.dtypes.to_dict())
    at_as_of["event_id"] = "E-at-as-of"
    at_as_of["timestamp"] = stamp
    full = RetailDataset(
        data.customers, data.products, data.offers, pd.concat([events, at_as_of], ignore_index=True)
    )
    past = RetailDataset(
        data.customers[data.customers["created_at"] < stamp],
        data.products,
        data.offers,
        events[events["timestamp"] < stamp],
    )
    assert len(past.customers) < len(full.customers)
    assert len(past.events) < len(events)

    priors = FeaturePriors(channels={"*": {"email": ChannelPrior(0.3, 0.04, 0.1)}})
    profiles = {}
    for name, dataset in (("full", full), ("past", past)):
        folder = written(dataset, tmp_path / name)
        profiles[name] = collect(
            build_profiles_spark(
                spark,
                spark.read.parquet(f"{folder}/customers.parquet"),
                spark.read.parquet(f"{folder}/events.parquet"),
                dataset.products,
                MIDDLE,
                priors,
                buckets=3,
            )
        )

    assert sorted(profiles["full"]) == sorted(past.customers["customer_id"])
    for cid, profile in profiles["past"].items():
        assert_profiles_equal(profiles["full"][cid], profile)
    assert profiles["full"][buyer["customer_id"]].as_of == MIDDLE
