"""Off-policy evaluation when scheduled messages are withdrawn (supersession, issue 12),
against the simulator's truth.

The exploring engine logs in closed loop on a world whose contact policy lets a better
message replace a scheduled one; the replaced decisions are logged but nothing went.
Single-step off-policy evaluation takes each round's reward for a draw of the reward of
sending the logged action: with the withdrawn decisions left out (the default) that holds
exactly for every round (the rewards here are the truth's expected values), with them
kept it fails for each of them (reward 0, a positive truth).
"""

from __future__ import annotations

import numpy as np
import pytest

from experiments.ope_validation import (
    LoggedRun,
    TruthTable,
    log_decisions,
    validate_ope,
    withdrawn_decisions,
)
from nba.contact_policy import ContactPolicy
from simulator.closed_loop import ClosedLoopConfig, ClosedLoopWorld, build_world
from simulator.closed_loop.world import example_contact_policy

CONFIG = ClosedLoopConfig(n_customers=300, history_days=60, days=8, seed=3, playbook=True)


@pytest.fixture(scope="module")
def world() -> ClosedLoopWorld:
    policy = ContactPolicy.from_dict({"supersede_lead_minutes": 15}, base=example_contact_policy())
    return build_world(CONFIG, contact_policy=policy)


@pytest.fixture(scope="module")
def logged(world: ClosedLoopWorld) -> LoggedRun:
    return log_decisions(world, epsilon=0.3, draws=50)


def test_withdrawn_decisions_leave_the_rounds_whose_rewards_are_the_truth(
    world: ClosedLoopWorld, logged: LoggedRun
) -> None:
    decisions = logged.run.decisions
    gone = withdrawn_decisions(decisions)
    assert gone, "nothing was withdrawn in 8 days"
    withdrawn = decisions["decision_id"].isin(gone).to_numpy()
    truth = TruthTable(world, logged)
    pairs = [(i, record.action) for i, record in enumerate(logged.logged)]
    truth.fill(pairs)
    values = np.array([truth.value(i, a) for i, a in pairs])
    # a round that went earned what its action is truly worth; a withdrawn one earned 0
    np.testing.assert_allclose(logged.reward[~withdrawn], values[~withdrawn], atol=1e-9)
    assert (logged.reward[withdrawn] == 0.0).all()
    assert values[withdrawn].sum() > 0  # what keeping them would take for their reward

    candidates = ("random", "nba-greedy")
    dropped = validate_ope(world, candidates, closed_loop=False, logged=logged)
    kept = validate_ope(world, candidates, closed_loop=False, logged=logged, withdrawn="kept")
    assert (dropped.withdrawn, kept.withdrawn) == (len(gone), len(gone))
    assert dropped.rounds == len(decisions) - len(gone) and kept.rounds == len(decisions)
    assert dropped.logged_value > kept.logged_value  # the zeros left out
    for d, k in zip(dropped.candidates, kept.candidates, strict=True):
        assert k.truth_at_logged == pytest.approx(d.truth_at_every_decision)
        for e in d.estimates[:3]:  # IPS, SNIPS, DR cover the truth of their rounds
            assert e.contains(d.truth_at_logged), (d.candidate, e.estimator)
