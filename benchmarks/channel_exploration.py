"""Issue 12 (misfire, gap 4): how often does the engine explore SMS for a fresh cart?

Simulates a retailer, builds every profile at the end of its history with the real
feature code, keeps the customers with a cart 1-12 h old and gives each consent to
e-mail, SMS and push (the situation in question), then decides each once with the
example catalog and contact policy, exactly as the API does
(:func:`nba.pipeline.build_pipeline`, Thompson sampling), under the response
statistics the API would pass:

* ``greedy``: no exploration (each customer's highest expected priority);
* ``none``: the API without statistics (``NBA_RESPONSE_STATS=false``): the engine's
  own prior for every pair;
* ``prior``: the API with statistics and no evidence yet (Gamma(2, 2) per action,
  channel and segment, :data:`features.online.response_stats.PRIOR`);
* ``n=<k>``: after ``k`` expected responses per pair that confirmed the scorer
  (Gamma(2 + k, 2 + k): the same mean, a narrower belief).

For each it prints the exact probability of the cart reminder going by each channel
(the logged propensities, averaged over customers), the mean priority per channel
(from the reasons), and the expected regret of exploring: the best expected priority
less the expected priority of the pick, with the part of it that is SMS's extra cost.

Decided at ``--hour`` UTC on the last day of the history (the retailer's customers
live in European time zones: mid-afternoon for most, within every channel's hours).

Run: ``PYTHONPATH=. python benchmarks/channel_exploration.py --customers 20000 --days 30``
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import re
import statistics
from collections.abc import Mapping
from pathlib import Path

from features.batch import build_profiles
from features.dataset import RetailDataset
from nba.arbitration import Posterior, ResponsePosterior, stats_key
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy, parse_contact_policy
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.pipeline import build_pipeline
from simulator import SimulatorConfig, simulate

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"
OUTBOUND = (Channel.EMAIL, Channel.SMS, Channel.PUSH)
PRIORITY = re.compile(r"(?:priority|below) ([-0-9.e+]+) on (\w+)")


def simulated(
    description: str | None, customers: int, days: int, **more: dict[str, object]
) -> tuple[argparse.Namespace, RetailDataset, Catalog, ContactPolicy]:
    """The command line (``--customers``, ``--days``, ``--seed`` and ``more``), the retailer
    it simulates, and the example catalog and contact policy."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--customers", type=int, default=customers)
    parser.add_argument("--days", type=int, default=days)
    parser.add_argument("--seed", type=int, default=7)
    for name, options in more.items():
        parser.add_argument(name, **options)  # type: ignore[arg-type]
    args = parser.parse_args()
    sim = simulate(SimulatorConfig(n_customers=args.customers, days=args.days, seed=args.seed))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    catalog = parse_catalog((EXAMPLES / "retailer_catalog.yaml").read_text())
    policy = parse_contact_policy((EXAMPLES / "contact_policy.yaml").read_text())
    return args, data, catalog, policy


def main() -> None:
    hour = {"type": int, "default": 15, "help": "UTC hour of the last day to decide at"}
    args, data, catalog, policy = simulated(__doc__, 3000, 60, **{"--hour": hour})
    last = data.events["timestamp"].max()
    now = last.normalize().to_pydatetime().replace(hour=args.hour)
    if now > last:
        now -= dt.timedelta(days=1)
    build = build_profiles(data, as_of=now, workers=1)
    pipeline = build_pipeline(catalog, policy)
    greedy = build_pipeline(
        catalog, policy, policy=NextBestActionPolicy(catalog, policy, exploration=False)
    )
    everyone = {c: True for c in OUTBOUND}
    carts = [
        dataclasses.replace(p, consents={**p.consents, **everyone})
        for p in build.profiles
        if p.cart_items and p.cart_age_hours is not None and 1 <= p.cart_age_hours <= 12
    ]
    costs = {c: policy.rules(c).cost for c in OUTBOUND}
    print(f"{len(carts)} fresh carts (1-12 h), all of e-mail, SMS and push consented, at {now}")
    print(f"channel costs: {', '.join(f'{c.value} {v:g}' for c, v in costs.items())}")
    keys = [stats_key(a.id, c) for a in catalog.actions for c in a.channels]
    variants: dict[str, Mapping[str, Posterior]] = {"greedy": {}, "none": {}}
    for k in (0, 10, 100, 1000):
        name = "prior" if k == 0 else f"n={k}"
        variants[name] = {key: ResponsePosterior(2.0 + k, 2.0 + k) for key in keys}
    print(
        "| statistics | reminders | P(email) | P(push) | P(sms) "
        "| priority e-mail / push / sms | regret | of it SMS's extra cost |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for name, stats in variants.items():
        shares: dict[str, list[float]] = {c.value: [] for c in OUTBOUND}
        priorities: dict[str, list[float]] = {c.value: [] for c in OUTBOUND}
        regrets, sms_cost, reminders = [], [], 0
        for i, profile in enumerate(carts):
            decider = greedy if name == "greedy" else pipeline
            decision = decider.route(
                CustomerContext(profile, now), stats=stats, seed=f"{args.seed}:{i}"
            ).decision
            chosen = decision.actions[0]
            if chosen.action_id != "cart_reminder_1":
                continue
            reminders += 1
            [explained] = [
                c for c in decision.explanation.chosen if c.action_id == chosen.action_id
            ]
            text = " ".join(f.detail for f in explained.factors if f.name == "channel")
            prio = {c: float(p) for p, c in PRIORITY.findall(text)}
            assert chosen.channel is not None
            prio.setdefault(chosen.channel.value, float(chosen.priority))
            p_of = {
                o.channel: o.probability or 0.0
                for o in decision.options
                if o.action_id == chosen.action_id
            }
            mass = sum(p_of.values())
            for c in OUTBOUND:
                shares[c.value].append(p_of.get(c.value, 0.0) / mass if mass else 0.0)
                if c.value in prio:
                    priorities[c.value].append(prio[c.value])
            best = max(prio.values())
            expected = sum(p_of.get(c, 0.0) / mass * v for c, v in prio.items()) if mass else best
            regrets.append(best - expected)
            extra = costs[Channel.SMS] - min(costs.values())
            sms_cost.append(p_of.get("sms", 0.0) / mass * extra if mass else 0.0)
        mean = lambda xs: statistics.fmean(xs) if xs else float("nan")  # noqa: E731
        print(
            f"| {name} | {reminders} | {mean(shares['email']):.3f} | {mean(shares['push']):.3f} "
            f"| {mean(shares['sms']):.3f} | {mean(priorities['email']):.3f} / "
            f"{mean(priorities['push']):.3f} / {mean(priorities['sms']):.3f} "
            f"| {mean(regrets):.4f} | {mean(sms_cost):.4f} |"
        )


if __name__ == "__main__":
    main()
