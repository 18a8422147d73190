"""Baseline recommenders the hybrid model must beat in the same run.

* :class:`PopularityRecommender`: the same list for everyone, products ranked
  by their summed (time-decayed) interaction weight;
* :class:`EASERecommender`: Steck's closed-form item-item model, ``B = I - P
  diag(1 / diag(P))`` with ``P = (X'X + lambda I)^-1``, a strong simple model;
* plain LightFM without features: :func:`training.recommender.plain_lightfm`.

>>> import pandas as pd
>>> inter = pd.DataFrame({"customer_id": ["a", "a", "b"], "product_id": ["x", "y", "x"],
...     "weight": [1.0, 1.0, 1.0]})
>>> products = pd.DataFrame({"product_id": ["x", "y", "z"]})
>>> data = TrainingData(inter, pd.DataFrame({"customer_id": ["a", "b"]}), products,
...     inter[["customer_id", "product_id"]].iloc[:0], pd.Timestamp("2026-01-01", tz="UTC"))
>>> PopularityRecommender().fit(data).recommend(["b"], k=2).product_ids.tolist()
[['x', 'y']]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.recommendation import Recommender, TrainingData

#: Weight of the popularity prior that breaks ties for customers EASE knows nothing about.
_TIE_BREAK = 1e-6


class PopularityRecommender(Recommender):
    """Everyone gets the most popular products (summed interaction weight)."""

    name = "popularity"

    def __init__(self) -> None:
        super().__init__()
        self.popularity = np.zeros(0, dtype=np.float32)

    def _fit(self, data: TrainingData) -> None:
        totals = data.interactions.groupby(data.interactions["product_id"].astype(str))[
            "weight"
        ].sum()
        self.popularity = totals.reindex(self.catalogue).fillna(0.0).to_numpy(np.float32)

    def score(
        self, customer_ids: Sequence[str], customers: pd.DataFrame | None = None
    ) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(customer_ids), len(self.popularity))).copy()


class EASERecommender(Recommender):
    """Embarrassingly Shallow Autoencoder (Steck, 2019) on the binary interaction matrix.

    ``l2`` is the ridge penalty lambda. Customers without training interactions
    get the popularity ranking.
    """

    name = "ease"

    def __init__(self, l2: float = 200.0, binary: bool = True) -> None:
        super().__init__()
        if l2 <= 0:
            raise ValueError(f"l2 must be positive (got {l2})")
        self.l2 = l2
        self.binary = binary
        self.user_index = pd.Index([], dtype=object)
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.history = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity = np.zeros(0, dtype=np.float32)

    def _fit(self, data: TrainingData) -> None:
        inter = data.interactions.assign(
            customer_id=data.interactions["customer_id"].astype(str),
            product_id=data.interactions["product_id"].astype(str),
        )
        inter = inter[inter["product_id"].isin(self.catalogue)]
        self.user_index = pd.Index(np.sort(inter["customer_id"].unique()), dtype=object)
        rows = self.user_index.get_indexer(pd.Index(inter["customer_id"]))
        cols = self.catalogue.get_indexer(pd.Index(inter["product_id"]))
        values = np.ones(len(rows)) if self.binary else inter["weight"].to_numpy(float)
        x = sp.csr_matrix((values, (rows, cols)), shape=(len(self.user_index), len(self.catalogue)))
        self.history = x.astype(np.float32)
        self.weights = ease_weights(x, self.l2).astype(np.float32)
        pop = np.asarray(x.sum(axis=0)).ravel()
        self.popularity = (pop / max(pop.max(), 1.0)).astype(np.float32)

    def score(
        self, customer_ids: Sequence[str], customers: pd.DataFrame | None = None
    ) -> np.ndarray:
        rows = self.user_index.get_indexer(pd.Index([str(c) for c in customer_ids], dtype=object))
        out = np.zeros((len(rows), len(self.catalogue)), dtype=np.float32)
        known = rows >= 0
        if known.any():
            out[known] = self.history[rows[known]] @ self.weights
        return out + _TIE_BREAK * self.popularity[None, :]


def ease_weights(x: sp.spmatrix, l2: float, dropout: float = 0.0) -> np.ndarray:
    """EASE item-item weights with a zero diagonal, shape ``(n_items, n_items)``.

    ``dropout`` > 0 is the emphasised denoising variant (EDLAE, Steck 2020): each
    product's penalty grows by ``dropout / (1 - dropout)`` times its own Gram diagonal,
    so popular products are regularised more.

    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]]))
    >>> b = ease_weights(x, 0.5)
    >>> bool(b[0, 1] > 0), abs(float(b[0, 2])), float(np.diag(b).max())
    (True, 0.0, 0.0)
    """
    gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += l2 + dropout / (1.0 - dropout) * np.diag(gram)
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b
