"""Issue 12, item 2: is the engine's valuation of its incentives right, decision by decision?

Runs the engine (``nba``: the rule-based scorer) in the closed loop's playbook world and,
at every decision where an incentive action (a discount, free shipping) is eligible by
e-mail, compares what the engine and the simulator's truth say about it:

* **the offer alone** (against the same message without it): the engine's
  ``offer_uplift x value - P(response) x offer cost`` (its offer-pays test,
  :attr:`nba.arbitration.PriorityTerms.offer_pays`) and the truth's incremental margin of
  the message with the offer minus without it (:class:`~simulator.closed_loop.truth.TrueValue`,
  net of the discount on every redemption);
* **the message with its offer** against sending nothing: the truth's incremental margin;
* whether the same message without the incentive (a plain action of the same type) could
  go on e-mail at that decision.

With ``--learned METHOD`` the offer-uplift learner of ``training.offers`` is fitted on the
world's history (its randomised offer sends before the cut) and its uplift ranked against
the truth beside the rule-based one. Counts are decisions, not customers: a customer
undecided for days is counted at each decision.

Run: ``PYTHONPATH=. python benchmarks/offer_valuation.py --customers 600 --days 30 --seed 0``
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from features.dataset import RetailDataset
from nba.actions import ActionType
from nba.channels import Channel
from nba.context import CustomerContext
from nba.pipeline import build_pipeline
from nba.scoring import INCENTIVE_KINDS, ActionScore, RuleBasedScorer
from nba.screening import ActionCandidate
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.oracle import TruthScorer, _Slots
from simulator.closed_loop.runner import run_policy
from simulator.closed_loop.world import ClosedLoopWorld
from training.model_scorer import ModelScorer
from training.offers import OfferConfig, OfferUpliftModel, offer_examples

CHANNEL = Channel.EMAIL


@dataclass(frozen=True)
class Seen:
    """One decision's incentive candidates, as the engine scored them."""

    context: CustomerContext
    candidates: list[ActionCandidate]
    scores: list[ActionScore]
    plain_types: frozenset[ActionType]  # types of the plain actions that could go on e-mail


