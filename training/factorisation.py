"""Matrix factorisation from ``implicit``: ALS (Hu, Koren and Volinsky, 2008) and BPR.

:class:`ImplicitRecommender` fits ``implicit``'s CPU models on the weighted
customer x product matrix (ALS reads a weight as confidence ``1 + alpha * w``;
BPR only whether a pair is positive) and keeps just the learned factors, so
the registered model scores with one matrix product and unpickles without
``implicit``. Customers without training interactions get the popularity
ranking, as with EASE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.recommendation import Recommender, TrainingData

#: Weight of the popularity prior that breaks ties (and ranks unknown customers).
_TIE_BREAK = 1e-6
ALGORITHMS = ("als", "bpr")


class ImplicitRecommender(Recommender):
    """ALS or BPR from ``implicit`` behind the :class:`Recommender` interface."""

    def __init__(
        self,
        algorithm: str = "als",
        factors: int = 64,
        regularization: float = 0.05,
        iterations: int = 15,
        alpha: float = 10.0,
        learning_rate: float = 0.01,
        random_state: int = 0,
    ) -> None:
        super().__init__()
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS} (got {algorithm!r})")
        if factors < 1 or iterations < 1:
            raise ValueError(f"factors and iterations must be at least 1 ({factors}, {iterations})")
        self.name = algorithm
        self.algorithm = algorithm
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.user_index = pd.Index([], dtype=object)
        self.user_factors = np.zeros((0, 0), dtype=np.float32)
        self.item_factors = np.zeros((0, 0), dtype=np.float32)
        self.popularity = np.zeros(0, dtype=np.float32)

    def params(self) -> dict[str, object]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "alpha": self.alpha,
            "learning_rate": self.learning_rate,
        }

    def _fit(self, data: TrainingData) -> None:
        from threadpoolctl import threadpool_limits

        inter = data.interactions.assign(
            customer_id=data.interactions["customer_id"].astype(str),
            product_id=data.interactions["product_id"].astype(str),
        )
        inter = inter[inter["product_id"].isin(self.catalogue)]
        if inter.empty:
            raise ValueError(f"{self.algorithm}: no interactions with catalogue products to learn")
        self.user_index = pd.Index(np.sort(inter["customer_id"].unique()), dtype=object)
        rows = self.user_index.get_indexer(pd.Index(inter["customer_id"]))
        cols = self.catalogue.get_indexer(pd.Index(inter["product_id"]))
        weight = inter["weight"].to_numpy(np.float32)
        # ALS reads a value as confidence; BPR only whether the pair is positive
        values = self.alpha * weight if self.algorithm == "als" else np.ones_like(weight)
        shape = (len(self.user_index), len(self.catalogue))
        matrix = sp.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float32)
        with threadpool_limits(1, "blas"):
            model = self._model()
            model.fit(matrix, show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        pop = np.asarray(matrix.astype(bool).sum(axis=0), dtype=np.float32).ravel()
        self.popularity = pop / max(float(pop.max()), 1.0)

    def _model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        if self.algorithm == "als":
            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                iterations=self.iterations,
                num_threads=1,
                random_state=self.random_state,
            )
        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=1,
            random_state=self.random_state,
        )

    def score(
        self, customer_ids: Sequence[str], customers: pd.DataFrame | None = None
    ) -> np.ndarray:
        rows = self.user_index.get_indexer(pd.Index([str(c) for c in customer_ids], dtype=object))
        out = np.zeros((len(rows), len(self.catalogue)), dtype=np.float32)
        known = rows >= 0
        if known.any():
            out[known] = self.user_factors[rows[known]] @ self.item_factors.T
        return out + _TIE_BREAK * self.popularity[None, :]
