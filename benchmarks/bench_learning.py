"""Adaptive statistics in closed loop: the same engine with and without them.

Runs the engine (``nba``) on one simulated world without the online response
statistics (every option keeps its prior) and with them, once per statistics
model in ``--models`` (``value``: response calibration x learned value per response,
``response``: the calibration alone). Prints the true incremental margin per
customer of each run and the paired bootstrap interval of each difference with
the run without, and how settled exploration is (the share of decisions that
explored, and the mean logged propensity), per week. ``--ceilings`` adds, in the
same run, what learning could reach at best: ``nba+truth`` (the same engine fed the
true response model: what perfect statistics would give it) and the oracles.

``--prior-error S`` gives the engine the priors a marketer would write rather than
ones that happen to match the simulator: the rule-based scorer's base response rate
of each action type is multiplied by ``exp(S z)``, ``z`` standard normal drawn per
type from ``--prior-seed`` (the same guesses for both runs); the world keeps its truth.
``--value-error S`` misstates the value of a response of each action likewise (its
catalog value times ``exp(S z)``, ``z`` drawn per action): what the value model, and
not the response calibration, can correct.

    PYTHONPATH=. python benchmarks/bench_learning.py --customers 1500 --days 21
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import time
from collections.abc import Mapping, Sequence

from features.online.response_stats import MODELS, MemoryResponseStats, margin_rates
from nba.context import CustomerContext
from nba.pipeline import build_pipeline
from nba.scoring import DEFAULT_BASE_RATES, ActionScore, RuleBasedScorer, Scorer
from nba.screening import ActionCandidate
from simulator.closed_loop import (
    ClosedLoopConfig,
    ClosedLoopWorld,
    PolicyRun,
    build_world,
    make_policy,
    run_policy,
)
from simulator.closed_loop.metrics import difference_interval, per_customer


@dataclasses.dataclass(frozen=True)
class MisstatedValues(Scorer):
    """``inner``'s scores with each action's value of a response times its ``factors``."""

    inner: Scorer
    factors: Mapping[str, float]

    def score(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[ActionScore]:
        scores = self.inner.score(context, candidates)
        return [
            dataclasses.replace(
                s, expected_value=s.expected_value * self.factors.get(c.action.id, 1.0)
            )
            for c, s in zip(candidates, scores, strict=True)
        ]

    def prepare(self, context: CustomerContext) -> CustomerContext:
        return self.inner.prepare(context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1500)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--half-life-days", type=float, default=14.0)
    parser.add_argument("--prior-error", type=float, default=0.0)
    parser.add_argument("--value-error", type=float, default=0.0)
    parser.add_argument("--prior-seed", type=int, default=0)
    parser.add_argument("--models", default=",".join(MODELS), help="statistics models to run")
    parser.add_argument("--ceilings", default="", help="e.g. nba+truth,oracle-myopic,oracle")
    args = parser.parse_args()
    draw = random.Random(args.prior_seed)
    guesses = {
        kind: rate * math.exp(args.prior_error * draw.gauss(0.0, 1.0))
        for kind, rate in DEFAULT_BASE_RATES.items()
    }
    if args.prior_error:
        print("marketer's base rates:", {k.value: round(v, 3) for k, v in guesses.items()})
    config = ClosedLoopConfig(n_customers=args.customers, days=args.days, seed=args.seed)
    started = time.perf_counter()
    world = build_world(config)
    factors = {
        a.id: math.exp(args.value_error * draw.gauss(0.0, 1.0))
        for a in world.catalog
        if not a.is_do_nothing
    }
    if args.value_error:
        print("marketer's values, x:", {k: round(v, 2) for k, v in factors.items()})
    print(
        f"world: {args.customers} customers, {args.days} days "
        f"({time.perf_counter() - started:.0f} s)"
    )
    runs = {}
    for model in ["", *args.models.split(",")]:
        stats = (
            MemoryResponseStats(
                half_life_days=args.half_life_days,
                margin_rates=margin_rates(world.sim.products),
                model=model,
            )
            if model
            else False
        )
        scorer = RuleBasedScorer(base_rates=guesses)
        policy = (
            build_pipeline(
                world.catalog, world.contact_policy, scorer=MisstatedValues(scorer, factors)
            )
            if args.prior_error or args.value_error
            else make_policy("nba", world)
        )
        name = f"nba+{model}" if model else "nba"
        runs[name] = run_policy(world, policy, name=name, learn=stats)
        report(runs[name], world)
    for name in filter(None, args.ceilings.split(",")):
        runs[name] = run_policy(world, make_policy(name, world), name=name, learn=False)
        report(runs[name], world)
    base = per_customer(runs["nba"], world.customer_ids, "margin").mean()
    for name, run in runs.items():
        if name == "nba":
            continue
        margin = per_customer(run, world.customer_ids, "margin").mean()
        low, high = difference_interval(run, runs["nba"], world.customer_ids, column="margin")
        print(
            f"{name:14s} / nba: {margin / base:.3f}x; difference margin/customer, "
            f"95 % interval [{low:.3f}, {high:.3f}]"
        )


def report(run: PolicyRun, world: ClosedLoopWorld) -> None:
    d = run.decisions
    d = d.assign(week=((d["decided_at"] - world.cut).dt.days // 7))
    margin = per_customer(run, world.customer_ids, "margin").mean()
    print(
        f"{run.policy:14s} margin/customer {margin:8.3f}  contacts {len(run.contacts):6d}  "
        f"decisions {len(d):6d}  ({run.seconds:.0f} s)",
        flush=True,
    )
    for week, rows in d.groupby("week"):
        print(
            f"    week {week}: explored {rows['explored'].mean():.3f}  "
            f"mean propensity {rows['propensity'].mean():.3f}"
        )


if __name__ == "__main__":
    main()