@dataclass(frozen=True)
class RecordingScorer(RuleBasedScorer):
    """The engine's default scorer, keeping the incentive candidates it scores."""

    seen: list[Seen] = field(default_factory=list)

    def score(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[ActionScore]:
        scores = super().score(context, candidates)
        picked = [
            (c, s)
            for c, s in zip(candidates, scores, strict=True)
            if c.action.offer is not None
            and c.action.offer.kind in INCENTIVE_KINDS
            and CHANNEL in c.channels
        ]
        if picked:
            plain = frozenset(
                c.action.type
                for c in candidates
                if CHANNEL in c.channels
                and (c.action.offer is None or c.action.offer.kind not in INCENTIVE_KINDS)
            )
            self.seen.append(Seen(context, [c for c, _ in picked], [s for _, s in picked], plain))
        return scores


def learned_model(world: ClosedLoopWorld, method: str) -> OfferUpliftModel:
    """The offer-uplift learner ``method`` fitted on the world's sends before the cut."""
    sim = world.sim
    events = sim.events[sim.events["timestamp"] < pd.Timestamp(world.cut)]
    data = RetailDataset(sim.customers, sim.products, sim.offers, events)
    examples = offer_examples(data, None, 0)
    return OfferUpliftModel(OfferConfig(method=method)).fit(examples, data.offers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learned", nargs="*", default=[], help="offer-uplift methods to fit")
    args = parser.parse_args()
    config = ClosedLoopConfig(
        n_customers=args.customers,
        history_days=args.history_days,
        days=args.days,
        seed=args.seed,
        playbook=True,
    )
    world = build_world(config)
    recorder = RecordingScorer()
    run_policy(world, build_pipeline(world.catalog, world.contact_policy, scorer=recorder))
    truth = TruthScorer(world.truth, world.mapping)
    learned = {m: ModelScorer(uplift=learned_model(world, m)) for m in args.learned}
    rows: dict[str, list[dict[str, float]]] = {}
    for seen in recorder.seen:
        slots = _Slots(seen.context, seen.candidates, world.mapping)
        with_offer = slots.value(world.truth)
        plain = slots.value(world.truth, with_offers=False)
        true_scores = truth.score(seen.context, seen.candidates)
        models = {m: s.score(seen.context, seen.candidates) for m, s in learned.items()}
        for k, (i, slot, _) in enumerate(slots.pairs):
            if slot.channel != CHANNEL:
                continue
            candidate, score, true = seen.candidates[i], seen.scores[i], true_scores[i]
            offer = candidate.action.offer
            assert offer is not None and score.uplift is not None and true.uplift is not None
            p, u, v = score.propensity[CHANNEL], score.uplift[CHANNEL], score.expected_value
            cost = offer.cost
            row = {
                "engine_offer": u * v - p * cost,
                "rule_uplift": u,
                "true_offer": float(with_offer.margin[k] - plain.margin[k]),
                "true_message": float(with_offer.margin[k]),
                "true_purchase_uplift": float(with_offer.purchase[k] - plain.purchase[k]),
                "plain_now": float(candidate.action.type in seen.plain_types),
                "rule_share": u / p if p > 0 else 0.0,
                "true_share": true.uplift[CHANNEL] / true.propensity[CHANNEL]
                if true.propensity[CHANNEL] > 0
                else 0.0,
                "rule_value": v,
                "true_value": true.expected_value,
            }
            for m, found in models.items():
                model_uplift = found[i].uplift
                row[m] = 0.0 if model_uplift is None else model_uplift[CHANNEL]
                row[f"{m}_offer"] = row[m] * v - p * cost
            rows.setdefault(candidate.action.id, []).append(row)
    print(
        f"seed {args.seed}: {args.customers} customers x {args.days} days after "
        f"{args.history_days}; incentives eligible by e-mail at the engine's decisions\n"
    )
    print(
        "| action | decisions | plain message could go now | offer alone pays: truth "
        "| engine | both | Spearman engine vs truth (offer alone) | message with offer pays "
        "(truth), no plain now | median uplift / P: truth, rule | median value: truth, rule |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---|")
    for action_id, found in rows.items():

        def column(name: str, among: list[dict[str, float]] = found) -> np.ndarray:
            return np.array([r[name] for r in among])

        truth_pays, engine_pays = column("true_offer") > 0, column("engine_offer") >= 0
        alone = [r for r in found if not r["plain_now"]]
        rho = spearmanr(column("engine_offer"), column("true_offer"))[0] if len(found) > 2 else 0
        print(
            f"| {action_id} | {len(found)} | {int(column('plain_now').sum())} "
            f"| {int(truth_pays.sum())} | {int(engine_pays.sum())} "
            f"| {int((truth_pays & engine_pays).sum())} | {rho:.2f} "
            f"| {sum(r['true_message'] > 0 for r in alone)} of {len(alone)} "
            f"| {statistics.median(column('true_share')):.3f}, "
            f"{statistics.median(column('rule_share')):.3f} "
            f"| {statistics.median(column('true_value')):.1f}, "
            f"{statistics.median(column('rule_value')):.1f} |"
        )
    if learned:
        print(
            "\nSpearman rank correlation with the truth: the offer's margin by the engine's "
            "test (uplift x value - P x cost) against the true margin of the offer alone; "
            "the uplift against the true purchase uplift; median uplift, and the truth's:\n"
        )
        print("| action | uplift from | offer margin | purchase uplift | median uplift (truth) |")
        print("|---|---|---:|---:|---|")
        for action_id, found in rows.items():
            if len(found) < 3:
                continue
            true_margin = [r["true_offer"] for r in found]
            true_uplift = [r["true_purchase_uplift"] for r in found]
            truth_median = statistics.median(true_uplift)
            for name, key in (("rule", "rule"), *((m, m) for m in learned)):
                offer_margin = [
                    r["engine_offer" if key == "rule" else f"{key}_offer"] for r in found
                ]
                uplift = [r["rule_uplift" if key == "rule" else key] for r in found]
                print(
                    f"| {action_id} | {name} | {spearmanr(offer_margin, true_margin)[0]:.2f} "
                    f"| {spearmanr(uplift, true_uplift)[0]:.2f} "
                    f"| {statistics.median(uplift):.4f} ({truth_median:.4f}) |"
                )


if __name__ == "__main__":
    main()
