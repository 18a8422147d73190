"""MovieLens-100k converted into the data contract, from the recbole wheel on PyPI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from features.dataset import RetailDataset
from features.datasets.movielens import (
    DatasetUnavailableError,
    default_cache_dir,
    fetch_wheel,
    load_movielens_100k,
)

CACHE = default_cache_dir()


@pytest.fixture(scope="module")
def movielens() -> RetailDataset:
    try:
        wheel = fetch_wheel(CACHE)
    except DatasetUnavailableError as exc:  # no package index: say so, do not pass silently
        pytest.fail(f"MovieLens-100k is needed for this test and could not be fetched: {exc}")
    return load_movielens_100k(wheel)


@pytest.mark.integration
def test_row_counts_and_ids(movielens: RetailDataset) -> None:
    assert len(movielens.customers) == 943
    assert len(movielens.products) == 1682
    assert len(movielens.events) == 100_000
    assert len(movielens.offers) == 0
    assert set(movielens.events["customer_id"]) == set(movielens.customers["customer_id"])
    assert set(movielens.events["product_id"]) <= set(movielens.products["product_id"])
    assert movielens.events["event_id"].is_unique
    # ids are the original MovieLens ids, as text
    assert set(movielens.customers["customer_id"]) == {str(i) for i in range(1, 944)}


@pytest.mark.integration
def test_timestamps_and_ratings(movielens: RetailDataset) -> None:
    ts = movielens.events["timestamp"]
    assert str(ts.dtype) == "datetime64[ns, UTC]"
    # the public data set spans September 1997 to April 1998
    assert ts.min() == pd.Timestamp("1997-09-20T03:05:10Z")
    assert ts.max() == pd.Timestamp("1998-04-22T23:10:38Z")
    # user 196 rated movie 242 with 3 stars at 881250949 (the first line of u.data)
    first = movielens.events.iloc[0]
    assert (first["customer_id"], first["product_id"]) == ("196", "242")
    assert first["timestamp"] == pd.Timestamp(881250949, unit="s", tz="UTC")
    assert json.loads(first["properties"]) == {"rating": 3}
    ratings = movielens.events["properties"].map(lambda p: json.loads(p)["rating"])
    assert set(ratings) == {1, 2, 3, 4, 5}


@pytest.mark.integration
def test_customers_and_products_carry_their_attributes(movielens: RetailDataset) -> None:
    user1 = movielens.customers.set_index("customer_id").loc["1"]
    assert user1["gender"] == "male"
    assert json.loads(user1["attributes"]) == {
        "age": 24,
        "occupation": "technician",
        "zip_code": "85711",
    }
    toy_story = movielens.products.set_index("product_id").loc["1"]
    assert toy_story["name"] == "Toy Story"
    assert toy_story["category"] == "Animation"
    assert toy_story["launch_date"] == pd.Timestamp("1995-01-01")
    # created_at is each user's first rating
    first_rating = movielens.events.groupby("customer_id")["timestamp"].min()
    created = movielens.customers.set_index("customer_id")["created_at"]
    assert (created == first_rating.reindex(created.index)).all()


@pytest.mark.integration
def test_cli_writes_a_valid_dataset(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from features.dataset import load_dataset

    result = CliRunner().invoke(
        app, ["datasets", "movielens-100k", "--out", str(tmp_path), "--cache", str(CACHE)]
    )
    assert result.exit_code == 0, result.output
    assert "100,000 rating events" in result.output
    assert len(load_dataset(tmp_path).events) == 100_000


def test_a_wheel_without_the_data_is_reported(tmp_path: Path) -> None:
    import zipfile

    fake = tmp_path / "recbole-1.2.1-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("recbole/__init__.py", "")
    with pytest.raises(DatasetUnavailableError, match="does not hold MovieLens-100k"):
        load_movielens_100k(fake)
