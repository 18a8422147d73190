"""The hybrid recommender on simulated data: cold start, exclusions, and quality vs ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from features.dataset import RetailDataset
from simulator import SimulatorConfig, simulate
from training.baselines import PopularityRecommender
from training.data import training_data
from training.recommendation import TrainingData
from training.recommender import HybridConfig, HybridRecommender

FAST = HybridConfig(epochs=10, no_components=16, num_threads=1)


@pytest.fixture(scope="module")
def simulated() -> tuple[RetailDataset, pd.DataFrame]:
    sim = simulate(SimulatorConfig(n_customers=600, days=45, seed=11, n_products=300))
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events), sim.truth.customers


@pytest.fixture(scope="module")
def train(simulated: tuple[RetailDataset, pd.DataFrame]) -> TrainingData:
    return training_data(simulated[0])


@pytest.fixture(scope="module")
def hybrid(train: TrainingData) -> HybridRecommender:
    return HybridRecommender(FAST).fit(train)


def test_already_bought_products_are_never_recommended(
    hybrid: HybridRecommender, train: TrainingData
) -> None:
    buyers = train.owned["customer_id"].unique()[:100]
    recs = hybrid.recommend(list(buyers), k=20).to_frame()
    pairs = set(zip(train.owned["customer_id"], train.owned["product_id"], strict=True))
    assert not any(
        (c, p) in pairs for c, p in zip(recs["customer_id"], recs["product_id"], strict=True)
    )
    # switched off, owned products can come back
    again = hybrid.recommend(list(buyers), k=300, exclude_owned=False).to_frame()
    assert any(
        (c, p) in pairs for c, p in zip(again["customer_id"], again["product_id"], strict=True)
    )


def test_cold_start_customers_get_recommendations_from_their_features(
    hybrid: HybridRecommender, train: TrainingData
) -> None:
    template = train.customers.iloc[:1]
    newcomers = pd.concat([template] * 2, ignore_index=True)
    newcomers["customer_id"] = ["NEW-1", "NEW-2"]
    newcomers["city"] = ["Paris", "New York"]
    newcomers["gender"] = ["female", "male"]
    newcomers["loyalty_tier"] = ["none", "platinum"]
    newcomers["birth_date"] = pd.to_datetime(["2004-06-01", "1950-06-01"])
    recs = hybrid.recommend(["NEW-1", "NEW-2"], k=10, customers=newcomers)
    assert recs.product_ids.shape == (2, 10)
    assert np.isfinite(recs.scores).all()
    # different features, different lists
    assert recs.product_ids[0].tolist() != recs.product_ids[1].tolist()
    bias_only = hybrid.recommend(["NEW-3"], k=10)  # unknown and undescribed: product prior only
    assert bias_only.product_ids.shape == (1, 10)


def test_cold_start_products_are_scored_from_their_features(train: TrainingData) -> None:
    products = train.products.copy()
    newcomers = products.iloc[:2].copy()
    newcomers["product_id"] = ["NEWP-1", "NEWP-2"]
    newcomers["category"] = [products["category"].iloc[0], products["category"].iloc[-1]]
    newcomers["price"] = [5.0, 500.0]
    data = TrainingData(
        train.interactions,
        train.customers,
        pd.concat([products, newcomers], ignore_index=True),
        train.owned,
        train.as_of,
    )
    model = HybridRecommender(FAST).fit(data)
    ids = train.interactions["customer_id"].unique()[:200].tolist()
    scores = model.score(ids)
    cols = model.catalogue.get_indexer(["NEWP-1", "NEWP-2"])
    assert np.isfinite(scores[:, cols]).all()
    # the two new products differ by features, so customers rank them differently
    assert not np.allclose(scores[:, cols[0]], scores[:, cols[1]])
    assert np.corrcoef(scores[:, cols[0]], scores[:, cols[1]])[0, 1] < 0.999


def test_batch_scores_equal_lightfm_predict(hybrid: HybridRecommender, train: TrainingData) -> None:
    ids = train.interactions["customer_id"].unique()[:5].tolist()
    fast = hybrid.score(ids)
    naive = hybrid.score_naive(ids)
    # LightFM's predict omits nothing but the user bias, which does not change rankings
    np.testing.assert_allclose(
        fast - fast.mean(axis=1, keepdims=True),
        naive - naive.mean(axis=1, keepdims=True),
        atol=1e-4,
    )


def test_hybrid_recommends_closer_to_true_taste_than_popularity(
    simulated: tuple[RetailDataset, pd.DataFrame], hybrid: HybridRecommender, train: TrainingData
) -> None:
    """Against ground truth: the true taste mass of the recommended categories is higher."""
    data, truth = simulated
    ids = train.interactions["customer_id"].unique().tolist()
    category = data.products.set_index("product_id")["category"]
    taste = truth.set_index("customer_id")[[c for c in truth.columns if c.startswith("taste_")]]

    def taste_mass(model) -> np.ndarray:  # type: ignore[no-untyped-def]
        recs = model.recommend(ids, k=10).to_frame()
        recs["taste"] = [
            taste.at[c, f"taste_{category[p]}"]
            for c, p in zip(recs["customer_id"], recs["product_id"], strict=True)
        ]
        return recs.groupby("customer_id", sort=True)["taste"].mean().to_numpy()

    hyb, pop = taste_mass(hybrid), taste_mass(PopularityRecommender().fit(train))
    # the margin is noisy on 600 customers x 45 days: over seeds 11-18 it ranged 0.023-0.062
    # before the simulator's marketing effects (this seed: 0.0502) and 0.002-0.071 with them
    # (this seed: 0.032); the rank test below is the claim
    assert hyb.mean() > pop.mean() + 0.02
    result = stats.wilcoxon(hyb, pop, alternative="greater")
    assert result.pvalue < 1e-6
