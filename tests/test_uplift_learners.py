"""The gradient-boosted meta-learners recover a known heterogeneous effect on randomised data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from training.metrics import qini_coefficient
from training.selection import CHAMPION_ROW, promotion_verdict
from training.uplift_learners import (
    LEARNERS,
    BoostingConfig,
    ProportionalLearner,
    RelativeLiftLearner,
    UpliftLearner,
    crossfit_outcome,
    effect_scale,
    r_loss_gain,
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


def _modified_trial(seed: int, n: int = 20_000) -> tuple[np.ndarray, ...]:
    """A randomised trial (half treated) whose relative lift grows with the intensity x1
    and is 16x larger on "channel" x2 = 1 than on x2 = 0; x3 is an irrelevant column.
    The baseline grows with x0, so the true uplift is ``base x1 r(x2)``."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [rng.random(n), rng.uniform(0.05, 0.5, n), rng.random(n) < 0.5, rng.random(n)]
    ).astype(float)
    t = rng.random(n) < 0.5
    base = 0.05 + 0.25 * x[:, 0]
    tau = base * x[:, 1] * np.where(x[:, 2] == 1, 4.0, 0.25)
    y = (rng.random(n) < base + t * tau).astype(float)
    return x, t, y, np.full(n, 0.5), tau


def test_the_relative_lift_learner_recovers_a_modified_lift_better_than_the_rule() -> None:
    x, t, y, e, tau = _modified_trial(5)
    learner = RelativeLiftLearner(1, [2, 3], SMALL).fit(x, t, y, e)
    effect = learner.effect(x)
    rule = x[:, 1]  # the fixed rule: the offer's value share
    top = len(x) * 3 // 10
    assert spearmanr(effect, tau).statistic > spearmanr(rule, tau).statistic + 0.2
    assert tau[np.argsort(-effect)[:top]].mean() > 1.2 * tau[np.argsort(-rule)[:top]].mean()
    # the proportional learner (one lift for every row) misses the channel: worse
    flat = ProportionalLearner(1, SMALL).fit(x, t, y, e).effect(x)
    assert spearmanr(effect, tau).statistic > spearmanr(flat, tau).statistic + 0.1
    # the channel's coefficient (standardised column 2) is large and positive; the
    # irrelevant column's is small
    assert learner.coef[1] > 0.5 and abs(learner.coef[2]) < 0.3
    p = learner.outcome(x)
    assert ((p >= 0) & (p <= 1)).all() and (effect >= 0).all()


def test_the_relative_lift_learner_shrinks_modifiers_without_a_signal() -> None:
    """No modification at all: the cross-validated penalty keeps the modifiers near zero
    and the ranking is the proportional learner's (baseline x intensity)."""
    x, t, _, e, _ = _modified_trial(6, n=8000)
    rng = np.random.default_rng(7)
    base = 0.05 + 0.25 * x[:, 0]
    y = (rng.random(len(x)) < base * (1 + t * 2.0 * x[:, 1])).astype(float)
    learner = RelativeLiftLearner(1, [2, 3], SMALL).fit(x, t, y, e)
    assert np.abs(learner.coef[1:3]).max() < 0.3
    assert spearmanr(learner.effect(x), base * x[:, 1]).statistic > 0.9


@pytest.mark.parametrize(
    "name", [*sorted(LEARNERS), ProportionalLearner.name, RelativeLiftLearner.name]
)
def test_bad_inputs_raise_clear_errors(name: str) -> None:
    x, t, y, e, _ = _trial(4, proportional=False)
    learner: UpliftLearner = (
        ProportionalLearner(2, SMALL)
        if name == ProportionalLearner.name
        else RelativeLiftLearner(2, [0], SMALL)
        if name == RelativeLiftLearner.name
        else LEARNERS[name]()
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
    # a tie with a baseline is no win (every row 0: a learner that found nothing)
    tie = promotion_verdict(
        {**rows, "rule": 0.5}, "learner", baselines={"rule"}, has_champion=False, metric="Q"
    )
    assert not tie.allowed and "does not beat the rule baseline" in tie.reason
    # a tie with another family is not a loss: the chosen one (on validation) may go
    family = promotion_verdict(
        {**rows, "other": 0.5}, "learner", baselines={"rule"}, has_champion=False, metric="Q"
    )
    assert family.allowed
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


def test_the_r_loss_gain_prefers_the_right_effect_size_where_the_qini_cannot() -> None:
    """Two estimates with the true ranking, one at the true size and one 5x too large,
    and a noisy one: the Qini (a ranking) cannot tell the first two apart; the R-loss
    gain ranks the true size first, and zero effect at 0."""
    x, t, y, e, tau = _modified_trial(11, n=30_000)
    m = crossfit_outcome(SMALL, x, y)
    noisy = tau + np.random.default_rng(12).normal(0.0, 3 * tau.std(), len(tau))
    gain = {
        name: r_loss_gain(effect, t, y, e, m)
        for name, effect in {"true": tau, "too_large": 5 * tau, "noisy": noisy}.items()
    }
    assert gain["true"] > 0 > gain["too_large"] and gain["true"] > gain["noisy"]
    assert r_loss_gain(np.zeros(len(tau)), t, y, e, m) == 0.0
    assert qini_coefficient(tau, t, y) == pytest.approx(qini_coefficient(5 * tau, t, y))
    # a unit-free score of the right shape gets its size back from the randomised rows
    assert 2.0 < effect_scale(tau / 4.0, t, y, e, m) < 8.0
    assert effect_scale(-tau, t, y, e, m) == 0.0  # never a reversed rule
