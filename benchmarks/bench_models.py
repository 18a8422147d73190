"""Decision-model benchmark: training time and quality of the offer-uplift, channel-propensity
and send-time models on the simulator, and the model scorer's throughput, same run.

Each model is evaluated on a time split against its baselines (random and
rule-based targeting; each channel's historical rate and the customer's
smoothed rate; the best global hour) and against the simulator's ground truth.
Then one customer's ~30 candidates x their channels are scored by
:class:`training.model_scorer.ModelScorer` (vectorised) and by a naive loop
that calls scikit-learn's ``predict_proba`` once per (candidate, channel)
pair, on the same fitted coefficients.

    .venv/bin/python benchmarks/bench_models.py [--customers 20000] [--days 90]
        [--max-examples 60000] [--decisions 2000]
    .venv/bin/python benchmarks/bench_models.py --send-time-only --seeds 11 12 13

The send-time model is compared with a LightGBM model of the hour
(:func:`training.send_time_boosted.boosted_send_time`) in the same run;
``--send-time-only`` runs just that comparison, once per simulator seed.

Prints Markdown to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
import warnings
from typing import Any

import numpy as np

from features.batch import point_in_time
from features.dataset import RetailDataset
from nba.actions import Action
from nba.channels import Channel
from nba.context import CustomerContext
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime
from simulator import SimulatorConfig, simulate
from training.contact_features import channel_features, profile_features
from training.examples import contact_examples, message_sends, sample_rows
from training.logistic import LinearScorer
from training.model_scorer import ModelScorer
from training.offer_selection import select_offers
from training.offers import OfferUpliftModel, offer_examples
from training.propensity import ChannelPropensityModel, evaluate_channels
from training.send_time import SendTimeModel, activity_counts, evaluate_send_time
from training.send_time_boosted import boosted_send_time
from training.truth import SimulatorTruth
from training.uplift_learners import BoostingConfig


def _log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _timed(label: str, timings: dict[str, float], fn: Any, *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    timings[label] = time.perf_counter() - started
    _log(f"{label}: {timings[label]:.1f} s")
    return out


def candidate_actions() -> list[Action]:
    """30 actions: 20 without an offer on up to four channels, 10 offers of every kind."""
    channel_sets = [
        ["email", "sms", "push", "postal"],
        ["email", "push"],
        ["email", "sms"],
        ["sms", "push", "postal"],
    ]
    actions = [
        Action.model_validate(
            {
                "id": f"content_{i}",
                "type": "content" if i % 2 else "product_recommendation",
                "channels": channel_sets[i % 4],
                "value": 2.0 + i,
            }
        )
        for i in range(20)
    ]
    kinds = [
        ("percent_discount", 10, 6.0),
        ("percent_discount", 20, 12.0),
        ("fixed_discount", 5, 5.0),
        ("fixed_discount", 15, 15.0),
        ("free_shipping", 0, 4.9),
        ("loyalty_points", 200, 2.0),
        ("loyalty_points", 500, 5.0),
        ("content", 0, 0.0),
        ("percent_discount", 15, 9.0),
        ("free_shipping", 0, 3.9),
    ]
    for i, (kind, value, cost) in enumerate(kinds):
        actions.append(
            Action.model_validate(
                {
                    "id": f"offer_{i}",
                    "type": "offer",
                    "channels": channel_sets[i % 4],
                    "value": 10.0,
                    "offer": {"id": f"o{i}", "kind": kind, "value": value, "cost": cost},
                }
            )
        )
    return actions


def candidates_for(context: CustomerContext, actions: list[Action]) -> list[ActionCandidate]:
    at = context.now
    out = []
    for action in actions:
        slots = tuple(
            ChannelSlot(Channel(c), SendTime(at + dt.timedelta(hours=i), at, "bench"))
            for i, c in enumerate(action.channels)
        )
        out.append(ActionCandidate(action, 5.0, None, slots))
    return out


def _sklearn_copy(scorer: LinearScorer) -> Any:
    """A scikit-learn LogisticRegression carrying the same coefficients (for the naive loop)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    model.coef_ = scorer.coef[None, :]
    model.intercept_ = np.array([scorer.intercept])
    model.classes_ = np.array([0, 1])
    return model


