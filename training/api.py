"""The Python API that ``nba train``, ``nba evaluate`` and ``nba recommend`` mirror.

>>> # train, register and promote the recommender on any contract data set:
>>> # data = load_dataset("data/retailer")
>>> # result = train_recommender(data, registry=ModelRegistry.local("data"))
>>> # registry.promote(RECOMMENDER_NAME, result.version)
>>> # recommend(registry.load_model(RECOMMENDER_NAME), ["C000001"], k=10)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import pandas as pd

from features.dataset import RetailDataset
from training.baselines import EASERecommender, PopularityRecommender
from training.evaluation import Comparison, ModelResult, RankingTask, evaluate, ranking_task
from training.interactions import InteractionWeights, interaction_frame, owned_pairs
from training.metrics import recall_at_k
from training.recommendation import Recommender, TrainingData
from training.recommender import HybridConfig, HybridRecommender, plain_lightfm
from training.registry import ModelRegistry, ModelVersionInfo, data_fingerprint
from training.splits import launched_before, time_cut
from training.tuning import HYBRID_GRID, PLAIN_GRID, tune_ease, tune_lightfm

Report = Callable[[str], None]
RECOMMENDER_NAME = "nba-recommender"
EXPERIMENT = "nba-training"


def default_weights(data: RetailDataset) -> InteractionWeights:
    """Time decay for retail data; none for rating data sets (no purchases, e.g. MovieLens)."""
    has_purchases = bool((data.events["event_type"] == "purchase").any())
    return InteractionWeights() if has_purchases else InteractionWeights(half_life_days=None)


def training_data(
    data: RetailDataset,
    as_of: pd.Timestamp | None = None,
    weights: InteractionWeights | None = None,
) -> TrainingData:
    """Everything known before ``as_of`` (default: just after the last event) as training data."""
    as_of = as_of or (data.events["timestamp"].max() + pd.Timedelta(seconds=1))
    weights = weights or default_weights(data)
    return TrainingData(
        interactions=interaction_frame(data.events, as_of, weights),
        customers=data.customers,
        products=launched_before(data.products, as_of),
        owned=owned_pairs(data.events, as_of),
        as_of=as_of,
    )


@dataclass(frozen=True)
class TunedSettings:
    """What tuning on the validation split chose for each tunable model."""

    hybrid: HybridConfig
    plain: HybridConfig
    ease_l2: float


def tune_recommenders(
    data: RetailDataset,
    test_cut: pd.Timestamp,
    *,
    weights: InteractionWeights,
    base: HybridConfig,
    test_fraction: float = 0.2,
    report: Report | None = None,
) -> TunedSettings:
    """Tune EASE, plain LightFM and the hybrid on a validation cut inside the training period."""
    before = data.events[data.events["timestamp"] < test_cut]
    val_cut = time_cut(before, test_fraction)
    val = ranking_task(data, val_cut, test_cut, weights=weights, name="validation")
    ease = tune_ease(val)
    if report:
        report(f"ease: l2={ease.params['l2']} (validation NDCG {ease.validation_ndcg:.4f})")
    plain, _ = tune_lightfm(val, base, PLAIN_GRID, plain=True, report=report)
    hybrid, _ = tune_lightfm(val, base, HYBRID_GRID, plain=False, report=report)
    return TunedSettings(hybrid, plain, float(ease.params["l2"]))  # type: ignore[arg-type]


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


@dataclass(frozen=True)
class RecommenderRun:
    """A trained, registered recommender and the evaluation that came with it."""

    model: HybridRecommender
    comparison: Comparison | None
    version: ModelVersionInfo | None
    fingerprint: str


def train_recommender(
    data: RetailDataset,
    *,
    registry: ModelRegistry | None = None,
    model_name: str = RECOMMENDER_NAME,
    dataset_name: str = "data",
    config: HybridConfig | None = None,
    evaluate_first: bool = True,
    tune: bool = False,
    report: Report | None = None,
) -> RecommenderRun:
    """Evaluate against the baselines on a time split, refit on all data, log and register.

    The registered model is fitted on every event (the evaluation models are
    fitted before the test cut); its parameters are those evaluated.
    """
    from training import plots

    config = config or HybridConfig()
    fingerprint = data_fingerprint(
        {"customers": data.customers, "products": data.products, "events": data.events}
    )
    comparison = None
    metrics: dict[str, float] = {}
    figures = {}
    if evaluate_first:
        comparison, models, task = compare_recommenders(
            data, dataset_name, tune=tune, base=config, report=report
        )
        config = replace(config, **cast(dict[str, Any], _config_of(models["hybrid"])))
        for r in comparison.results:
            metrics.update(r.warm.as_dict(prefix=f"{r.model}_"))
            if r.cold is not None:
                metrics[f"{r.model}_cold_ndcg_at_{r.cold.k}"] = r.cold.ndcg
        figures["plots/ndcg_by_model.png"] = plots.model_comparison(
            {r.model: r.warm.ndcg for r in comparison.results}, "NDCG@10", dataset_name
        )
        figures["plots/recall_gain_curve.png"] = plots.gain_curves(
            recall_curves(models, task), "recall@k", f"{dataset_name}: gain curves"
        )
    started = time.perf_counter()
    model = HybridRecommender(config).fit(training_data(data))
    model.release_training_state()
    metrics["train_seconds"] = time.perf_counter() - started
    version = None
    if registry is not None:
        example = pd.DataFrame({"customer_id": data.customers["customer_id"].astype(str).head(3)})
        version = registry.log_model_run(
            experiment=EXPERIMENT,
            model_name=model_name,
            model=model,
            params={**config.to_params(), "dataset": dataset_name},
            metrics=metrics,
            fingerprint=fingerprint,
            figures=figures,
            texts={"evaluation.md": comparison.markdown()} if comparison else None,
            input_example=example,
            run_name=f"recommender-{dataset_name}",
        )
    return RecommenderRun(model, comparison, version, fingerprint)


def _config_of(model: Recommender) -> dict[str, object]:
    assert isinstance(model, HybridRecommender)
    return {k: getattr(model.config, k) for k in HybridConfig.__dataclass_fields__}


def recommend(
    model: Recommender,
    customer_ids: Sequence[str],
    k: int = 10,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Top-``k`` per customer as a long frame (``customer_id, rank, product_id, score``)."""
    return model.recommend(list(customer_ids), k, customers=customers).to_frame()


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
