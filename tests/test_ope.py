"""Off-policy estimators, the logging wrapper and the candidate distributions.

The estimators are checked on synthetic bandit data whose true policy values are
known (obp's practice: the error must stay within the stated uncertainty); the
logging wrapper and the candidate distributions on hand-made customers, against
the decisions the policies actually make.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

from experiments.ope import (
    DoublyRobust,
    InverseProbabilityWeighting,
    OffPolicyEvaluation,
    SelfNormalizedInverseProbabilityWeighting,
    check_ope_inputs,
    cross_fitted_rewards,
)
from experiments.ope_logging import (
    CONTEXT_FEATURES,
    NO_ACTION,
    ActionChannel,
    ExploringPolicy,
    LoggedContext,
    context_features,
    policy_distribution,
)
from nba.arbitration import BetaPosterior, best_channels, thompson_pick, thompson_probabilities
from nba.baselines import RandomPolicy, RuleBasedPolicy
from nba.budgets import UsageCounts
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.policy import DecisionPolicy
from nba.profile import CustomerProfile
from nba.screening import screen

# --- synthetic logged bandit data with a known truth -------------------------------------


class Bandit:
    """Contexts, a softmax logging policy, Bernoulli rewards with known means."""

    def __init__(self, n: int, seed: int, n_actions: int = 4, dim: int = 3) -> None:
        rng = np.random.default_rng(seed)
        self.context = rng.normal(size=(n, dim))
        theta = np.random.default_rng(99).normal(size=(dim, n_actions))
        self.q = 1.0 / (1.0 + np.exp(-(self.context @ theta - 1.0)))  # true E[r | x, a]
        logits = self.context @ np.random.default_rng(7).normal(size=(dim, n_actions)) * 0.7
        self.logging = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        cumulative = self.logging.cumsum(axis=1)
        self.action = (rng.random((n, 1)) > cumulative).sum(axis=1).astype(np.int64)
        rows = np.arange(n)
        self.pscore = self.logging[rows, self.action]
        self.reward = (rng.random(n) < self.q[rows, self.action]).astype(float)

    def greedy(self) -> np.ndarray:
        """A deterministic candidate: the action of highest true mean."""
        dist = np.zeros_like(self.q)
        dist[np.arange(len(self.q)), self.q.argmax(axis=1)] = 1.0
        return dist

    def value(self, action_dist: np.ndarray) -> float:
        return float(np.mean(np.sum(action_dist * self.q, axis=1)))


ESTIMATOR_CLASSES = (InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting)


@pytest.mark.parametrize("estimator", ESTIMATOR_CLASSES, ids=lambda e: e.name)
def test_intervals_cover_the_true_value_about_95_percent_of_the_time(estimator: type) -> None:
    covered = 0
    errors = []
    for seed in range(200):
        bandit = Bandit(1000, seed)
        candidate = bandit.greedy()
        estimate = estimator().estimate(bandit.reward, bandit.action, bandit.pscore, candidate)
        truth = bandit.value(candidate)
        covered += estimate.contains(truth)
        errors.append(estimate.estimate - truth)
    assert 0.89 <= covered / 200 <= 0.99, covered
    assert abs(np.mean(errors)) < 0.01  # (nearly) unbiased


def test_estimators_recover_a_candidate_value_far_from_the_logged_one() -> None:
    bandit = Bandit(6_000, seed=1)
    candidate = bandit.greedy()
    truth = bandit.value(candidate)
    logged_mean = float(bandit.reward.mean())
    assert truth - logged_mean > 0.1  # the candidate is much better than the logger
    q_hat = cross_fitted_rewards(
        bandit.context, bandit.action, bandit.reward, np.arange(4.0).reshape(4, 1)
    )
    ope = OffPolicyEvaluation(bandit.reward, bandit.action, bandit.pscore)
    estimates = {e.estimator: e for e in ope.estimate(candidate, q_hat)}
    assert set(estimates) == {"ips", "snips", "dr", "dm"}
    # DM is the reward model's value of the candidate alone, its interval blind to the
    # model's bias; the weighted estimators must recover the truth
    dm = float(np.mean(np.sum(candidate * q_hat, axis=1)))
    assert estimates["dm"].estimate == pytest.approx(dm)
    assert estimates["dm"].std_error < estimates["dr"].std_error
    for e in (estimates[name] for name in ("ips", "snips", "dr")):
        assert e.contains(truth), (e.estimator, e.estimate, truth)
        assert not e.contains(logged_mean)
        assert abs(e.estimate - truth) < 4 * e.std_error
    # A good reward model makes DR the least variable.
    assert estimates["dr"].std_error < estimates["ips"].std_error


def test_dr_is_right_when_the_reward_model_is_exact_or_when_the_propensities_are() -> None:
    bandit = Bandit(5_000, seed=3)
    candidate = bandit.greedy()
    truth = bandit.value(candidate)
    exact = DoublyRobust().estimate(
        bandit.reward, bandit.action, bandit.pscore, candidate, estimated_rewards=bandit.q
    )
    wrong_model = DoublyRobust().estimate(
        bandit.reward,
        bandit.action,
        bandit.pscore,
        candidate,
        estimated_rewards=np.full_like(bandit.q, 0.9),
    )
    assert exact.contains(truth) and wrong_model.contains(truth)
    assert exact.std_error < wrong_model.std_error


def test_diagnostics_describe_the_importance_weights() -> None:
    reward = np.array([1.0, 0.0, 1.0, 0.0])
    action = np.array([0, 1, 0, 1])
    pscore = np.array([0.5, 0.5, 0.25, 0.5])
    candidate = np.array([[1.0, 0.0]] * 4)  # weights 2, 0, 4, 0
    e = InverseProbabilityWeighting().estimate(reward, action, pscore, candidate)
    assert e.max_weight == 4.0
    assert e.mean_weight == 1.5
    assert e.effective_sample_size == pytest.approx(36 / 20)
    assert e.estimate == pytest.approx((2 + 4) / 4)
    same = InverseProbabilityWeighting().estimate(
        reward, action, pscore, evaluation_pscore=np.array([1.0, 0.0, 1.0, 0.0])
    )
    assert same.estimate == e.estimate


def test_snips_follows_a_shift_of_the_rewards_and_ips_does_not() -> None:
    bandit = Bandit(2_000, seed=5)
    candidate = bandit.greedy()
    args = (bandit.action, bandit.pscore, candidate)
    snips = SelfNormalizedInverseProbabilityWeighting()
    ips = InverseProbabilityWeighting()
    shift = (
        snips.estimate(bandit.reward + 10, *args).estimate
        - snips.estimate(bandit.reward, *args).estimate
    )
    assert shift == pytest.approx(10.0)
    ips_shift = (
        ips.estimate(bandit.reward + 10, *args).estimate
        - ips.estimate(bandit.reward, *args).estimate
    )
    assert abs(ips_shift - 10.0) > 0.05  # IPS scales the shift by the mean weight


def test_bootstrap_interval_agrees_with_the_normal_one() -> None:
    bandit = Bandit(3_000, seed=8)
    candidate = bandit.greedy()
    normal = InverseProbabilityWeighting().estimate(
        bandit.reward, bandit.action, bandit.pscore, candidate
    )
    boot = InverseProbabilityWeighting().estimate(
        bandit.reward,
        bandit.action,
        bandit.pscore,
        candidate,
        interval="bootstrap",
        n_bootstrap=400,
    )
    assert boot.interval == "bootstrap"
    assert boot.estimate == normal.estimate
    assert boot.std_error == pytest.approx(normal.std_error, rel=0.15)
    assert boot.ci_low == pytest.approx(normal.ci_low, abs=normal.std_error * 0.5)
    assert boot.ci_high == pytest.approx(normal.ci_high, abs=normal.std_error * 0.5)


GOOD = {
    "reward": np.array([1.0, 0.0, 1.0]),
    "action": np.array([0, 1, 1]),
    "pscore": np.array([0.5, 0.5, 1.0]),
    "action_dist": np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]),
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pscore": np.array([0.5, 0.0, 1.0])}, r"`pscore` must be in \(0, 1\]; row 1"),
        ({"pscore": np.array([0.5, 0.5, 1.5])}, r"`pscore` must be in \(0, 1\]; row 2"),
        (
            {"action_dist": np.array([[1.0, 0.0], [0.5, 0.4], [0.0, 1.0]])},
            r"`action_dist` must be a probability distribution .*row 1",
        ),
        ({"action_dist": np.array([1.0, 0.0, 1.0])}, "`action_dist` must be a 2-dimensional"),
        ({"reward": np.array([1.0, 0.0])}, r"Expected `reward.shape\[0\]` == .*reward=2"),
        (
            {"action": np.array([0, 2, 1])},
            r"`action` elements must be integers in the range.*row 1",
        ),
        ({"action": np.array([0.0, 1.0, 1.0])}, "`action` elements must be integers"),
        ({"reward": np.array([1.0, np.nan, 0.0])}, "`reward` must be finite; row 1"),
        ({"reward": [1.0, 0.0, 1.0]}, "`reward` must be a numpy array"),
    ],
)
def test_bad_inputs_are_refused_with_the_array_and_row(change: dict, message: str) -> None:
    inputs = {**GOOD, **change}
    with pytest.raises(ValueError, match=message):
        check_ope_inputs(**inputs)


def test_dr_needs_a_reward_model_of_the_right_shape() -> None:
    with pytest.raises(ValueError, match="dr needs `action_dist` and `estimated_rewards`"):
        DoublyRobust().estimate(GOOD["reward"], GOOD["action"], GOOD["pscore"], GOOD["action_dist"])
    with pytest.raises(ValueError, match=r"`estimated_rewards.shape == action_dist.shape`"):
        DoublyRobust().estimate(
            GOOD["reward"],
            GOOD["action"],
            GOOD["pscore"],
            GOOD["action_dist"],
            estimated_rewards=np.zeros((3, 3)),
        )
    with pytest.raises(ValueError, match="unknown estimator"):
        OffPolicyEvaluation(GOOD["reward"], GOOD["action"], GOOD["pscore"], estimators=["ipw"])


def test_cross_fitting_never_predicts_a_row_with_a_model_that_saw_it() -> None:
    rng = np.random.default_rng(0)
    n = 600
    context = rng.normal(size=(n, 2))  # unique per row: a deep tree memorises each reward
    reward = rng.normal(size=n)  # pure noise: nothing to learn
    action = np.zeros(n, dtype=np.int64)
    tree = DecisionTreeRegressor(random_state=0)
    in_sample = tree.fit(np.hstack([context, np.zeros((n, 1))]), reward).predict(
        np.hstack([context, np.zeros((n, 1))])
    )
    assert np.corrcoef(in_sample, reward)[0, 1] > 0.99
    crossed = cross_fitted_rewards(context, action, reward, np.zeros((1, 1)), model=tree, n_folds=3)
    assert abs(np.corrcoef(crossed[:, 0], reward)[0, 1]) < 0.15
    groups = np.arange(n) // 2
    mask = np.zeros((n, 1), dtype=bool)
    mask[::2] = True
    grouped = cross_fitted_rewards(
        context, action, reward, np.zeros((1, 1)), model=tree, groups=groups, mask=mask
    )
    assert np.all(grouped[1::2] == 0.0)  # masked out: not predicted


# --- Thompson-sampling probabilities ----------------------------------------------------

CATALOG = """
actions:
  - {id: cart, type: cart_reminder, channels: [push, email, sms],
     eligibility: "cart_size > 0", value: "cart_value * 0.3", timing: asap}
  - {id: reco, type: product_recommendation, channels: [email, push], value: 4, timing: asap}
  - {id: guide, type: content, channels: [email], value: 2, timing: asap}
  - {id: nothing, type: do_nothing}
