"""MovieLens-100k in the nba data contract.

The data set is read from the ``recbole`` 1.2.1 wheel on PyPI, which carries it
under ``recbole/dataset_example/ml-100k/``: the wheel is fetched with
``pip download`` (a package registry is reachable where a data host is not),
cached, and read as a zip. The data itself is never committed.

Mapping onto the contract:

* each of the 943 users is a customer (``gender``; age, occupation and zip code
  in ``attributes``; no consents, since there is no contact data);
* each of the 1,682 movies is a product (``category`` is the first genre, all
  genres and the release year in ``attributes``; ``launch_date`` is 1 January
  of the release year; price, margin are 0 and stock is unlimited, since
  MovieLens has no commerce data);
* each of the 100,000 ratings is a ``review`` event on the ``web`` channel at
  its timestamp, with ``{"rating": r}`` in ``properties``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import CUSTOMERS, EVENTS, OFFERS, PRODUCTS
from features.dataset import RetailDataset
from features.validation import validate_table

RECBOLE_VERSION = "1.2.1"
WHEEL_NAME = f"recbole-{RECBOLE_VERSION}-py3-none-any.whl"
_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.{}"
UNLIMITED_STOCK = 1_000_000


class DatasetUnavailableError(RuntimeError):
    """The data set could not be fetched or read."""


def default_cache_dir() -> Path:
    """``$NBA_CACHE_DIR`` when set, else ``~/.cache/nba``."""
    return Path(os.environ.get("NBA_CACHE_DIR") or Path.home() / ".cache" / "nba")


def fetch_wheel(cache_dir: Path) -> Path:
    """Return the recbole wheel in ``cache_dir``, downloading it with pip if needed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / WHEEL_NAME
    if wheel.exists():
        return wheel
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        f"recbole=={RECBOLE_VERSION}",
        "-d",
        str(cache_dir),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not wheel.exists():
        raise DatasetUnavailableError(
            f"could not download recbole=={RECBOLE_VERSION} from the package index: "
            f"{result.stderr.strip()[-500:]}"
        )
    return wheel


def _read_atomic(archive: zipfile.ZipFile, kind: str) -> pd.DataFrame:
    raw = archive.read(_MEMBER.format(kind)).decode("latin-1")
    frame = pd.read_csv(io.StringIO(raw), sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def load_movielens_100k(wheel: Path) -> RetailDataset:
    """Convert MovieLens-100k, read from the recbole ``wheel``, into a validated data set."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            users = _read_atomic(archive, "user")
            items = _read_atomic(archive, "item")
            ratings = _read_atomic(archive, "inter")
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise DatasetUnavailableError(f"{wheel} does not hold MovieLens-100k: {exc}") from exc

    ratings["timestamp"] = pd.to_datetime(
        ratings["timestamp"].astype(float).astype("int64"), unit="s", utc=True
    )
    first_seen = ratings.groupby("user_id")["timestamp"].min()

    customers = pd.DataFrame(
        {
            "customer_id": users["user_id"],
            "created_at": users["user_id"].map(first_seen),
            "timezone": "America/Chicago",
            "birth_date": None,
            "gender": users["gender"].map({"F": "female", "M": "male"}).fillna("unknown"),
            "city": None,
            "loyalty_tier": "none",
            "attributes": [
                json.dumps({"age": int(a), "occupation": o, "zip_code": z})
                for a, o, z in zip(
                    users["age"], users["occupation"], users["zip_code"], strict=True
                )
            ],
        }
    )
    for col in CUSTOMERS.names:
        if col.startswith("consent_"):
            customers[col] = None if col.endswith("_at") else False

    genres = items["class"].str.split(" ")
    years = pd.to_numeric(items["release_year"], errors="coerce")
    first_rating = ratings.groupby("item_id")["timestamp"].min().dt.tz_localize(None).dt.normalize()
    launch = pd.to_datetime(years.astype("Int64").astype(str) + "-01-01", errors="coerce")
    launch = launch.fillna(items["item_id"].map(first_rating))
    products = pd.DataFrame(
        {
            "product_id": items["item_id"],
            "name": items["movie_title"],
            "category": genres.str[0].replace("", "unknown"),
            "brand": None,
            "price": 0.0,
            "margin": 0.0,
            "stock": UNLIMITED_STOCK,
            "launch_date": launch,
            "attributes": [
                json.dumps({"genres": g, "release_year": None if np.isnan(y) else int(y)})
                for g, y in zip(genres, years, strict=True)
            ],
        }
    )
    offers = pd.DataFrame({c: pd.Series(dtype=object) for c in OFFERS.names})
    events = pd.DataFrame(
        {
            "event_id": "r" + pd.Series(np.arange(len(ratings))).astype(str),
            "customer_id": ratings["user_id"],
            "timestamp": ratings["timestamp"],
            "channel": "web",
            "event_type": "review",
            "product_id": ratings["item_id"],
            "offer_id": None,
            "decision_id": None,
            "quantity": None,
            "revenue": None,
            "properties": [
                '{"rating": ' + r + "}"
                for r in ratings["rating"].astype(float).astype(int).astype(str)
            ],
        }
    )
    return RetailDataset(
        customers=validate_table(customers, CUSTOMERS, "ml-100k.user"),
        products=validate_table(products, PRODUCTS, "ml-100k.item"),
        offers=validate_table(offers, OFFERS, "offers"),
        events=validate_table(events, EVENTS, "ml-100k.inter"),
    )
