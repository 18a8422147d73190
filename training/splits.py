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