"""
NOW = dt.datetime(2026, 3, 6, 10, 0, tzinfo=dt.UTC)


def catalog() -> Catalog:
    return parse_catalog(CATALOG)


def context(**fields: object) -> CustomerContext:
    base: dict[str, object] = {
        "timezone": "Europe/Paris",
        "cart_items": ("P1",),
        "cart_value": 30.0,
        "consents": {Channel.EMAIL: True, Channel.PUSH: True, Channel.SMS: True},
    }
    return CustomerContext(CustomerProfile("C1", **{**base, **fields}), NOW)  # type: ignore[arg-type]


def logged_at(policy: DecisionPolicy, ctx: CustomerContext, stats: dict) -> LoggedContext:
    """A LoggedContext built as the exploring logger builds it (screening, no run)."""
    screening = screen(policy.catalog, policy.contact_policy, ctx, UsageCounts())
    return LoggedContext(ctx, screening.candidates, stats, (NO_ACTION,), (1.0,), 0)


def test_thompson_probabilities_match_the_pick_frequencies() -> None:
    engine = NextBestActionPolicy(catalog())
    ctx = context()
    stats = {
        "cart": BetaPosterior(2, 30),
        "reco": BetaPosterior(1, 3),
        "guide": BetaPosterior(1, 1),
    }
    screening = screen(engine.catalog, engine.contact_policy, ctx, UsageCounts())
    candidates = list(screening.candidates)
    options, _ = best_channels(candidates, engine._assess(ctx, candidates))
    probabilities = thompson_probabilities(options, stats, random.Random(1), draws=20_000)
    assert sum(probabilities) == pytest.approx(1.0)
    picks = Counter(
        thompson_pick(options, stats, random.Random(s), draws=1).index for s in range(4000)
    )
    for index, p in enumerate(probabilities):
        assert picks[index] / 4000 == pytest.approx(p, abs=0.03), options[index].action_id
    assert sum(p > 0.02 for p in probabilities) >= 2  # the test is not vacuous
    greedy = NextBestActionPolicy(catalog(), exploration=False)
    one_hot = greedy.pick_probabilities(options, stats, random.Random(0))
    assert sorted(one_hot) == [0.0] * (len(options) - 1) + [1.0]


# --- candidate distributions and the exploring logger ----------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda c: RuleBasedPolicy(c),
        lambda c: NextBestActionPolicy(c, exploration=False),
    ],
    ids=["rules", "nba-greedy"],
)
@pytest.mark.parametrize("cart_value", [0.0, 30.0, 300.0])
def test_deterministic_candidates_put_all_mass_on_what_they_decide(make, cart_value: float) -> None:
    policy = make(catalog())
    ctx = context(cart_value=cart_value, cart_items=("P1",) if cart_value else ())
    decision = policy.decide(ctx)
    first = decision.actions[0]
    expected = ActionChannel(
        first.action_id, None if first.channel is None else first.channel.value
    )
    assert policy_distribution(policy, logged_at(policy, ctx, {})) == {expected: 1.0}


def test_channels_make_actions_distinct() -> None:
    # a customer who declared SMS: the engine honours the declaration; rules that only
    # weigh it (the contact policy's declared_channel: weigh) keep their own channel
    weigh = ContactPolicy(declared_channel="weigh")
    rules = RuleBasedPolicy(catalog(), contact_policy=weigh)
    engine = NextBestActionPolicy(catalog(), exploration=False)
    ctx = context(cart_value=300.0, preferred_channel="sms")
    rule_pick = policy_distribution(rules, logged_at(rules, ctx, {}))
    engine_pick = policy_distribution(engine, logged_at(engine, ctx, {}))
    assert [a.action_id for a in rule_pick] == [a.action_id for a in engine_pick] == ["cart"]
    # Both send the cart reminder, on different channels: for OPE those are different actions.
    assert rule_pick != engine_pick


def test_random_and_thompson_candidates_match_their_decisions() -> None:
    ctx = context()
    stats = {"cart": BetaPosterior(1, 10), "reco": BetaPosterior(1, 2)}
    # propensity_draws only sizes the logged propensity's estimate, not the pick
    for policy in (RandomPolicy(catalog()), NextBestActionPolicy(catalog(), propensity_draws=1)):
        dist = policy_distribution(policy, logged_at(policy, ctx, stats), draws=20_000)
        assert sum(dist.values()) == pytest.approx(1.0)
        assert len(dist) >= 3  # the test is not vacuous
        seen: Counter[ActionChannel] = Counter()
        for seed in range(800):
            a = policy.decide(ctx, stats=stats, seed=seed).actions[0]
            seen[ActionChannel(a.action_id, None if a.channel is None else a.channel.value)] += 1
        assert set(seen) <= set(dist)
        for action, p in dist.items():
            assert seen[action] / 800 == pytest.approx(p, abs=0.05), (policy.name, action)


def test_exploring_logger_covers_every_action_and_channel_with_its_logged_propensity() -> None:
    records: list[LoggedContext] = []
    engine = NextBestActionPolicy(catalog())
    logger = ExploringPolicy(engine, epsilon=0.3, draws=50, record=records.append)
    ctx = context()
    stats = {"cart": BetaPosterior(5, 20)}
    seen: Counter[ActionChannel] = Counter()
    n = 1200
    for seed in range(n):
        decision = logger.decide(ctx, stats=stats, seed=seed)
        record = records[-1]
        first = decision.actions[0]
        chosen = ActionChannel(
            first.action_id, None if first.channel is None else first.channel.value
        )
        assert record.action == chosen
        assert decision.propensity == record.propensity
        seen[chosen] += 1
    # Every screened action on every channel, plus doing nothing, can be logged.
    expected = {
        ActionChannel("cart", "push"),
        ActionChannel("cart", "email"),
        ActionChannel("cart", "sms"),
        ActionChannel("reco", "email"),
        ActionChannel("reco", "push"),
        ActionChannel("guide", "email"),
        ActionChannel("nothing", None),
    }
    assert set(records[0].actions) == expected
    assert min(records[0].probabilities) >= 0.3 / len(expected) - 1e-12
    # The logged probabilities are the frequencies the logger really draws with
    # (averaged: the engine's share is re-estimated at every decision).
    mean = {a: np.mean([r.probabilities[r.actions.index(a)] for r in records]) for a in expected}
    for action in expected:
        assert seen[action] / n == pytest.approx(mean[action], abs=0.035), action
    # Every candidate's action is within the logger's support.
    for candidate in (RuleBasedPolicy(catalog()), RandomPolicy(catalog())):
        assert set(policy_distribution(candidate, records[0])) <= expected


def test_exploring_logger_refuses_multi_action_policies_and_bad_epsilon() -> None:
    with pytest.raises(ValueError, match="max_actions=1"):
        ExploringPolicy(NextBestActionPolicy(catalog(), max_actions=2))
    with pytest.raises(ValueError, match="epsilon"):
        ExploringPolicy(NextBestActionPolicy(catalog()), epsilon=1.5)


def test_context_features_have_one_value_per_name() -> None:
    policy = RuleBasedPolicy(catalog())
    values = context_features(logged_at(policy, context(), {}))
    assert values.shape == (len(CONTEXT_FEATURES),)
    named = dict(zip(CONTEXT_FEATURES, values, strict=True))
    assert named["cart_value"] == 30.0 and named["cart_size"] == 1.0
    assert named["local_hour"] == 11.0  # 10:00 UTC in Paris
    assert np.isnan(named["days_since_last_purchase"])
