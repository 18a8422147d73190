"""Issue 12 (value10): the discounted second cart reminder decision by decision, against the truth.

Runs the engine (``nba``, the rule-based scorer) in the closed loop's playbook world for
one seed and, at every decision where ``cart_reminder_2_discount`` is a candidate on a
channel, records the engine's offer-pays terms on that channel (P(response), the offer's
uplift, P(redeemed anyway), the value, the cost on the message's own orders and on orders
placed anyway, the slot's late factor, whether the offer pays) and the truth's
incremental margin of the discounted reminder and of the plain one (``cart_reminder_2``)
at the same slot (:class:`~simulator.closed_loop.truth.TrueValue`). It prints the
engine's discount sends with their true margins, and over the decisions: how many times
the offer-pays test passed or refused, and the truth's margin of the discount over the
plain reminder in each group (a test that passes where the discount loses against the
plain reminder gives money away).

A read-only diagnostic (it changes no decision); ``benchmarks/scenario_pairs.py`` pairs
the sends of two policies, ``benchmarks/channel_choice.py`` the engine's channels.

Run: ``PYTHONPATH=. python benchmarks/discount_sends.py --seed 2`` (another tree's engine:
``PYTHONPATH=TREE:. python benchmarks/discount_sends.py``)
"""

from __future__ import annotations

import argparse

import pandas as pd

from benchmarks.action_valuation import RecordingEngine
from nba.ageing import fading_of
from nba.pipeline import build_pipeline
from nba.reserve import delay_factor
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.oracle import _Slots
from simulator.closed_loop.runner import run_policy

DISCOUNT, PLAIN = "cart_reminder_2_discount", "cart_reminder_2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    world = build_world(
        ClosedLoopConfig(
            n_customers=args.customers,
            history_days=args.history_days,
            days=args.days,
            seed=args.seed,
            playbook=True,
        )
    )
    engine = RecordingEngine(world.catalog, world.contact_policy, watched=frozenset({DISCOUNT}))
    run = run_policy(world, build_pipeline(world.catalog, world.contact_policy, policy=engine))
    per = 1000.0 / len(world.customer_ids)
    sent = run.contacts[run.contacts["action_id"] == DISCOUNT]
    print(
        f"seed {args.seed}: {args.customers} customers x {args.days} days after "
        f"{args.history_days}; the engine's discounted reminders: {len(sent)}, true margin "
        f"{sent['margin'].sum() * per:+.2f} per 1,000 customers\n"
    )
    rows = []
    for seen in engine.seen:
        context = seen.context
        slots = _Slots(context, seen.candidates, world.mapping)
        value = slots.value(world.truth)
        index = {(i, slot.channel): k for k, (i, slot, _) in enumerate(slots.pairs)}
        ids = [c.action.id for c in seen.candidates]
        d = ids.index(DISCOUNT)
        plain = ids.index(PLAIN) if PLAIN in ids else None
        candidate = seen.candidates[d]
        fading = fading_of(candidate.action.type, context.profile)
        for slot, assessed in zip(candidate.slots, seen.assessments[d], strict=True):
            terms, k = assessed.terms, index.get((d, slot.channel))
            if terms is None or k is None:
                continue
            kp = None if plain is None else index.get((plain, slot.channel))
            rows.append(
                {
                    "customer": context.customer_id,
                    "at": f"{context.now_utc:%m-%d %H:%M}",
                    "channel": slot.channel.value,
                    "late": 1.0 if fading is None else delay_factor(context, slot, fading),
                    "P": terms.propensity,
                    "uplift": terms.offer_uplift,
                    "anyway": terms.redeemed_anyway,
                    "value": terms.value,
                    "cost": terms.offer_cost,
                    # (a tree before value10 has one cost for both)
                    "anyway_cost": getattr(terms, "anyway_offer_cost", terms.offer_cost),
                    "pays": terms.offer_pays,
                    "truth_discount": float(value.margin[k]),
                    "truth_plain": None if kp is None else float(value.margin[kp]),
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        print("the discount was never a candidate")
        return
    frame["gain"] = frame["truth_discount"] - frame["truth_plain"]
    print("| offer-pays test | (decision, channel) pairs | truth: discount - plain, per 1,000 |")
    print("|---|---:|---:|")
    for pays, group in frame.groupby("pays"):
        known = group["gain"].dropna()
        print(
            f"| {'passes' if pays else 'refuses'} | {len(group)} "
            f"| {known.sum() * per:+.2f} ({(known > 0).sum()} of {len(known)} above 0) |"
        )
    passed = frame[frame["pays"]]
    if len(passed):
        print("\nWhere it passes:\n")
        columns = list(passed.columns)
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        for row in passed.itertuples(index=False):
            print("| " + " | ".join(_cell(v) for v in row) + " |")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.3f}"  # NaN: no plain reminder there
    return str(value)


if __name__ == "__main__":
    main()
