"""Offer-uplift benchmark: every learner against the fixed rules on simulated retailers,
over several seeds, with the simulator's true uplift; channel propensity against LightGBM.

For each seed a retailer is simulated, its randomised offer groups get point-in-time
profiles (:func:`training.offers.offer_examples`) and
:func:`training.offer_selection.select_offers` runs the whole protocol (learners and
rules fitted on the earliest 60 % of sends, chosen on the next 20 %, measured on the
latest 20 %), with the true uplift of every held-out send. The goal of issue 14: a
learned model's Spearman with the true uplift and the true uplift of its top 30 %, both
above the best fixed rule's, median over the seeds; both are reported over all held-out
sends and among the sends whose offer has a cost (the goal's reading: offers of no value
have a true uplift of 0 and fill the bottom of any sensible ranking, so over all sends
the top 30 % saturates). With ``--channels N`` the channel
propensity model and a LightGBM classifier on the same features are compared on the
same time split of N sampled sends of each seed.

    .venv/bin/python benchmarks/bench_uplift.py [--customers 20000] [--days 90]
        [--seeds 11 12 13] [--max-examples 60000] [--channels 30000]
    .venv/bin/python benchmarks/bench_uplift.py --scoring-only [--customers 20000]
        [--max-examples 15000]

``--scoring-only`` times one customer's scoring (10 channel x offer pairs,
``OfferUpliftModel.predict``, what the engine's scorer calls) by the logistic
T-learner and two boosted learners, alternated, median of 5 rounds of 200 customers.

Prints Markdown to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

from features.batch import point_in_time
from features.dataset import RetailDataset
from simulator import SimulatorConfig, simulate
from training.examples import contact_examples, message_sends, sample_rows
from training.offer_selection import BASELINES, OfferSelection, select_offers
from training.offers import offer_examples
from training.propensity import ChannelEvaluation, evaluate_channels
from training.truth import SimulatorTruth
from training.uplift_learners import BoostingConfig

RULES = ("rule", "value_share")


def _log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


#: Columns of the median table: (UpliftEvaluation attribute, heading).
_TRUTH_COLUMNS = (
    ("truth_spearman", "Spearman vs true uplift"),
    ("truth_top30", "true uplift of top 30 % (old form)"),
    ("truth_spearman_valued", "Spearman, offers with a cost"),
    ("truth_top30_valued", "true uplift of top 30 %, offers with a cost (goal)"),
)


def _values(runs: list[OfferSelection], metric: str, name: str) -> list[float]:
    return [getattr(r.test, metric)[name] for r in runs if name in getattr(r.test, metric)]


def _median_table(runs: list[OfferSelection]) -> str:
    names = [n for n in runs[0].test.qini if n != "random"] + ["random"]
    lines = [
        "| model | "
        + " | ".join(h for _, h in _TRUTH_COLUMNS)
        + " | R-loss gain | Qini | fit seconds | chosen on validation |",
        "|---|" + "---:|" * (len(_TRUTH_COLUMNS) + 4),
    ]

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.4g}" if values else "-"

    for name in names:
        truth = [med(_values(runs, metric, name)) for metric, _ in _TRUTH_COLUMNS]
        qini = [r.test.qini[name] for r in runs if name in r.test.qini]
        gain = [r.test.r_gain[name] for r in runs if name in r.test.r_gain]
        secs = [r.seconds[name] for r in runs if name in r.seconds]
        chosen = sum(r.chosen.method == name for r in runs)
        lines.append(
            f"| {name} | {' | '.join(truth)} | {med(gain)} | {med(qini)} | {med(secs)} "
            f"| {chosen}/{len(runs)} |"
        )
    return "\n".join(lines)


def _goal(runs: list[OfferSelection], seeds: list[int]) -> str:
    """Each truth metric: the best fixed rule's median, the learners above it, and per seed
    the best learner against the best rule."""
    lines = []
    learners = [n for n in runs[0].test.qini if n not in (*BASELINES, "champion")]
    for metric, label in _TRUTH_COLUMNS:

        def median(name: str, metric: str = metric) -> float:
            values = _values(runs, metric, name)
            return statistics.median(values) if values else float("nan")

        best_rule = max(median(r) for r in RULES)
        # above by more than float noise: a tie (a saturated top 30 %) is not a win
        winners = [n for n in learners if median(n) > best_rule + 1e-3 * abs(best_rule)]
        per_seed = "; ".join(
            f"seed {seed}: best rule {max(getattr(r.test, metric)[b] for b in RULES):.4g}, "
            + ", ".join(f"{n} {getattr(r.test, metric)[n]:.4g}" for n in winners)
            for seed, r in zip(seeds, runs, strict=True)
        )
        lines.append(
            f"- {label}: best fixed rule (median) {best_rule:.4g}; learners above it: "
            + (", ".join(f"{n} ({median(n):.4g})" for n in winners) or "none")
            + (f" [{per_seed}]" if winners else "")
        )
    return "\n".join(lines)


def _channels(evaluations: list[ChannelEvaluation]) -> str:
    names = list(evaluations[0].results)
    lines = [
        "| model | AUC | log loss | Brier | ECE | Spearman vs true P(open) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        ms = [e.results[name] for e in evaluations]
        rho = [e.truth_correlation[name] for e in evaluations if name in e.truth_correlation]
        lines.append(
            f"| {name} | {statistics.median(m.auc for m in ms):.4f} | "
            f"{statistics.median(m.log_loss for m in ms):.4f} | "
            f"{statistics.median(m.brier for m in ms):.4f} | "
            f"{statistics.median(m.ece for m in ms):.4f} | "
            + (f"{statistics.median(rho):.3f} |" if rho else "- |")
        )
    return "\n".join(lines)


def scoring(customers: int, days: int, max_examples: int) -> None:
    """Per-customer scoring time of the logistic and boosted learners, alternated."""
    from nba.actions import OfferKind
    from nba.channels import Channel
    from training.offers import OfferConfig, OfferSpec, OfferUpliftModel

    sim = simulate(SimulatorConfig(n_customers=customers, days=days, seed=11))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    examples = offer_examples(data, max_examples, 0)
    methods = ("logistic_coupled", "proportional_lgbm", "x_learner_lgbm")
    models = {
        m: OfferUpliftModel(OfferConfig(method=m)).fit(examples, data.offers) for m in methods
    }
    channels = [c for c in (Channel.EMAIL, Channel.SMS) if c in models[methods[0]].channels]
    pairs = [(channels[i % len(channels)], 5.0 + i) for i in range(10)]
    specs = [OfferSpec(OfferKind.PERCENT_DISCOUNT, cost) for _, cost in pairs]
    profiles = point_in_time(data, examples.rows.iloc[:200])
    runs: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(5):
        for name, model in models.items():
            started = time.perf_counter()
            for profile in profiles:
                model.predict(profile, [c for c, _ in pairs], specs)
            runs[name].append((time.perf_counter() - started) / len(profiles) * 1e3)
    load = os.getloadavg()
    print(f"\nScoring one customer, 10 (channel, offer) pairs; load {load[0]:.1f}\n")
    print("| learner | ms per customer (median of 5) | vs logistic |\n|---|---:|---:|")
    base = statistics.median(runs[methods[0]])
    for name, values in runs.items():
        ms = statistics.median(values)
        print(f"| {name} | {ms:.3f} | {ms / base:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    parser.add_argument("--max-examples", type=int, default=60_000)
    parser.add_argument("--channels", type=int, default=0, help="sends for the channel check")
    parser.add_argument("--scoring-only", action="store_true", help="time scoring only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.scoring_only:
        scoring(args.customers, args.days, args.max_examples)
        return
    runs: list[OfferSelection] = []
    channel_runs: list[ChannelEvaluation] = []
    started = time.perf_counter()
    for seed in args.seeds:
        sim = simulate(SimulatorConfig(n_customers=args.customers, days=args.days, seed=seed))
        data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
        truth = SimulatorTruth.from_simulation(sim)
        _log(f"seed {seed}: {len(data.events):,} events")
        examples = offer_examples(data, args.max_examples, 0)
        _log(f"seed {seed}: {len(examples):,} offer-group sends with profiles")
        selection = select_offers(examples, data.offers, truth=truth.uplift, report=_log)
        runs.append(selection)
        print(f"\n#### Seed {seed}\n\n{selection.markdown()}\n", flush=True)
        if args.channels:
            sends = sample_rows(message_sends(data.events), args.channels, 0)
            evaluation, _ = evaluate_channels(
                contact_examples(data, sends), truth=truth.engagement, boosted=BoostingConfig()
            )
            channel_runs.append(evaluation)
            print(evaluation.markdown(), flush=True)
    load = os.getloadavg()
    print(
        f"\n### Offer uplift over {len(runs)} simulated retailers ({args.customers:,} customers x "
        f"{args.days} days, seeds {', '.join(map(str, args.seeds))}; medians)\n"
    )
    print(
        f"Machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} at the end; {time.perf_counter() - started:.0f} s in all.\n"
    )
    print(_median_table(runs))
    print()
    print(_goal(runs, args.seeds))
    if channel_runs:
        print(f"\nChannel propensity, medians over the seeds ({args.channels:,} sends each):\n")
        print(_channels(channel_runs))


if __name__ == "__main__":
    main()
