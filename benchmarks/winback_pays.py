"""Issue 12 (winback6): why the engine refuses the win-back discount, term by term.

Builds the closed loop's playbook world and, for every customer eligible for
``reactivation_offer`` by e-mail at the cut (09:00 UTC on the cut day), prints the
offer-pays test's inputs as the engine sees them (the rule-based scorer's ``P(response)``,
the offer's uplift, the catalog's value, ``P(redeemed on an order placed anyway)``,
:mod:`nba.redemption`) beside the ground truth's (true incremental purchase probability,
the offer's true uplift, the true margin per incremental purchase,
:class:`~simulator.closed_loop.oracle.TruthScorer`), then the refusals by quartile of the
engine's ``uplift x value / ((P + P anyway) x cost)``, with the truth's net gain of the offer
(``uplift x value - P x cost``) in each: whether the engine's ranking finds the customers
the offer moves.

Run: ``PYTHONPATH=. python benchmarks/winback_pays.py --seed 0``
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics

from nba.budgets import UsageCounts
from nba.channels import Channel
from nba.context import CustomerContext
from nba.redemption import redeemed_anyway
from nba.scoring import RuleBasedScorer
from nba.screening import screen
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.oracle import TruthScorer

ACTION = "reactivation_offer"


def _spearman(xs: list[float], ys: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0.0] * len(values)
        for rank, i in enumerate(order):
            out[i] = float(rank)
        return out

    return statistics.correlation(ranks(xs), ranks(ys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = ClosedLoopConfig(
        n_customers=args.customers, history_days=400, days=30, seed=args.seed, playbook=True
    )
    world = build_world(config)
    truth, rule = TruthScorer(world.truth, world.mapping), RuleBasedScorer()
    now = world.cut + dt.timedelta(hours=9)
    email = Channel.EMAIL
    rows: list[dict[str, float]] = []
    for profile in world.build.profiles:
        context = CustomerContext(profile, now)
        screening = screen(world.catalog, world.contact_policy, context, UsageCounts())
        found = [c for c in screening.candidates if c.action.id == ACTION and email in c.channels]
        if not found:
            continue
        [candidate] = found
        offer = candidate.action.offer
        assert offer is not None
        [mine] = rule.score(context, [candidate])
        [true] = truth.score(context, [candidate])
        assert mine.uplift is not None and true.uplift is not None
        p, u, value = mine.propensity[email], mine.uplift[email], candidate.value
        anyway = redeemed_anyway(profile, email, offer)
        tp, tu, tv = true.propensity[email], true.uplift[email], true.expected_value
        rows.append(
            {
                "promo": profile.promo_sensitivity,
                "p": p,
                "u": u,
                "value": value,
                "anyway": anyway,
                "ratio": u * value / ((p + anyway) * offer.cost),
                "tp": tp,
                "tu": tu,
                "tvalue": tv,
                "tratio": tu * tv / (tp * offer.cost) if tp > 0 else 0.0,
                "tnet": tu * tv - tp * offer.cost,
            }
        )
    print(f"seed {args.seed}: {len(rows)} customers eligible for {ACTION} by e-mail at {now}")
    print("\n| term | engine (median) | truth (median) |\n|---|---:|---:|")
    pairs = [
        ("P(response) (truth: incremental purchase)", "p", "tp"),
        ("offer uplift", "u", "tu"),
        ("uplift / P(response)", None, None),
        ("value of a response", "value", "tvalue"),
        ("P(redeemed anyway)", "anyway", None),
        ("uplift x value / (redemptions x cost)", "ratio", "tratio"),
    ]
    for name, mine_key, true_key in pairs:
        if mine_key is None:
            engine = statistics.median(r["u"] / r["p"] for r in rows)
            real = statistics.median(r["tu"] / r["tp"] for r in rows if r["tp"] > 0)
        else:
            engine = statistics.median(r[mine_key] for r in rows)
            real = statistics.median(r[true_key] for r in rows) if true_key else float("nan")
        print(f"| {name} | {engine:.4f} | {real:.4f} |")
    rho = _spearman([r["ratio"] for r in rows], [r["tnet"] for r in rows])
    print(
        f"\npays: engine {sum(r['ratio'] >= 1 for r in rows)}, truth "
        f"{sum(r['tratio'] >= 1 for r in rows)} of {len(rows)}; Spearman of the engine's ratio "
        f"with the truth's net gain {rho:.2f}"
    )
    rows.sort(key=lambda r: r["ratio"])
    quarter = len(rows) // 4
    print(
        "\n| quartile of the engine's ratio | ratio | truth pays | truth net gain (mean) | "
        "promotion sensitivity (median) |\n|---|---|---:|---:|---:|"
    )
    for q in range(4):
        part = rows[q * quarter : (q + 1) * quarter] if q < 3 else rows[3 * quarter :]
        print(
            f"| {q + 1} | {part[0]['ratio']:.2f}-{part[-1]['ratio']:.2f} "
            f"| {sum(r['tratio'] >= 1 for r in part)} of {len(part)} "
            f"| {statistics.mean(r['tnet'] for r in part):+.3f} "
            f"| {statistics.median(r['promo'] for r in part):.2f} |"
        )


if __name__ == "__main__":
    main()
