"""Light hyper-parameter tuning on a validation split (never on the test window).

The validation task cuts the *training* period once more: models are fitted
on what came before the validation cut and judged on the weeks between it and
the test cut. Each family gets a small grid and the same budget; LightFM
models also pick their number of epochs from checkpoints every few epochs.
:func:`tune_recommenders` tunes them all for one test cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from features.dataset import RetailDataset
from training.baselines import EASERecommender
from training.evaluation import RankingTask, evaluate, ranking_task
from training.interactions import InteractionWeights
from training.recommender import HybridConfig, HybridRecommender, plain_lightfm
from training.splits import time_cut

Report = Callable[[str], None]

#: EASE ridge penalties tried.
EASE_L2_GRID: tuple[float, ...] = (50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0)
#: Hybrid variants tried (on top of the base config); epochs come from checkpoints.
HYBRID_GRID: tuple[dict[str, object], ...] = (
    {"learning_rate": 0.05},
    {"learning_rate": 0.1},
    {"learning_rate": 0.05, "item_identity_weight": 3.0, "user_identity_weight": 3.0},
)
PLAIN_GRID: tuple[dict[str, object], ...] = ({"learning_rate": 0.05}, {"learning_rate": 0.1})
MAX_EPOCHS = 50
EPOCH_STEP = 10


@dataclass(frozen=True)
class Tuned:
    """The chosen settings and their validation NDCG."""

    params: dict[str, object]
    validation_ndcg: float


def tune_ease(task: RankingTask, grid: Sequence[float] = EASE_L2_GRID) -> Tuned:
    """The EASE ridge penalty with the best validation NDCG."""
    best = Tuned({"l2": grid[0]}, -1.0)
    for l2 in grid:
        ndcg = evaluate(EASERecommender(l2).fit(task.train), task).ndcg
        if ndcg > best.validation_ndcg:
            best = Tuned({"l2": l2}, ndcg)
    return best


def tune_lightfm(
    task: RankingTask,
    base: HybridConfig,
    grid: Sequence[dict[str, object]],
    plain: bool,
    max_epochs: int = MAX_EPOCHS,
    step: int = EPOCH_STEP,
    report: Report | None = None,
) -> tuple[HybridConfig, float]:
    """The LightFM config (grid variant and epochs) with the best validation NDCG."""
    best_cfg, best_ndcg = base, -1.0
    for variant in grid:
        cfg = replace(base, epochs=max_epochs, **variant)  # type: ignore[arg-type]
        model = plain_lightfm(cfg) if plain else HybridRecommender(cfg)
        scores: dict[int, float] = {}

        def checkpoint(
            epochs: int, m: HybridRecommender, scores: dict[int, float] = scores
        ) -> None:
            scores[epochs] = evaluate(m, task).ndcg

        model.fit_with_callback(task.train, checkpoint, every=step)
        epochs, ndcg = max(scores.items(), key=lambda kv: (kv[1], -kv[0]))
        if report:
            report(f"{model.name} {variant or 'base'}: best NDCG {ndcg:.4f} at {epochs} epochs")
        if ndcg > best_ndcg:
            best_cfg, best_ndcg = replace(model.config, epochs=epochs), ndcg
    return best_cfg, best_ndcg


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
