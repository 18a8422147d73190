"""Weighted customer x product interactions from contract events.

Every event that names a product says something about the customer's
interest in it, more for a purchase than for a view. :func:`interaction_frame`
turns events known before a moment into one weight per (customer, product)
pair: the sum over events of the event type's weight, decayed with the age of
the event, capped so that a hundred views never outweigh intent. A ``review``
event carrying ``{"rating": r}`` (MovieLens) weighs ``r / 5``; with a
relevance threshold (``min_rating``) a review rated below it is explicit
negative feedback: no positive weight at all (the product still counts as
seen, so it is never recommended back). A rating outside the declared scale
(:data:`RATING_SCALE`) is a contract error naming the rows
(:func:`check_rating_scale`).

>>> import pandas as pd
>>> events = pd.DataFrame({
...     "customer_id": ["C1", "C1", "C2"], "product_id": ["P1", "P1", "P2"],
...     "event_type": ["product_view", "purchase", "add_to_cart"],
...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-02"], utc=True),
...     "properties": [None, None, None]})
>>> weights = InteractionWeights(half_life_days=None)
>>> interaction_frame(events, pd.Timestamp("2026-01-03", tz="UTC"), weights)
  customer_id product_id  weight
0          C1         P1     1.1
1          C2         P2     0.5
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.validation import DataContractError, Problem
from nba.events import EventType

#: Default weight of each event type that names a product (purchase > cart > click > view).
DEFAULT_TYPE_WEIGHTS: dict[str, float] = {
    EventType.PURCHASE.value: 1.0,
    EventType.CLICK_COLLECT_PICKUP.value: 1.0,
    EventType.ADD_TO_CART.value: 0.5,
    EventType.MESSAGE_CLICKED.value: 0.25,
    EventType.PRODUCT_VIEW.value: 0.1,
    EventType.REVIEW.value: 0.8,
}
#: Event types whose product a customer "has": excluded from their recommendations.
OWNED_TYPES: tuple[str, ...] = (
    EventType.PURCHASE.value,
    EventType.CLICK_COLLECT_PICKUP.value,
    EventType.REVIEW.value,
)
#: The declared scale of ``{"rating": r}`` in review events (MovieLens: 1 to 5 stars).
RATING_SCALE: tuple[float, float] = (1.0, 5.0)
_RATING_SCALE = RATING_SCALE[1]


@dataclass(frozen=True)
class InteractionWeights:
    """How events become interaction weights.

    ``half_life_days`` halves an event's weight for every that many days before
    ``as_of`` (None: no decay); ``max_weight`` caps a pair's summed weight;
    ``min_rating`` (None: every rating is positive) is the relevance threshold of
    rated reviews: one rated below it weighs nothing.
    """

    type_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TYPE_WEIGHTS))
    half_life_days: float | None = 60.0
    max_weight: float = 3.0
    min_rating: float | None = None

    def __post_init__(self) -> None:
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValueError(f"half_life_days must be positive or None (got {self.half_life_days})")
        if self.max_weight <= 0:
            raise ValueError(f"max_weight must be positive (got {self.max_weight})")
        low, high = RATING_SCALE
        if self.min_rating is not None and not low <= self.min_rating <= high:
            raise ValueError(f"min_rating must be within {low:g}..{high:g} (got {self.min_rating})")
        bad = {k: v for k, v in self.type_weights.items() if v < 0}
        if bad:
            raise ValueError(f"event type weights must be non-negative (got {bad})")


def _ratings(properties: pd.Series) -> np.ndarray:
    """``properties["rating"]`` of each row as float, NaN when absent."""
    out = np.full(len(properties), np.nan)
    for i, text in enumerate(properties.to_numpy(dtype=object)):
        if isinstance(text, str) and "rating" in text:
            value = json.loads(text).get("rating")
            if isinstance(value, int | float):
                out[i] = float(value)
    return out


def rated_below(events: pd.DataFrame, min_rating: float | None) -> np.ndarray:
    """Rows that are reviews rated below ``min_rating`` (explicit negatives), shape ``(n,)``."""
    out = np.zeros(len(events), dtype=bool)
    if min_rating is None or "properties" not in events or events.empty:
        return out
    reviews = (events["event_type"] == EventType.REVIEW.value).to_numpy()
    if reviews.any():
        out[reviews] = _ratings(events.loc[reviews, "properties"]) < min_rating
    return out


def check_rating_scale(events: pd.DataFrame, source: str = "events") -> None:
    """Raise a :class:`~features.validation.DataContractError` naming the rows (1-based, in
    table order) of review events whose rating is outside :data:`RATING_SCALE`.

    >>> bad = pd.DataFrame({"event_type": ["review", "review"],
    ...     "properties": ['{"rating": 4}', '{"rating": 9}']})
    >>> check_rating_scale(bad)
    Traceback (most recent call last):
    ...
    features.validation.DataContractError: 1 problem(s) in the input data; nothing was loaded:
      - events: row 2, field 'properties': rating outside the declared scale 1..5 (got 9)
    """
    if "properties" not in events or events.empty:
        return
    reviews = np.flatnonzero((events["event_type"] == EventType.REVIEW.value).to_numpy())
    if not reviews.size:
        return
    rating = _ratings(events["properties"].iloc[reviews])
    low, high = RATING_SCALE
    outside = ~np.isnan(rating) & ((rating < low) | (rating > high))
    if outside.any():
        rows = tuple(int(r) + 1 for r in reviews[outside])
        shown = ", ".join(f"{v:g}" for v in rating[outside][:5])
        problem = Problem(
            source,
            "properties",
            f"rating outside the declared scale {low:g}..{high:g} (got {shown})",
            rows,
            len(rows),
        )
        raise DataContractError([problem])


def event_weights(
    events: pd.DataFrame, as_of: pd.Timestamp, weights: InteractionWeights
) -> np.ndarray:
    """Weight of each event row, shape ``(len(events),)``; 0 for events that name no product."""
    base = events["event_type"].map(weights.type_weights).astype(float).fillna(0.0).to_numpy()
    has_product = events["product_id"].notna().to_numpy()
    base = np.where(has_product, base, 0.0)
    reviews = (events["event_type"] == EventType.REVIEW.value).to_numpy()
    if reviews.any() and "properties" in events:
        rating = _ratings(events.loc[reviews, "properties"])
        scaled = np.where(np.isnan(rating), base[reviews], rating / _RATING_SCALE)
        if weights.min_rating is not None:
            scaled = np.where(rating < weights.min_rating, 0.0, scaled)
        base[reviews] = scaled
    if weights.half_life_days is not None:
        age_days = (as_of - events["timestamp"]).dt.total_seconds() / 86_400
        base = base * np.exp2(
            -np.clip(age_days.to_numpy(dtype=float), 0.0, None) / weights.half_life_days
        )
    return base


def interaction_frame(
    events: pd.DataFrame, as_of: pd.Timestamp, weights: InteractionWeights | None = None
) -> pd.DataFrame:
    """``(customer_id, product_id, weight)`` per pair, from events strictly before ``as_of``."""
    weights = weights or InteractionWeights()
    known = events[(events["timestamp"] < as_of) & events["product_id"].notna()]
    known = known[known["event_type"].isin(list(weights.type_weights))]
    w = event_weights(known, as_of, weights)
    frame = pd.DataFrame(
        {
            "customer_id": known["customer_id"].astype(str).to_numpy(),
            "product_id": known["product_id"].astype(str).to_numpy(),
            "weight": w,
        }
    )
    frame = frame[frame["weight"] > 0]
    pairs = frame.groupby(["customer_id", "product_id"], sort=True, as_index=False).agg(
        weight=("weight", "sum")
    )
    pairs["weight"] = pairs["weight"].clip(upper=weights.max_weight).round(12)
    return pairs


def owned_pairs(
    events: pd.DataFrame, as_of: pd.Timestamp, owned_types: tuple[str, ...] = OWNED_TYPES
) -> pd.DataFrame:
    """``(customer_id, product_id)`` pairs bought (or rated) strictly before ``as_of``."""
    known = events[
        (events["timestamp"] < as_of)
        & events["product_id"].notna()
        & events["event_type"].isin(list(owned_types))
    ]
    pairs = known[["customer_id", "product_id"]].astype(str).drop_duplicates()
    return pairs.reset_index(drop=True)
