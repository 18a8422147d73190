"""The recommenders side by side: gain curves and scoring speed.

(The families are compared on accuracy by :func:`training.selection.select_recommender`.)
:func:`recall_curves` draws their gain curves; :func:`scoring_throughput` times
top-k by matrix products against one ``predict`` call per customer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from training.evaluation import RankingTask
from training.metrics import recall_at_k
from training.recommendation import Recommender
from training.recommender import HybridRecommender

Report = Callable[[str], None]


def recall_curves(
    models: dict[str, Recommender], task: RankingTask, k_max: int = 20
) -> dict[str, list[float]]:
    """Recall@k for k = 1..k_max per model on the task's warm customers (a gain curve)."""
    ids = sorted(task.warm)
    relevant = [task.warm[c] for c in ids]
    out = {}
    for name, model in models.items():
        recs = model.recommend(ids, k_max).product_ids.tolist()
        out[name] = [recall_at_k(recs, relevant, k) for k in range(1, k_max + 1)]
    return out


def scoring_throughput(
    model: HybridRecommender, customer_ids: Sequence[str], k: int = 10, naive_sample: int = 200
) -> dict[str, float]:
    """Customers per second for top-k: matrix products vs one ``predict`` call per customer."""
    ids = list(customer_ids)
    started = time.perf_counter()
    model.recommend(ids, k)
    fast = len(ids) / (time.perf_counter() - started)
    sample = ids[:naive_sample]
    started = time.perf_counter()
    scores = model.score_naive(sample)
    np.argsort(-scores, axis=1)[:, :k]
    naive = len(sample) / (time.perf_counter() - started)
    return {"matrix_customers_per_s": fast, "naive_customers_per_s": naive, "speedup": fast / naive}
