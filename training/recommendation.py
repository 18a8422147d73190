"""What every product recommender shares: its training data, its answer, and top-k.

:class:`Recommender` is the one interface the hybrid model and the baselines
implement. Its public :meth:`Recommender.fit` and :meth:`Recommender.recommend`
do the shared work (catalogue, already-owned mask, batching, top-k); a
subclass fills ``_fit`` and ``score`` only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True)
class TrainingData:
    """What a recommender learns from, all known strictly before ``as_of``.

    ``interactions``: ``(customer_id, product_id, weight)`` one row per pair;
    ``customers`` and ``products``: contract tables (``products`` is the
    catalogue that can be recommended); ``owned``: ``(customer_id,
    product_id)`` pairs never to recommend again (already bought or rated);
    ``last_seen`` (optional): ``(customer_id, product_id, timestamp)`` of each pair's
    latest event, in the order each customer met their products
    (:func:`training.splits.last_seen`), for models that read the order.
    """

    interactions: pd.DataFrame
    customers: pd.DataFrame
    products: pd.DataFrame
    owned: pd.DataFrame
    as_of: pd.Timestamp
    last_seen: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        missing = {"customer_id", "product_id", "weight"} - set(self.interactions.columns)
        if missing:
            raise ValueError(
                f"interactions need columns customer_id, product_id, weight: {missing}"
            )
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be time-zone aware")


@dataclass(frozen=True)
class Recommendations:
    """Top-k per customer: ``product_ids`` and ``scores`` of shape ``(n_customers, k)``."""

    customer_ids: np.ndarray
    product_ids: np.ndarray
    scores: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """Long form: ``customer_id, rank (1 = best), product_id, score``."""
        n, k = self.product_ids.shape
        return pd.DataFrame(
            {
                "customer_id": np.repeat(self.customer_ids, k),
                "rank": np.tile(np.arange(1, k + 1), n),
                "product_id": self.product_ids.ravel(),
                "score": self.scores.ravel().astype(float),
            }
        )


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores per row, best first, shape ``(n, k)``.

    Ties are broken by the lower column index, so results are reproducible.

    >>> top_k(np.array([[0.1, 0.9, 0.5, 0.9]]), 3).tolist()
    [[1, 3, 2]]
    """
    n, m = scores.shape
    k = min(k, m)
    if k == 0:
        return np.empty((n, 0), dtype=np.intp)
    part = (
        np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


class Recommender(ABC):
    """A product recommender over a fixed catalogue.

    Subclasses implement ``_fit`` (learn from :class:`TrainingData`) and
    ``score`` (scores of every catalogue product for some customers).
    """

    name: str = "recommender"
    #: How the model was built (a :class:`training.recommender_families.FamilySpec`), if known.
    spec: object | None = None

    def __init__(self) -> None:
        self.catalogue: pd.Index = pd.Index([], dtype=object)
        self._owned_index: pd.Index = pd.Index([], dtype=object)
        self._owned: sp.csr_matrix = sp.csr_matrix((0, 0))

    def fit(self, data: TrainingData) -> Self:
        """Learn from ``data``; the catalogue is ``data.products``."""
        self.catalogue = pd.Index(data.products["product_id"].astype(str).to_numpy(), dtype=object)
        if not self.catalogue.is_unique:
            raise ValueError("products must have unique product_id values")
        owned = data.owned[data.owned["product_id"].astype(str).isin(self.catalogue)]
        self._owned_index = pd.Index(owned["customer_id"].astype(str).unique(), dtype=object)
        rows = self._owned_index.get_indexer(pd.Index(owned["customer_id"].astype(str)))
        cols = self.catalogue.get_indexer(pd.Index(owned["product_id"].astype(str)))
        self._owned = sp.csr_matrix(
            (np.ones(len(rows), dtype=bool), (rows, cols)),
            shape=(len(self._owned_index), len(self.catalogue)),
        )
        self._fit(data)
        return self

    @abstractmethod
    def _fit(self, data: TrainingData) -> None: ...

    @abstractmethod
    def score(
        self, customer_ids: Sequence[str], customers: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Scores of every catalogue product, shape ``(len(customer_ids), len(catalogue))``.

        ``customers`` (contract rows) describes customers unknown at fit time,
        for models that use features.
        """

    def recommend(
        self,
        customer_ids: Sequence[str],
        k: int = 10,
        *,
        exclude_owned: bool = True,
        customers: pd.DataFrame | None = None,
        batch_size: int = 4096,
    ) -> Recommendations:
        """Top-``k`` catalogue products per customer, already-owned products left out."""
        if k < 1:
            raise ValueError(f"k must be at least 1 (got {k})")
        if not len(self.catalogue):
            raise ValueError("the recommender is not fitted (empty catalogue)")
        ids = np.asarray([str(c) for c in customer_ids], dtype=object)
        k = min(k, len(self.catalogue))
        products = np.empty((len(ids), k), dtype=object)
        scores = np.empty((len(ids), k), dtype=np.float32)
        for lo in range(0, len(ids), batch_size):
            batch = ids[lo : lo + batch_size]
            s = np.asarray(self.score(list(batch), customers), dtype=np.float32)
            if exclude_owned:
                s = self._mask_owned(batch, s)
            best = top_k(s, k)
            products[lo : lo + len(batch)] = self.catalogue.to_numpy()[best]
            scores[lo : lo + len(batch)] = np.take_along_axis(s, best, axis=1)
        return Recommendations(ids, products, scores)

    def _mask_owned(self, customer_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        rows = self._owned_index.get_indexer(pd.Index(customer_ids, dtype=object))
        known = np.flatnonzero(rows >= 0)
        if known.size:
            sub = self._owned[rows[known]].tocoo()
            scores[known[sub.row], sub.col] = -np.inf
        return scores
