"""Baselines: EASE on a toy with one right answer, popularity, the shared top-k contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.baselines import EASERecommender, PopularityRecommender
from training.recommendation import TrainingData, top_k
from training.recommender import HybridConfig, HybridRecommender, plain_lightfm

AS_OF = pd.Timestamp("2026-01-01", tz="UTC")


def checkerboard(n_users: int = 40, n_items: int = 20) -> TrainingData:
    """Two blocks of users and items; each user misses exactly one item of their block."""
    rows = []
    half_u, half_i = n_users // 2, n_items // 2
    for u in range(n_users):
        block = range(0, half_i) if u < half_u else range(half_i, n_items)
        missing = list(block)[u % half_i]
        rows += [(f"u{u}", f"i{i}", 1.0) for i in block if i != missing]
    inter = pd.DataFrame(rows, columns=["customer_id", "product_id", "weight"])
    products = pd.DataFrame(
        {
            "product_id": [f"i{i}" for i in range(n_items)],
            "category": ["a" if i < half_i else "b" for i in range(n_items)],
            "price": 1.0,
            "launch_date": pd.Timestamp("2020-01-01"),
        }
    )
    customers = pd.DataFrame({"customer_id": [f"u{u}" for u in range(n_users)]})
    owned = inter[["customer_id", "product_id"]]
    return TrainingData(inter, customers, products, owned, AS_OF)


def _missing_item(u: int, n_users: int = 40, n_items: int = 20) -> str:
    half_i = n_items // 2
    block = range(0, half_i) if u < n_users // 2 else range(half_i, n_items)
    return f"i{list(block)[u % half_i]}"


def test_ease_finds_the_one_missing_item_for_every_user() -> None:
    data = checkerboard()
    recs = EASERecommender(l2=1.0).fit(data).recommend([f"u{u}" for u in range(40)], k=1)
    assert recs.product_ids[:, 0].tolist() == [_missing_item(u) for u in range(40)]


@pytest.mark.parametrize(
    "make",
    [
        PopularityRecommender,
        lambda: EASERecommender(l2=10.0),
        lambda: plain_lightfm(HybridConfig(epochs=5, no_components=8)),
        lambda: HybridRecommender(HybridConfig(epochs=5, no_components=8)),
    ],
)
def test_every_recommender_excludes_owned_items_and_ranks_best_first(make) -> None:  # type: ignore[no-untyped-def]
    data = checkerboard()
    model = make().fit(data)
    ids = [f"u{u}" for u in range(40)]
    recs = model.recommend(ids, k=5)
    owned = set(zip(data.owned["customer_id"], data.owned["product_id"], strict=True))
    for cid, row in zip(recs.customer_ids, recs.product_ids, strict=True):
        assert not any((cid, p) in owned for p in row)
        assert len(set(row)) == len(row)
    assert (np.diff(recs.scores, axis=1) <= 1e-6).all()
    # an unknown customer still gets a full list
    assert model.recommend(["stranger"], k=3).product_ids.shape == (1, 3)


def test_top_k_breaks_ties_by_position() -> None:
    assert top_k(np.array([[1.0, 1.0, 1.0]]), 2).tolist() == [[0, 1]]
    assert top_k(np.array([[3.0, 1.0], [0.0, 2.0]]), 5).tolist() == [[0, 1], [1, 0]]


def test_popularity_ranks_by_summed_weight() -> None:
    inter = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "product_id": ["x", "y", "y"], "weight": [2.5, 1.0, 1.0]}
    )
    data = TrainingData(
        inter,
        pd.DataFrame({"customer_id": ["a", "b", "c"]}),
        pd.DataFrame({"product_id": ["x", "y", "z"]}),
        inter[["customer_id", "product_id"]].iloc[:0],
        AS_OF,
    )
    recs = PopularityRecommender().fit(data).recommend(["d"], k=3)
    assert recs.product_ids.tolist() == [["x", "y", "z"]]
