"""Off-policy evaluation's error with and without the withdrawn decisions (issue 12).

For each seed: a world whose contact policy sets ``supersede_lead_minutes`` (15), so that
a better message may replace a scheduled one; the exploring engine (epsilon 0.3) logs in
closed loop (:func:`experiments.ope_validation.log_decisions`); every candidate is then
estimated three ways from the same log (the withdrawn decisions dropped, kept with
reward 0, counted as doing nothing) against the simulator's truth.

    .venv/bin/python benchmarks/ope_withdrawn.py 600 14 0,1,2
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from experiments.ope_validation import (
    TruthTable,
    log_decisions,
    validate_ope,
    withdrawn_decisions,
)
from nba.contact_policy import ContactPolicy
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.world import example_contact_policy

CANDIDATES = ("rules", "random", "nba-greedy")


def main(customers: int, days: int, seeds: list[int]) -> None:
    for seed in seeds:
        started = time.process_time()
        config = ClosedLoopConfig(
            n_customers=customers, history_days=60, days=days, seed=seed, playbook=True
        )
        rules = ContactPolicy.from_dict(
            {"supersede_lead_minutes": 15}, base=example_contact_policy()
        )
        world = build_world(config, contact_policy=rules)
        logged = log_decisions(world, epsilon=0.3)
        decisions = logged.run.decisions
        gone = withdrawn_decisions(decisions)
        withdrawn = decisions["decision_id"].isin(gone).to_numpy()
        truth = TruthTable(world, logged)
        truth.fill([(i, a) for i, r in enumerate(logged.logged) for a in r.actions])
        # the logging policy itself, per decision: sum_a pi0(a|x) r(x, a)
        logger = np.array(
            [
                sum(p * truth.value(i, a) for a, p in zip(r.actions, r.probabilities, strict=True))
                for i, r in enumerate(logged.logged)
            ]
        )
        lost = sum(truth.value(i, r.action) for i, r in enumerate(logged.logged) if withdrawn[i])
        print(
            f"## seed {seed}: {len(decisions):,} decisions, {len(logged.run.contacts):,} "
            f"messages sent, {len(gone)} withdrawn (their logged actions' truth {lost:.2f})"
        )
        print(
            f"logger: truth per decision at every decision {logger.mean():.5f}, at those "
            f"that went {logger[~withdrawn].mean():.5f}; mean reward (its IPS) kept "
            f"{logged.reward.mean():.5f}, dropped {logged.reward[~withdrawn].mean():.5f}"
        )
        print(
            "| candidate | estimator | treatment | rounds | estimate | truth at its rounds "
            "| error | truth at every decision | error vs it |"
        )
        print("|---|---|---|---:|---:|---:|---:|---:|---:|")
        for how in ("dropped", "kept", "do_nothing"):
            v = validate_ope(world, CANDIDATES, closed_loop=False, logged=logged, withdrawn=how)
            for c in v.candidates:
                every = c.truth_at_every_decision or 0.0
                for e in c.estimates:
                    print(
                        f"| {c.candidate} | {e.estimator} | {how} | {v.rounds:,} | "
                        f"{e.estimate:.5f} | {c.truth_at_logged:.5f} | "
                        f"{e.estimate - c.truth_at_logged:+.5f} | {every:.5f} | "
                        f"{e.estimate - every:+.5f} |",
                        flush=True,
                    )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"seed {seed}: CPU {time.process_time() - started:.0f} s, max RSS {rss:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")])
