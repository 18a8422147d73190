"""An action added mid-run (issue 13's day-10 scenario, at small scale): the engine tries
it and learns about it from its own outcomes. Small world: seconds."""

from __future__ import annotations

import datetime as dt

import pytest

from experiments.new_action import NEW_ACTION, catalog_switch, new_action_world, run_new_action
from nba.context import CustomerContext
from simulator.closed_loop import ClosedLoopConfig, ClosedLoopWorld


@pytest.fixture(scope="module")
def world() -> ClosedLoopWorld:
    return new_action_world(ClosedLoopConfig(n_customers=250, history_days=14, days=5, seed=3))


def test_the_new_action_is_tried_and_its_outcomes_are_learned(world: ClosedLoopWorld) -> None:
    # a half-life far longer than the run: the statistics are plain counts
    result = run_new_action(world, add_day=2, window_days=3, half_life_days=1e6)
    assert result.decisions > 0
    assert result.chosen > 0  # the engine explores an action it has no evidence of
    assert 0.0 < result.truly_best <= 1.0
    counts = result.counts
    assert counts is not None, "no statistics about the new action: nothing was learned"
    # every message of it is an exposure, every answered one a response (those answered
    # after the run's last tick are not released to the engine)
    # (a 10^6-day half-life over a 5-day run weighs an exposure up to 1 + 3.5e-6)
    assert counts.exposures == pytest.approx(result.sent, rel=1e-5)
    assert result.answered - 2 <= counts.responses <= result.answered
    assert counts.expected > 0
    # its value is learned too: every exposure carries the stated value of a response, each
    # response adds it, each attributed purchase its margin
    assert counts.valued == pytest.approx(counts.exposures)
    assert (counts.response_value > 0) == (counts.responses > 0)
    assert (counts.margin > 0) == (counts.purchases > 0)
    assert sum(n for _, n, _ in result.by_day) == result.decisions


def test_the_catalog_switches_on_the_day(world: ClosedLoopWorld) -> None:
    at = world.cut + dt.timedelta(days=2)
    switch = catalog_switch(world, at)
    eligible_before = eligible_after = 0
    for profile in world.build.profiles[:200]:
        for now in (at - dt.timedelta(hours=3), at + dt.timedelta(hours=3)):
            decision = switch.route(CustomerContext(profile, now), seed=1).decision
            if NEW_ACTION.id in decision.eligible_action_ids:
                if now < at:
                    eligible_before += 1
                else:
                    eligible_after += 1
    assert eligible_before == 0
    assert eligible_after > 0
    assert len(switch.seen) <= eligible_after
