"""Time-based splits: train on what happened before a cut, test on what came after.

Random splits leak the future into training (a customer's later purchases
teach the model what they will buy). Every split here is by time, and the
training side of a split is built from events strictly before the cut.

>>> import pandas as pd
>>> events = pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=10, freq="D", tz="UTC"),
...     "product_id": ["P"] * 10, "event_type": ["purchase"] * 10})
>>> time_cut(events, test_fraction=0.2)
Timestamp('2026-01-09 00:00:00+0000', tz='UTC')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.interactions import DEFAULT_TYPE_WEIGHTS


def product_events(events: pd.DataFrame, event_types: Iterable[str] | None = None) -> pd.DataFrame:
    """Events that name a product, of the given types (default: the interaction types)."""
    types = list(event_types) if event_types is not None else list(DEFAULT_TYPE_WEIGHTS)
    return events[events["product_id"].notna() & events["event_type"].isin(types)]


def time_cut(
    events: pd.DataFrame, test_fraction: float = 0.2, event_types: Iterable[str] | None = None
) -> pd.Timestamp:
    """The moment before which ``1 - test_fraction`` of the product events happened."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1) (got {test_fraction})")
    stamps = product_events(events, event_types)["timestamp"]
    if stamps.empty:
        raise ValueError("no product events to split")
    ordered = stamps.sort_values(ignore_index=True)
    at = int(np.floor(len(ordered) * (1.0 - test_fraction)))
    return pd.Timestamp(ordered.iloc[min(at, len(ordered) - 1)]).tz_convert("UTC")


@dataclass(frozen=True)
class TemporalSplit:
    """Events before ``cut`` (train) and in ``[cut, end)`` (test)."""

    cut: pd.Timestamp
    end: pd.Timestamp
    train: pd.DataFrame
    test: pd.DataFrame


def temporal_split(
    events: pd.DataFrame, cut: pd.Timestamp, end: pd.Timestamp | None = None
) -> TemporalSplit:
    """Split ``events`` at ``cut``; ``end`` bounds the test window (default: after the end)."""
    if cut.tzinfo is None:
        raise ValueError("cut must be time-zone aware")
    last = events["timestamp"].max()
    end = end if end is not None else last + pd.Timedelta(seconds=1)
    train = events[events["timestamp"] < cut]
    test = events[(events["timestamp"] >= cut) & (events["timestamp"] < end)]
    return TemporalSplit(cut, end, train.reset_index(drop=True), test.reset_index(drop=True))


def launched_before(products: pd.DataFrame, moment: pd.Timestamp) -> pd.DataFrame:
    """Products whose launch date is at or before ``moment`` (the catalogue known then)."""
    launch = pd.to_datetime(products["launch_date"], errors="coerce")
    if launch.dt.tz is not None:
        launch = launch.dt.tz_convert(None)
    day = moment.tz_convert("UTC").tz_localize(None)
    return products[launch.isna() | (launch <= day)].reset_index(drop=True)


def created_before(customers: pd.DataFrame, moment: pd.Timestamp) -> pd.DataFrame:
    """Customers known strictly before ``moment``."""
    return customers[customers["created_at"] < moment].reset_index(drop=True)


@dataclass(frozen=True)
class PerUserSplit:
    """Each customer's last positives (``test``) and what came before them (``train``).

    ``cuts`` is each evaluated customer's moment of their first held-out positive.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    cuts: pd.Series


def per_user_split(
    events: pd.DataFrame, positive: np.ndarray, holdout_fraction: float = 0.2
) -> PerUserSplit:
    """Leave-last-N %-out by time, per customer: the last ``holdout_fraction`` of each
    customer's ``positive`` events (at least one; none when they have fewer than two) is
    the test; their training side is every other event of theirs up to that moment.

    Ties in time are broken by ``event_id``, so the split does not depend on row order.

    >>> events = pd.DataFrame({"customer_id": ["a"] * 5 + ["b"],
    ...     "event_id": [f"e{i}" for i in range(6)],
    ...     "timestamp": pd.date_range("2026-01-01", periods=6, freq="D", tz="UTC")})
    >>> split = per_user_split(events, np.ones(6, dtype=bool), 0.4)
    >>> split.test["event_id"].tolist(), split.train["event_id"].tolist()
    (['e3', 'e4'], ['e0', 'e1', 'e2', 'e5'])
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1) (got {holdout_fraction})")
    frame = events.reset_index(drop=True)
    positive = np.asarray(positive, dtype=bool)
    pos = frame[positive].sort_values(["customer_id", "timestamp", "event_id"])
    per_customer = pos.groupby("customer_id", sort=False)["customer_id"]
    n = per_customer.transform("size").to_numpy()
    from_end = pos.groupby("customer_id", sort=False).cumcount(ascending=False).to_numpy()
    n_test = np.where(n >= 2, np.clip(np.ceil(holdout_fraction * n), 1, n - 1), 0)
    test = pos[from_end < n_test]
    cuts = test.groupby("customer_id")["timestamp"].min()
    if test.empty:
        return PerUserSplit(frame, test.reset_index(drop=True), cuts)
    cut_of_row = frame["customer_id"].map(cuts)
    kept = cut_of_row.isna() | (frame["timestamp"] <= cut_of_row)
    kept &= ~frame.index.isin(test.index)
    return PerUserSplit(
        frame[kept.to_numpy()].reset_index(drop=True), test.reset_index(drop=True), cuts
    )


def last_seen(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """``(customer_id, product_id, timestamp)``: the latest event before ``as_of`` of every
    (customer, product) pair, sorted by customer, then time, then product: the order in
    which each customer met their products (what order-aware recommenders read).

    >>> events = pd.DataFrame({"customer_id": ["a", "a", "a"], "product_id": ["x", "y", "x"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"], utc=True)})
    >>> last_seen(events, pd.Timestamp("2026-01-04", tz="UTC"))["product_id"].tolist()
    ['y', 'x']
    """
    known = events[(events["timestamp"] < as_of) & events["product_id"].notna()]
    pairs = pd.DataFrame(
        {
            "customer_id": known["customer_id"].astype(str).to_numpy(),
            "product_id": known["product_id"].astype(str).to_numpy(),
            "timestamp": known["timestamp"].reset_index(drop=True),
        }
    )
    latest = pairs.groupby(["customer_id", "product_id"], sort=False, as_index=False).agg(
        timestamp=("timestamp", "max")
    )
    return latest.sort_values(
        ["customer_id", "timestamp", "product_id"], kind="stable"
    ).reset_index(drop=True)