def naive_score(
    context: CustomerContext,
    candidates: list[ActionCandidate],
    propensity: ChannelPropensityModel,
    uplift: OfferUpliftModel,
    sk_propensity: Any,
    sk_treated: Any,
    sk_control: Any,
) -> int:
    """One ``predict_proba`` call per (candidate, channel) pair (per arm for offers)."""
    calls = 0
    profile = context.profile
    assert propensity.scorer is not None
    steps = (propensity.scorer.x_steps, propensity.scorer.y_steps)
    n_channels = len(propensity.channels)
    for candidate in candidates:
        for slot in candidate.slots:
            if propensity.knows(slot.channel):
                i = propensity.channels.index(slot.channel)
                onehot = np.zeros(n_channels)
                onehot[i] = 1.0
                per = channel_features(profile, slot.channel, slot.send.local)
                row = np.concatenate([profile_features(profile), onehot, np.kron(onehot, per)])
                raw = sk_propensity.predict_proba(row[None, :])[0, 1]
                np.interp(raw, *steps)
                calls += 1
            offer = candidate.action.offer
            if offer is not None and slot.channel in uplift.channels:
                row = np.concatenate(
                    [
                        profile_features(profile),
                        uplift._channel_part(profile, slot.channel),
                        uplift._offer_part(profile, slot.channel, offer.kind, offer.cost),
                    ]
                )
                sk_treated.predict_proba(row[None, :])
                sk_control.predict_proba(row[None, :])
                calls += 2
    return calls


def send_time_comparison(
    data: RetailDataset, truth: SimulatorTruth, timings: dict[str, float]
) -> tuple[SendTimeModel, dict[str, dict[str, float]]]:
    """The shrunk hour-of-week model and the LightGBM one, fitted and measured on the
    simulator's true peaks in the same run: ``(model, strategy -> channel -> share)``."""
    send_time = _timed("send time: fit", timings, SendTimeModel().fit, data)
    _, counts = activity_counts(data)
    boosted = _timed("send time: LightGBM fit", timings, boosted_send_time, send_time, counts)
    shares = dict(evaluate_send_time(send_time, truth.customers).within_one_hour)
    shares["lightgbm"] = evaluate_send_time(boosted, truth.customers).within_one_hour["model"]
    return send_time, shares


def send_time_markdown(shares: dict[str, dict[str, float]]) -> str:
    channels = list(shares["model"])
    lines = [
        "| strategy | " + " | ".join(channels) + " | mean |",
        "|---|" + "---:|" * (len(channels) + 1),
    ]
    for name, per in shares.items():
        values = " | ".join(f"{per[c]:.3f}" for c in channels)
        lines.append(f"| {name} | {values} | {np.mean(list(per.values())):.3f} |")
    return "\n".join(lines)


