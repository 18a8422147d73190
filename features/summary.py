"""A short description of a data set: what a newcomer checks first."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.dataset import RetailDataset
from nba.channels import CONSENT_CHANNELS


@dataclass(frozen=True)
class DatasetSummary:
    """Counts and rates of a data set. Rates are shares in [0, 1]."""

    customers: int
    products: int
    offers: int
    events: int
    first_event: pd.Timestamp | None
    last_event: pd.Timestamp | None
    events_by_channel: dict[str, int]
    events_by_type: dict[str, int]
    consent_rates: dict[str, float]
    purchases: int
    purchasing_customers: int
    revenue: float


def summarise(data: RetailDataset) -> DatasetSummary:
    """Summarise ``data``: table sizes, event mix, consent rates and purchases."""
    events = data.events
    purchases = events[events["event_type"] == "purchase"]
    consent_rates = {
        ch.value: float(data.customers[f"consent_{ch.value}"].fillna(False).mean())
        if len(data.customers)
        else 0.0
        for ch in CONSENT_CHANNELS
    }
    return DatasetSummary(
        customers=len(data.customers),
        products=len(data.products),
        offers=len(data.offers),
        events=len(events),
        first_event=events["timestamp"].min() if len(events) else None,
        last_event=events["timestamp"].max() if len(events) else None,
        events_by_channel={str(k): int(v) for k, v in events["channel"].value_counts().items()},
        events_by_type={str(k): int(v) for k, v in events["event_type"].value_counts().items()},
        consent_rates=consent_rates,
        purchases=len(purchases),
        purchasing_customers=int(purchases["customer_id"].nunique()),
        revenue=float(purchases["revenue"].fillna(0).sum()),
    )
