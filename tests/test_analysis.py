"""Experiment analysis on synthetic logs with known effects, and always-valid monitoring."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import ExperimentAnalysis, analyse_experiment, bootstrap_difference
from experiments.decision_log import decisions_frame
from experiments.sequential import difference_sequence, fixed_interval, mixture_radius, mixture_rho
from nba.decision import LoggedAction, LoggedDecision
from nba.experiment import ExperimentConfig, parse_experiment

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
CONFIG = parse_experiment(
    {
        "name": "spring",
        "salt": "s",
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=14)).isoformat(),
        "attribution_window_days": 7,
        "arms": [
            {"name": "engine", "kind": "champion", "allocation": 0.45},
            {"name": "journeys", "kind": "rule_based", "allocation": 0.45},
            {"name": "control", "kind": "control", "allocation": 0.10},
        ],
        "guardrails": [
            {"metric": "unsubscribe_rate", "max_increase": 0.01},
            {"metric": "complaint_rate", "max_increase": 0.01},
        ],
    }
)
#: True per-arm behaviour: purchase probability, mean order value, unsubscribe probability.
TRUTH = {
    "engine": (0.20, 50.0, 0.05),
    "journeys": (0.15, 50.0, 0.01),
    "control": (0.12, 50.0, 0.01),
}


def synthetic(
    config: ExperimentConfig, n: int, seed: int = 0, drop_control: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A decision log and events for ``n`` customers with the effects of TRUTH."""
    rng = np.random.default_rng(seed)
    records: list[LoggedDecision] = []
    events: list[tuple[Any, ...]] = []
    for i in range(n):
        cid = f"C{i:06d}"
        arm = config.assign(cid)
        if arm.is_control and rng.random() < drop_control:
            continue  # a broken logger loses control decisions
        entered = START + dt.timedelta(hours=float(rng.uniform(0, 24 * 7)))
        channel = "email" if i % 3 else "sms"
        actions = (
            ()
            if arm.is_control
            else (LoggedAction("offer", channel, entered + dt.timedelta(hours=1), 1.0),)
        )
        records.append(
            LoggedDecision(f"d{i}", cid, entered, arm.kind.value, arm.name, None, 1.0, (), actions)
        )
        p, value, unsub = TRUTH[arm.name]
        # an organic purchase before entry must not count
        events.append((f"e0-{i}", cid, entered - dt.timedelta(hours=2), "purchase", None, 999.0))
        if rng.random() < p:
            at = entered + dt.timedelta(hours=float(rng.uniform(2, 24 * 5)))
            events.append((f"e1-{i}", cid, at, "purchase", None, float(rng.exponential(value))))
        if rng.random() < unsub:
            at = entered + dt.timedelta(hours=2)
            events.append((f"e2-{i}", cid, at, "unsubscribe", f"d{i}", None))
    frame = pd.DataFrame(
        events,
        columns=["event_id", "customer_id", "timestamp", "event_type", "decision_id", "revenue"],
    )
    frame["channel"] = "web"
    return decisions_frame(records), frame


@pytest.fixture(scope="module")
def analysis() -> ExperimentAnalysis:
    log, events = synthetic(CONFIG, 16_000)
    segments = {f"C{i:06d}": ("gold" if i % 2 else "silver") for i in range(16_000)}
    return analyse_experiment(CONFIG, log, events, segments=segments)


def test_arms_and_uplifts_recover_the_true_effects(analysis: ExperimentAnalysis) -> None:
    a = analysis
    by = {s.arm: s for s in a.arms}
    assert sum(s.customers for s in by.values()) == 16_000
    for arm, (p, value, _) in TRUTH.items():
        assert by[arm].conversion_ci[0] <= p <= by[arm].conversion_ci[1]
        assert by[arm].revenue_ci[0] <= p * value <= by[arm].revenue_ci[1]
    conv = a.uplift("engine", "conversion_rate")
    assert conv.ci[0] <= 0.08 <= conv.ci[1]
    assert conv.significant and conv.p_value < 1e-6
    assert conv.relative_ci[0] <= 0.08 / 0.12 <= conv.relative_ci[1]
    rev = a.uplift("engine", "revenue_per_customer")
    assert rev.ci[0] <= 0.08 * 50 <= rev.ci[1]
    assert rev.bootstrap_ci is not None and rev.bootstrap_ci[0] <= 4.0 <= rev.bootstrap_ci[1]
    # the pre-entry purchase of 999 was not counted
    assert a.customers["revenue"].max() < 999


def test_guardrail_breached_only_where_unsubscribes_really_rose(
    analysis: ExperimentAnalysis,
) -> None:
    results = {(g.arm, g.metric): g for g in analysis.guardrails}
    assert results[("engine", "unsubscribe_rate")].breached
    assert not results[("journeys", "unsubscribe_rate")].breached
    assert not results[("engine", "complaint_rate")].breached


