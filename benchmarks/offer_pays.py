"""Issue 12, item 2: where does an incentive pay for itself, in the truth and for the scorer?

Builds the closed loop's playbook world, screens every customer at the cut (09:00 UTC
on the cut day) with the example catalog and contact policy, and for each incentive
action (discount, free shipping) eligible by e-mail compares the engine's cost test
``offer_uplift x value >= P(response) x offer cost`` under the ground truth
(:class:`~simulator.closed_loop.oracle.TruthScorer`: true incremental purchase
probability, the offer's true uplift, the true margin per incremental purchase) and
under the rule-based scorer (its propensity, its offer uplift, the catalog's value).

Run: ``PYTHONPATH=. python benchmarks/offer_pays.py --customers 300 --seed 0``
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics

from nba.budgets import UsageCounts
from nba.channels import Channel
from nba.context import CustomerContext
from nba.scoring import INCENTIVE_KINDS, ActionScore, RuleBasedScorer
from nba.screening import ActionCandidate, screen
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.oracle import TruthScorer


def _terms(score: ActionScore, value: float) -> tuple[float, float, float]:
    uplift = score.uplift or {}
    return score.propensity[Channel.EMAIL], uplift.get(Channel.EMAIL, 0.0), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = ClosedLoopConfig(
        n_customers=args.customers, history_days=400, days=30, seed=args.seed, playbook=True
    )
    world = build_world(config)
    truth, rule = TruthScorer(world.truth, world.mapping), RuleBasedScorer()
    rows: dict[str, list[tuple[tuple[float, float, float], tuple[float, float, float], float]]]
    rows = {}
    now = world.cut + dt.timedelta(hours=9)
    for profile in world.build.profiles:
        context = CustomerContext(profile, now)
        screening = screen(world.catalog, world.contact_policy, context, UsageCounts())
        candidates: list[ActionCandidate] = [
            c
            for c in screening.candidates
            if c.action.offer is not None
            and c.action.offer.kind in INCENTIVE_KINDS
            and Channel.EMAIL in c.channels
        ]
        if not candidates:
            continue
        true_scores = truth.score(context, candidates)
        rule_scores = rule.score(context, candidates)
        for c, t, r in zip(candidates, true_scores, rule_scores, strict=True):
            cost = c.action.offer.cost if c.action.offer is not None else 0.0
            rows.setdefault(c.action.id, []).append(
                (_terms(t, t.expected_value), _terms(r, c.value), cost)
            )
    print(f"{len(world.build.profiles)} customers at {now:%Y-%m-%d %H:%M} UTC, seed {args.seed}")
    print(
        "| action | eligible by e-mail | pays (truth) | pays (rule scorer) "
        "| median uplift / P, truth | rule | median value, truth | rule |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for action_id, found in rows.items():

        def pays(terms: tuple[float, float, float], cost: float) -> bool:
            p, u, v = terms
            return u * v >= p * cost

        def share(terms: tuple[float, float, float]) -> float:
            p, u, _ = terms
            return u / p if p > 0 else 0.0

        print(
            f"| {action_id} | {len(found)} | {sum(pays(t, c) for t, _, c in found)} "
            f"| {sum(pays(r, c) for _, r, c in found)} "
            f"| {statistics.median(share(t) for t, _, _ in found):.3f} "
            f"| {statistics.median(share(r) for _, r, _ in found):.3f} "
            f"| {statistics.median(t[2] for t, _, _ in found):.1f} "
            f"| {statistics.median(r[2] for _, r, _ in found):.1f} |"
        )


if __name__ == "__main__":
    main()
