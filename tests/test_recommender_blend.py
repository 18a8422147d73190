"""The blend of families: standardised scores, weights chosen by greedy selection on
validation, judged on customers the weights were not chosen on."""

from __future__ import annotations

import numpy as np

from training.recommender_blend import (
    crossfit_ndcg,
    ensemble_weights,
    ndcg_of_scores,
    standardise,
)


def _complementary(n: int = 400, m: int = 60, seed: int = 0):
    """Two noisy components, each of which knows the relevant product of half the customers
    (``a`` the even ones, ``b`` the odd ones), and a third that knows nothing."""
    rng = np.random.default_rng(seed)
    relevant = np.zeros((n, m), dtype=bool)
    relevant[np.arange(n), rng.integers(0, m, n)] = True
    a, b, noise = (rng.normal(size=(n, m)) for _ in range(3))
    even = np.arange(n) % 2 == 0
    a[even] += 4.0 * relevant[even]
    b[~even] += 4.0 * relevant[~even]
    # scales that differ by orders of magnitude: standardising makes them comparable
    return {"a": 1000.0 * a, "b": 0.001 * b, "noise": noise}, relevant


def test_the_blend_beats_each_part_when_they_know_different_customers() -> None:
    scores, relevant = _complementary()
    weights = ensemble_weights(scores, relevant, k=10)
    assert set(weights) == {"a", "b"} and abs(sum(weights.values()) - 1.0) < 1e-9
    assert 0.3 <= weights["a"] <= 0.7
    single = max(ndcg_of_scores(standardise(s), relevant, 10) for s in scores.values())
    blended = crossfit_ndcg(scores, relevant, k=10)
    assert blended > single + 0.2, (blended, single)


def test_a_component_that_only_adds_noise_gets_no_weight() -> None:
    scores, relevant = _complementary(seed=1)
    only_a = {"a": scores["a"], "noise": scores["noise"]}
    assert ensemble_weights(only_a, relevant, k=10) == {"a": 1.0}


def test_masked_products_stay_out_and_ndcg_matches_the_list_metric() -> None:
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    scores[0, 0] = -np.inf  # owned: never recommended
    relevant = np.array([[True, False, True], [False, True, False]])
    z = standardise(scores)
    assert z[0, 0] == -np.inf and np.isfinite(z[1]).all()
    # customer 0: list [1, 2], relevant {0, 2} -> hit at rank 2; customer 1: [2, 1] -> rank 2
    d = 1 / np.log2(3)
    expected = ((d / (1 + d)) + d) / 2
    assert abs(ndcg_of_scores(z, relevant, 2) - expected) < 1e-9
