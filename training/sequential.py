"""Order-aware EASE: item-item weights read through each customer's recent products.

EASE (:class:`~training.baselines.EASERecommender`) scores a customer's history
as an unordered set; a per-customer temporal test asks what comes *next*. The
:class:`SequentialEASERecommender` keeps EASE's closed form and adds what the
order says, in the manner of SLIST (Choi et al., 2021):

* **recency**: the customer's products weigh ``recency ** r`` in their scoring
  row, ``r`` counting from the most recent (0) back;
* **transitions**: a second item-item matrix of what followed each product in
  customers' sequences (up to ``window`` steps later, each step worth
  ``window_decay`` less, shrunk by ``shrinkage``), mixed in with weight
  ``transitions``;
* **seen products**: a product the customer owns but did not like (a rating
  below the relevance threshold) still says what they watch, at weight
  ``seen_weight`` in the input (never as a positive, never recommended);
* **dropout** regularisation of the item-item weights (Steck's EDLAE, 2020):
  the ridge penalty grows with each product's popularity.

The order is read from :attr:`~training.recommendation.TrainingData.last_seen`;
without it the model is EASE with dropout and seen products.

>>> inter = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "b", "c"],
...     "product_id": ["x", "y", "x", "y", "z", "x"], "weight": 1.0})
>>> data = TrainingData(inter, pd.DataFrame({"customer_id": ["a", "b", "c"]}),
...     pd.DataFrame({"product_id": ["x", "y", "z"]}), inter[["customer_id", "product_id"]],
...     pd.Timestamp("2026-01-01", tz="UTC"))
>>> SequentialEASERecommender(l2=1.0).fit(data).recommend(["c"], k=1).product_ids.tolist()
[['y']]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.baselines import EASERecommender, ease_weights
from training.recommendation import TrainingData


@dataclass(frozen=True)
class SequentialSettings:
    """The settings of :class:`SequentialEASERecommender` (defaults chosen on MovieLens-100k's
    validation split, never its test)."""

    l2: float = 250.0
    dropout: float = 0.25
    recency: float = 0.9
    transitions: float = 0.2
    window: int = 10
    window_decay: float = 0.9
    shrinkage: float = 10.0
    seen_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.l2 <= 0 or self.shrinkage < 0:
            raise ValueError(
                f"l2 must be positive and shrinkage non-negative ({self.l2}, {self.shrinkage})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout})")
        for name in ("recency", "transitions", "window_decay", "seen_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1] (got {getattr(self, name)})")
        if self.window < 1:
            raise ValueError(f"window must be at least 1 (got {self.window})")


class SequentialEASERecommender(EASERecommender):
    """EASE over recency-weighted histories, mixed with item-to-next-item transitions
    (keyword arguments: the fields of :class:`SequentialSettings`)."""

    name = "sequential"

    def __init__(self, **settings: Any) -> None:
        self.settings = SequentialSettings(**settings)
        super().__init__(l2=self.settings.l2)

    def params(self) -> dict[str, object]:
        return asdict(self.settings)

    def _fit(self, data: TrainingData) -> None:
        cfg = self.settings
        pairs = _ordered_pairs(data)
        pairs = pairs[pairs["product_id"].isin(self.catalogue)]
        if pairs.empty:
            raise ValueError("sequential: no interactions with catalogue products to learn")
        self.user_index = pd.Index(np.sort(pairs["customer_id"].unique()), dtype=object)
        rows = self.user_index.get_indexer(pd.Index(pairs["customer_id"]))
        cols = self.catalogue.get_indexer(pd.Index(pairs["product_id"]))
        value = np.where(pairs["positive"].to_numpy(), 1.0, cfg.seen_weight)
        shape = (len(self.user_index), len(self.catalogue))
        x = sp.csr_matrix((value, (rows, cols)), shape=shape)
        weights = ease_weights(x, cfg.l2, cfg.dropout)
        if cfg.transitions > 0:
            n_items = len(self.catalogue)
            follow = transition_weights(
                rows, cols, value, n_items, cfg.window, cfg.window_decay, cfg.shrinkage
            )
            scale = np.abs(weights).sum() / max(float(np.abs(follow).sum()), 1e-12)
            weights = (1.0 - cfg.transitions) * weights + cfg.transitions * scale * follow
        self.weights = weights.astype(np.float32)
        scoring = value * np.power(cfg.recency, pairs["from_end"].to_numpy())
        self.history = sp.csr_matrix((scoring, (rows, cols)), shape=shape, dtype=np.float32)
        pop = np.asarray((x > 0).sum(axis=0), dtype=np.float32).ravel()
        self.popularity = pop / max(float(pop.max()), 1.0)


def _ordered_pairs(data: TrainingData) -> pd.DataFrame:
    """``(customer_id, product_id, positive, from_end)``: every liked or owned pair, each
    customer's oldest first (by :attr:`TrainingData.last_seen`, ties by product), with how
    many of the customer's pairs are strictly more recent (0 for all when the order is
    unknown: products met at the same moment weigh the same)."""
    liked = data.interactions[["customer_id", "product_id"]].astype(str).assign(positive=True)
    seen = data.owned[["customer_id", "product_id"]].astype(str).assign(positive=False)
    pairs = pd.concat([liked, seen], ignore_index=True).drop_duplicates(
        ["customer_id", "product_id"], keep="first"
    )
    if data.last_seen is None or data.last_seen.empty:
        pairs = pairs.sort_values(["customer_id", "product_id"], kind="stable")
        return pairs.assign(from_end=0).reset_index(drop=True)
    order = data.last_seen[["customer_id", "product_id"]].astype(str)
    order = order.assign(_at=data.last_seen["timestamp"].to_numpy())
    pairs = pairs.merge(order, on=["customer_id", "product_id"], how="left")
    pairs = pairs.sort_values(["customer_id", "_at", "product_id"], kind="stable")
    later = pairs.groupby("customer_id", sort=False)["_at"]
    from_end = later.transform("size") - later.rank(method="max").fillna(0)
    return (
        pairs.assign(from_end=from_end.astype(np.int64)).drop(columns="_at").reset_index(drop=True)
    )


def transition_weights(
    rows: np.ndarray,
    cols: np.ndarray,
    value: np.ndarray,
    n_items: int,
    window: int,
    decay: float,
    shrinkage: float,
) -> np.ndarray:
    """What follows each product in customers' sequences, shape ``(n_items, n_items)``.

    ``rows``/``cols``/``value`` are the sequences (customer, product, weight), each
    customer's products contiguous and oldest first. Entry ``(i, j)`` sums, over every
    time ``j`` came ``d <= window`` steps after ``i``, ``decay ** (d - 1)`` times ``j``'s
    weight, divided by ``i``'s count plus ``shrinkage``; the diagonal is zero.

    >>> t = transition_weights(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]),
    ...                        np.ones(4), 2, window=1, decay=1.0, shrinkage=0.0)
    >>> t.tolist()
    [[0.0, 1.0], [0.0, 0.0]]
    """
    follow = np.zeros((n_items, n_items), dtype=np.float64)
    for step in range(1, min(window, len(rows) - 1) + 1):
        same = rows[step:] == rows[:-step]
        np.add.at(
            follow,
            (cols[:-step][same], cols[step:][same]),
            decay ** (step - 1) * value[step:][same],
        )
    counts = np.bincount(cols, minlength=n_items).astype(np.float64)
    follow /= np.maximum(counts + shrinkage, 1e-12)[:, None]
    np.fill_diagonal(follow, 0.0)
    return follow