def send_time_only(customers: int, days: int, seeds: list[int]) -> None:
    means: dict[str, list[float]] = {}
    for seed in seeds:
        timings: dict[str, float] = {}
        config = SimulatorConfig(n_customers=customers, days=days, seed=seed)
        sim = _timed(f"simulate (seed {seed})", timings, simulate, config)
        data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
        _, shares = send_time_comparison(data, SimulatorTruth.from_simulation(sim), timings)
        print(
            f"\nSeed {seed} ({customers:,} customers x {days} days; seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
            + ")\n"
        )
        print(send_time_markdown(shares))
        for name, per in shares.items():
            means.setdefault(name, []).append(float(np.mean(list(per.values()))))
    print("\n| strategy | " + " | ".join(f"seed {s}" for s in seeds) + " | median |")
    print("|---|" + "---:|" * (len(seeds) + 1))
    for name, values in means.items():
        cells = " | ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {cells} | {statistics.median(values):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--max-examples", type=int, default=60_000)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--send-time-only", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[11])
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.send_time_only:
        send_time_only(args.customers, args.days, args.seeds)
        return
    timings: dict[str, float] = {}

    config = SimulatorConfig(n_customers=args.customers, days=args.days, seed=11)
    sim = _timed("simulate", timings, simulate, config)
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    truth = SimulatorTruth.from_simulation(sim)
    _log(f"{len(data.events):,} events")

    sends = _timed("sends + labels", timings, message_sends, data.events)
    sample = sample_rows(sends, args.max_examples, 0)
    channel_examples = _timed(
        "channels: point-in-time profiles", timings, contact_examples, data, sample
    )
    channel_eval, _ = _timed(
        "channels: evaluate (fit + baselines + LightGBM)",
        timings,
        evaluate_channels,
        channel_examples,
        truth=truth.engagement,
        boosted=BoostingConfig(),
    )
    propensity = _timed("channels: fit", timings, ChannelPropensityModel().fit, channel_examples)

    uplift_examples = _timed(
        "offers: groups + point-in-time profiles",
        timings,
        offer_examples,
        data,
        args.max_examples,
    )
    offer_eval = _timed(
        "offers: choose on validation, measure on the test (every learner + rules)",
        timings,
        select_offers,
        uplift_examples,
        data.offers,
        truth=truth.uplift,
    )
    uplift = _timed("offers: fit", timings, OfferUpliftModel().fit, uplift_examples, data.offers)

    send_time, send_shares = send_time_comparison(data, truth, timings)

    # scoring throughput
    scorer = ModelScorer(propensity, uplift, send_time)
    actions = candidate_actions()
    picks = np.random.default_rng(0).choice(len(channel_examples), size=args.decisions)
    contexts = []
    for profile in point_in_time(data, channel_examples.rows.iloc[picks]):
        assert profile.as_of is not None
        contexts.append(CustomerContext(profile, profile.as_of))
    batches = [(c, candidates_for(c, actions)) for c in contexts]
    pairs = sum(len(cand.slots) for cand in batches[0][1])
    latencies = []
    for context, candidates in batches:
        started = time.perf_counter()
        scorer.score(context, candidates)
        latencies.append(time.perf_counter() - started)
    assert propensity.scorer is not None and uplift.treated and uplift.control
    sk = (
        _sklearn_copy(propensity.scorer),
        _sklearn_copy(uplift.treated),
        _sklearn_copy(uplift.control),
    )
    naive_n = min(200, len(batches))
    started = time.perf_counter()
    calls = 0
    for context, candidates in batches[:naive_n]:
        calls += naive_score(context, candidates, propensity, uplift, *sk)
    naive_seconds = (time.perf_counter() - started) / naive_n
    fast = statistics.mean(latencies)
    p50, p99 = np.percentile(latencies, [50, 99])

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    print()
    print(
        f"### Decision models on the simulator ({args.customers:,} customers x {args.days} days, "
        f"{len(data.events):,} events)\n"
    )
    print(f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}.\n")
    print("| step | seconds |\n|---|---:|")
    for label, seconds in timings.items():
        print(f"| {label} | {seconds:.1f} |")
    print()
    print(channel_eval.markdown())
    print()
    print(offer_eval.markdown())
    print()
    print("Send time: share of customers x open days within one hour of the true peak\n")
    print(send_time_markdown(send_shares))
    print()
    print(
        f"| scoring one customer: 30 candidates, {pairs} (candidate, channel) pairs | "
        f"ms per decision |\n|---|---:|\n"
        f"| `ModelScorer.score` (vectorised), mean of {len(batches):,} | {fast * 1e3:.3f} |\n"
        f"| `ModelScorer.score` p50 / p99 | {p50 * 1e3:.3f} / {p99 * 1e3:.3f} |\n"
        f"| naive loop, one `predict_proba` per pair and arm ({calls // naive_n} calls), "
        f"mean of {naive_n} | {naive_seconds * 1e3:.3f} |\n"
        f"| speed-up | {naive_seconds / fast:.0f}x |"
    )


if __name__ == "__main__":
    main()
