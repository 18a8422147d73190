"""The recommender against its baselines, on quality and on speed.

:func:`compare_recommenders` fits the hybrid LightFM model, popularity, EASE
and plain LightFM on one time split (tuned first on a validation cut inside
the training period, when asked) and measures them on the test window in the
same run; :func:`recall_curves` draws their gain curves;
:func:`scoring_throughput` times top-k by matrix products against one
``predict`` call per customer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from features.dataset import RetailDataset
from training.baselines import EASERecommender, PopularityRecommender
from training.data import default_weights
from training.evaluation import Comparison, ModelResult, RankingTask, evaluate, ranking_task
from training.interactions import InteractionWeights
from training.metrics import recall_at_k
from training.recommendation import Recommender
from training.recommender import HybridConfig, HybridRecommender, plain_lightfm
from training.splits import time_cut
from training.tuning import TunedSettings, tune_recommenders

Report = Callable[[str], None]


def _timed_fit(model: Recommender, task: RankingTask) -> float:
    started = time.perf_counter()
    model.fit(task.train)
    return time.perf_counter() - started


def compare_recommenders(
    data: RetailDataset,
    dataset_name: str,
    *,
    test_fraction: float = 0.2,
    k: int = 10,
    tune: bool = True,
    base: HybridConfig | None = None,
    weights: InteractionWeights | None = None,
    report: Report | None = None,
) -> tuple[Comparison, dict[str, Recommender], RankingTask]:
    """Hybrid vs popularity, EASE and plain LightFM on one time split, in the same run.

    Hyper-parameters are tuned on a validation cut before the test cut (when
    ``tune``); the test window is used once, for the final numbers.
    """
    base = base or HybridConfig()
    weights = weights or default_weights(data)
    cut = time_cut(data.events, test_fraction)
    if tune:
        settings = tune_recommenders(
            data, cut, weights=weights, base=base, test_fraction=test_fraction, report=report
        )
    else:
        settings = TunedSettings(base, base, 250.0)
    task = ranking_task(data, cut, weights=weights, name=dataset_name)
    models: dict[str, Recommender] = {
        "popularity": PopularityRecommender(),
        "ease": EASERecommender(settings.ease_l2),
        "lightfm": plain_lightfm(settings.plain),
        "hybrid": HybridRecommender(settings.hybrid),
    }
    params: dict[str, dict[str, object]] = {
        "popularity": {},
        "ease": {"l2": settings.ease_l2},
        "lightfm": _lightfm_params(settings.plain),
        "hybrid": _lightfm_params(settings.hybrid),
    }
    results = []
    for name, model in models.items():
        seconds = _timed_fit(model, task)
        warm = evaluate(model, task, k)
        cold = evaluate(model, task, k, cold=True) if task.cold else None
        results.append(ModelResult(name, params[name], warm, cold, seconds))
        if report:
            report(f"{dataset_name} {name}: NDCG@{k} {warm.ndcg:.4f} ({seconds:.1f} s)")
    return Comparison(dataset_name, cut, results), models, task


def _lightfm_params(cfg: HybridConfig) -> dict[str, object]:
    keys = (
        "no_components",
        "epochs",
        "learning_rate",
        "behaviour_features",
        "user_identity_weight",
        "item_identity_weight",
    )
    return {key: getattr(cfg, key) for key in keys}


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
