"""The offer trial's belief and gate (:mod:`nba.offer_trial`): exactly the marketer's share
without evidence, toward ``1 - holdout`` with evidence that the offer pays, toward 0 (the
trial stops) with evidence that it does not; the customers' draws uniform and independent
per offer action."""

from __future__ import annotations

import pytest

from nba.engine import MIN_TRIAL_SHARE
from nba.offer_trial import OfferTrial, TrialCounts, trial_draw

COST = 7.0


def counts(treated: int, treated_mean: float, held: int, held_mean: float) -> TrialCounts:
    """Counts of arms whose every unit had the given net margin (variance 0: the shrinkage
    toward a cost's square is what keeps them uncertain)."""
    return TrialCounts(
        treated,
        treated * treated_mean,
        treated * treated_mean**2,
        held,
        held * held_mean,
        held * held_mean**2,
    )


@pytest.mark.parametrize("share", [0.01, 0.05, 0.2])
def test_without_evidence_the_gate_is_the_share(share: float) -> None:
    trial = OfferTrial(share=share)
    assert trial.open_probability(None, COST) == share
    assert trial.open_probability(TrialCounts(), COST) == share
    only_treated = TrialCounts(treated=50.0, treated_net=100.0, treated_net_sq=400.0)
    assert trial.open_probability(only_treated, COST) == share  # nothing to compare with
    assert trial.belief(None, COST).pays == pytest.approx(share)


def test_evidence_that_it_pays_opens_the_gate_up_to_the_holdout() -> None:
    trial = OfferTrial(share=0.05, holdout=0.2)
    strong = counts(400, 2.0, 4000, 0.0)
    assert trial.open_probability(strong, COST) == pytest.approx(0.8)  # 1 - holdout


def test_evidence_that_it_does_not_pay_stops_the_trial() -> None:
    trial = OfferTrial(share=0.05)
    losing = counts(400, -0.5, 4000, 0.1)
    assert trial.open_probability(losing, COST) < MIN_TRIAL_SHARE


def test_the_gate_grows_with_the_treated_arms_margin() -> None:
    trial = OfferTrial(share=0.05)
    gates = [trial.open_probability(counts(100, m, 1000, 0.0), COST) for m in (-0.2, 0.0, 0.2, 0.5)]
    assert gates == sorted(gates) and gates[0] < gates[-1]


def test_a_handful_of_zeros_does_not_decide() -> None:
    """Twelve tries without a purchase (each charged its expected redemptions on orders
    placed anyway) against a held-out arm that bought a little: still tried, on about the
    share, not stopped and not opened."""
    trial = OfferTrial(share=0.05)
    few = TrialCounts(12.0, -1.62, 0.43, 2178.0, 24.4, 298.4)
    assert MIN_TRIAL_SHARE < trial.open_probability(few, COST) < 0.2


def test_the_prior_is_as_wide_as_the_setting_says() -> None:
    narrow, wide = OfferTrial(prior_sd=0.02), OfferTrial(prior_sd=0.2)
    evidence = counts(20, 0.3, 1000, 0.0)
    assert narrow.belief(None, COST).sd == pytest.approx(0.14)
    # the same evidence moves a wide prior further
    assert narrow.belief(evidence, COST).mean < wide.belief(evidence, COST).mean


def test_customer_draws_are_uniform_and_independent_per_action() -> None:
    ids = [f"C{i}" for i in range(20_000)]
    a = [trial_draw("winback", c) for c in ids]
    b = [trial_draw("cart_discount", c) for c in ids]
    assert 0.045 < sum(x < 0.05 for x in a) / len(ids) < 0.055
    assert 0.45 < sum(x < 0.5 for x in a) / len(ids) < 0.55
    both = sum(x < 0.1 and y < 0.1 for x, y in zip(a, b, strict=True)) / len(ids)
    assert 0.007 < both < 0.013  # 0.1 x 0.1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"share": 0.0}, "share must be in"),
        ({"share": 1.0}, "share must be in"),
        ({"holdout": 0.0}, "holdout must be in"),
        ({"prior_sd": 0.0}, "prior_sd must be a positive number"),
        ({"share": 0.5, "holdout": 0.6}, "above 1 - holdout"),
    ],
)
def test_bad_settings_say_what_to_fix(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OfferTrial(**settings)
