"""The gradient-boosted meta-learners recover a known heterogeneous effect on randomised data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from training.selection import CHAMPION_ROW, promotion_verdict
from training.uplift_learners import (
    LEARNERS,
    BoostingConfig,
    ProportionalLearner,
    UpliftLearner,
)

N = 6000
SMALL = BoostingConfig(n_estimators=60, min_child_samples=50, learning_rate=0.1)


def _trial(seed: int, proportional: bool) -> tuple[np.ndarray, ...]:
    """A randomised trial (30 % treated) whose true effect grows with x0 (additive) or
    with the baseline rate x intensity x2 (proportional)."""
    rng = np.random.default_rng(seed)
    x = rng.random((N, 3))
    t = rng.random(N) < 0.3
    base = 0.05 + 0.3 * x[:, 1]
    tau = base * 2.0 * x[:, 2] if proportional else 0.25 * (x[:, 0] > 0.5) * x[:, 0]
    y = (rng.random(N) < base + t * tau).astype(float)
    return x, t, y, np.full(N, 0.3), tau


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_meta_learners_rank_a_known_effect(name: str) -> None:
    x, t, y, e, tau = _trial(1, proportional=False)
    learner = LEARNERS[name](SMALL).fit(x, t, y, e)
    effect = learner.effect(x)
    assert effect.shape == (N,)
    assert spearmanr(effect, tau).statistic > 0.5
    # those with the largest true effect get the largest estimated effect
    top = np.argsort(-effect)[: N // 3]
    assert tau[top].mean() > 1.6 * tau.mean()  # the best possible: 2.2x
    p = learner.outcome(x)
    assert ((p >= 0) & (p <= 1)).all()


def test_the_proportional_learner_finds_the_relative_lift() -> None:
    x, t, y, e, tau = _trial(2, proportional=True)
    learner = ProportionalLearner(intensity_column=2, config=SMALL).fit(x, t, y, e)
    assert 1.2 < learner.kappa < 3.0  # the true relative lift per unit of intensity is 2
    assert spearmanr(learner.effect(x), tau).statistic > 0.8
    # no effect at all: the relative lift is estimated near zero, never negative
    flat = (np.random.default_rng(3).random(N) < 0.05 + 0.3 * x[:, 1]).astype(float)
    null = ProportionalLearner(intensity_column=2, config=SMALL).fit(x, t, flat, e)
    assert 0.0 <= null.kappa < 0.6


@pytest.mark.parametrize("name", [*sorted(LEARNERS), ProportionalLearner.name])
def test_bad_inputs_raise_clear_errors(name: str) -> None:
    x, t, y, e, _ = _trial(4, proportional=False)
    learner: UpliftLearner = (
        ProportionalLearner(2, SMALL) if name == ProportionalLearner.name else LEARNERS[name]()
    )
    with pytest.raises(ValueError, match="both treated rows and controls"):
        learner.fit(x, np.ones(N, dtype=bool), y, e)
    with pytest.raises(ValueError, match="one entry per row"):
        learner.fit(x, t[:10], y, e)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        learner.fit(x, t, y, np.ones(N))
    with pytest.raises(RuntimeError, match="not fitted"):
        learner.effect(x)
    with pytest.raises(ValueError, match="num_leaves"):
        BoostingConfig(num_leaves=1)


def test_the_promotion_gate_needs_every_row_and_the_champion_beaten() -> None:
    rows = {"learner": 0.5, "rule": 0.4, "random": 0.0}
    assert promotion_verdict(
        rows, "learner", baselines={"rule"}, has_champion=False, metric="Q"
    ).allowed
    beaten = promotion_verdict(
        {**rows, "rule": 0.6}, "learner", baselines={"rule"}, has_champion=False, metric="Q"
    )
    assert not beaten.allowed and "loses to the rule baseline" in beaten.reason
    champion = promotion_verdict(
        {**rows, CHAMPION_ROW: 0.5}, "learner", baselines={"rule"}, has_champion=True, metric="Q"
    )
    assert not champion.allowed and "does not beat the champion" in champion.reason
    better = promotion_verdict(
        {**rows, CHAMPION_ROW: 0.45}, "learner", baselines={"rule"}, has_champion=True, metric="Q"
    )
    assert better.allowed and "beats the champion" in better.reason
    missing = promotion_verdict(rows, "other", baselines={"rule"}, has_champion=False, metric="Q")
    assert not missing.allowed