def test_sample_ratio_ok_when_logging_is_whole_and_flagged_when_control_is_lost(
    analysis: ExperimentAnalysis,
) -> None:
    assert not analysis.sample_ratio.mismatch
    log, events = synthetic(CONFIG, 8_000, seed=1, drop_control=0.2)
    broken = analyse_experiment(CONFIG, log, events, bootstrap=False)
    assert broken.sample_ratio.mismatch
    assert broken.sample_ratio.observed["control"] < 0.9 * broken.sample_ratio.expected["control"]


def test_breakdowns_by_channel_and_segment(analysis: ExperimentAnalysis) -> None:
    a = analysis
    channels = a.channels
    assert set(channels["channel"]) == {"email", "sms"}
    assert "control" not in set(channels["arm"])
    contacts = int(channels["contacts"].sum())
    assert contacts == sum(s.contacts for s in a.arms)
    engine_email = channels[(channels["arm"] == "engine") & (channels["channel"] == "email")]
    assert float(engine_email["unsubscribes"].iloc[0]) > 0
    segments = a.segments
    assert len(segments) == 2 * 3
    gold = segments[(segments["segment"] == "gold") & (segments["arm"] == "engine")].iloc[0]
    assert gold["revenue_uplift_low"] <= 4.0 <= gold["revenue_uplift_high"]


def test_daily_monitoring_has_one_row_per_day_and_arm(analysis: ExperimentAnalysis) -> None:
    daily = analysis.daily
    assert set(daily["arm"]) == {"engine", "journeys"}
    assert len(daily) == 2 * 21  # 14 days + 7 days of attribution window
    engine = daily[daily["arm"] == "engine"]
    assert (engine["customers"].diff().dropna() >= 0).all()
    assert (engine["always_valid_low"] <= engine["fixed_low"]).all()
    assert (engine["always_valid_high"] >= engine["fixed_high"]).all()
    assert engine["always_valid_low"].iloc[-1] > 0  # the real effect is detected


def test_unknown_arm_in_the_log_is_refused() -> None:
    log, events = synthetic(CONFIG, 200)
    log.loc[0, "arm"] = "ghost"
    with pytest.raises(ValueError, match="arms that experiment 'spring' does not have: ghost"):
        analyse_experiment(CONFIG, log, events)


def test_bootstrap_difference_covers_a_known_difference() -> None:
    rng = np.random.default_rng(3)
    low, high = bootstrap_difference(rng.normal(1.0, 1, 4000), rng.normal(0.5, 1, 4000))
    assert low < 0.5 < high and high - low < 0.2


def test_daily_peeking_under_the_null_is_safe_only_with_the_always_valid_sequence() -> None:
    """A/A: 1,000 experiments, 30 daily looks, revenue-like outcomes (90 % zeros,
    heavy tail). Stopping at the first 'significant' look is wrong far more than 5 %
    of the time with the daily t-test, at most ~5 % with the confidence sequence."""
    rng = np.random.default_rng(11)
    runs, days, per_day = 1000, 30, 40

    def draws() -> np.ndarray:
        buys = rng.random((runs, days, per_day)) < 0.1
        return buys * rng.lognormal(3.0, 1.0, (runs, days, per_day))

    def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = np.arange(1, days + 1) * per_day
        total, squares = np.cumsum(x.sum(2), 1), np.cumsum((x**2).sum(2), 1)
        mean = total / n
        return mean, (squares - n * mean**2) / (n - 1), np.broadcast_to(n, mean.shape)

    a, b = moments(draws()), moments(draws())
    _, low, high = difference_sequence(*a, *b, planned_units=2 * days * per_day)
    _, f_low, f_high = fixed_interval(*a, *b)
    always_valid = float(((low > 0) | (high < 0)).any(axis=1).mean())
    naive = float(((f_low > 0) | (f_high < 0)).any(axis=1).mean())
    single_look = float(((f_low[:, -1] > 0) | (f_high[:, -1] < 0)).mean())
    assert always_valid <= 0.06
    assert naive >= 0.12
    assert 0.02 <= single_look <= 0.08  # one look at the end is fine either way


def test_mixture_radius_shrinks_and_is_wider_than_a_single_look() -> None:
    rho = mixture_rho(10_000)
    radius = mixture_radius(np.array([100, 1_000, 10_000, 100_000]), 1.0, rho=rho)
    assert (np.diff(radius) < 0).all()
    assert (radius > 1.96 / np.sqrt([100, 1_000, 10_000, 100_000])).all()
