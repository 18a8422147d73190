"""The experiment's outcome in words: what won, by how much, with its interval, and why
nothing won when nothing did (no clear difference, a breached guardrail, a broken
assignment), on synthetic logs whose true effects are known."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import ExperimentAnalysis, analyse_experiment
from experiments.decision_log import decisions_frame
from experiments.report import conclusion, markdown_report
from nba.decision import LoggedAction, LoggedDecision
from nba.experiment import parse_experiment

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
CONFIG = parse_experiment(
    {
        "name": "spring",
        "salt": "words",
        "start": START.isoformat(),
        "end": (START + dt.timedelta(days=14)).isoformat(),
        "attribution_window_days": 7,
        "arms": [
            {"name": "engine", "kind": "champion", "allocation": 0.4},
            {"name": "journeys", "kind": "rule_based", "allocation": 0.4},
            {"name": "control", "kind": "control", "allocation": 0.2},
        ],
        "guardrails": [{"metric": "unsubscribe_rate", "max_increase": 0.01}],
    }
)


def analysed(
    truth: dict[str, tuple[float, float]], n: int = 6_000, seed: int = 0, lose_control: float = 0
) -> ExperimentAnalysis:
    """``truth``: per arm, purchase probability and unsubscribe probability (orders of 50)."""
    rng = np.random.default_rng(seed)
    records: list[LoggedDecision] = []
    events: list[tuple[Any, ...]] = []
    for i in range(n):
        cid = f"C{i:06d}"
        arm = CONFIG.assign(cid)
        if arm.is_control and rng.random() < lose_control:
            continue
        entered = START + dt.timedelta(hours=float(rng.uniform(0, 24 * 7)))
        actions = (
            ()
            if arm.is_control
            else (LoggedAction("offer", "email", entered + dt.timedelta(hours=1), 1.0),)
        )
        records.append(
            LoggedDecision(f"d{i}", cid, entered, arm.kind.value, arm.name, None, 1.0, (), actions)
        )
        buys, unsubscribes = truth[arm.name]
        if rng.random() < buys:
            at = entered + dt.timedelta(hours=float(rng.uniform(2, 24 * 5)))
            events.append((f"b{i}", cid, at, "purchase", None, float(rng.exponential(50.0))))
        if rng.random() < unsubscribes:
            events.append(
                (f"u{i}", cid, entered + dt.timedelta(hours=2), "unsubscribe", None, None)
            )
    frame = pd.DataFrame(
        events,
        columns=["event_id", "customer_id", "timestamp", "event_type", "decision_id", "revenue"],
    )
    frame["channel"] = "email"
    return analyse_experiment(CONFIG, decisions_frame(records), frame, bootstrap=False)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_clear_winner_is_named_with_its_gain_and_interval(seed: int) -> None:
    analysis = analysed(
        {"engine": (0.30, 0.0), "journeys": (0.10, 0.0), "control": (0.10, 0.0)}, seed=seed
    )
    said = conclusion(analysis)
    gain = analysis.uplift("engine", "revenue_per_customer")
    assert said[0].startswith("**engine won**: revenue per customer"), said
    assert f"{gain.difference:+,.2f}" in said[0] and "95% CI" in said[0], said
    assert f"{gain.ci[0]:+,.2f} to {gain.ci[1]:+,.2f}" in said[0], said
    assert any(s.startswith("engine beat journeys: revenue per customer +") for s in said), said
    # the readable report leads its outcome with it
    report = markdown_report(analysis)
    assert report.index("**engine won**") < report.index("**engine**: revenue per customer")


@pytest.mark.parametrize("seed", [0, 1])
def test_no_difference_is_no_winner_and_says_what_would_tell(seed: int) -> None:
    analysis = analysed(
        {"engine": (0.12, 0.0), "journeys": (0.12, 0.0), "control": (0.12, 0.0)}, seed=seed
    )
    said = conclusion(analysis)
    assert said[0].startswith("**No winner**"), said
    assert "more customers or a longer run" in said[0], said
    assert any("cannot be told apart" in s for s in said), said
    assert not any("won" in s for s in said), said


def test_a_gain_bought_with_unsubscribes_is_not_a_win() -> None:
    analysis = analysed(
        {"engine": (0.30, 0.08), "journeys": (0.30, 0.0), "control": (0.10, 0.0)}, seed=3
    )
    said = conclusion(analysis)
    assert said[0].startswith("**journeys won**"), said
    assert "engine breached its guardrail (unsubscribe rate)" in " ".join(said), said


def test_a_broken_assignment_says_not_to_act() -> None:
    analysis = analysed(
        {"engine": (0.30, 0.0), "journeys": (0.10, 0.0), "control": (0.10, 0.0)},
        lose_control=0.5,
    )
    assert analysis.sample_ratio.mismatch
    assert conclusion(analysis) == [
        "**Do not act on this result**: customers per arm do not match the allocation "
        f"(p = {analysis.sample_ratio.p_value:.2g}), so assignment or logging is broken "
        "and no difference below can be trusted."
    ]
