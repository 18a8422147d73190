"""Issue 12 (bday12): a gift's valuation term by term against the truth, send by send.

Runs the engine (``nba``) in the closed loop's playbook world and, at every decision where
``--action`` (a message with a gift that costs on orders placed anyway: the birthday's
points) is eligible on a channel, sets the engine's terms of that (action, channel) beside
the simulator's own terms of the same message at the same send time
(:class:`~simulator.response.probabilities.ResponseTerms`):

* **seen**: the engine's P(seen) (:func:`nba.redemption.seen_share`) against the truth's
  ``deliver x open``;
* **orders held**: the engine's P(an order within the offer's days) against the truth's
  expected organic orders while held (``organic_rate x boost_days``, without the pull);
* **cost anyway**: the engine's ``redeemed_anyway x cost`` against the truth's cost on held
  organic orders (``seen x rate x boost x boost_days x coupon_redemption x cost``);
* **pull credit**: the engine's ``pull x redeemed_anyway x value`` (the orders the gift
  brings while held) against the truth's margin of the extra organic orders
  (``seen x rate x (boost - 1) x boost_days x basket x margin rate``);
* **message**: the rest of the engine's priority (the message's own response, less the
  channel's and the offer's cost on its own orders) against the truth's incremental margin
  less the two organic terms above;
* **total**: the engine's priority (without a deferral credit) against the truth's
  incremental margin.

Also counts, over the same run, the options Thompson sampling left out because their
expected priority (the mean of their draws) fell below doing nothing while their priority
did not (``--probe-exclusions``), with the posterior and ceiling behind each.

Run: ``PYTHONPATH=. python benchmarks/birthday_terms.py --customers 3000 --seed 0``
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import nba.arbitration as arbitration
from nba.arbitration import ChannelAssessment, ResponsePosterior
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.pipeline import build_pipeline
from nba.redemption import orders_per_day, redeemed_anyway, seen_share
from nba.scoring import REFERENCE_BASKET, REFERENCE_OFFER_DEPTH, gift_depth
from nba.screening import ActionCandidate
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.oracle import _Slots
from simulator.closed_loop.runner import run_policy
from simulator.closed_loop.truth import as_ns
from simulator.response.lookup import MessageBatch


@dataclass(frozen=True)
class Assessed:
    context: CustomerContext
    candidates: list[ActionCandidate]
    assessments: list[list[ChannelAssessment]]


class RecordingEngine(NextBestActionPolicy):
    """The engine, keeping the assessments of the decisions where the watched action is a
    candidate."""

    def __init__(self, *args: object, watched: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.watched = watched
        self.seen: list[Assessed] = []

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        out = super()._assess(context, candidates)
        if any(c.action.id == self.watched for c in candidates):
            self.seen.append(Assessed(context, list(candidates), out))
        return out


@dataclass
class Row:
    customer: str
    channel: str
    engine: dict[str, float]
    truth: dict[str, float]


def _truth_terms(world: object, slots: _Slots) -> object:
    truth = world.truth  # type: ignore[attr-defined]
    rows = slots.rows()
    codes = np.array(truth._message_codes(rows.messages, True), dtype=np.intp)
    batch = MessageBatch(
        np.array([truth._rows[rows.customer_id]] * len(rows.channels), dtype=np.intp),
        np.array([truth._channels[c] for c in rows.channels], dtype=np.intp),
        as_ns(rows.send_at),
        codes[:, 0],
        codes[:, 1],
        codes[:, 2],
        codes[:, 3],
        np.asarray(rows.recent_contacts, dtype=float),
    )
    return truth.response.true_response.terms(batch)


def _rows(engine: RecordingEngine, world: object) -> list[Row]:
    out: list[Row] = []
    scorer = engine.scorer
    boost = getattr(scorer, "offer_boost", 1.0)
    for seen in engine.seen:
        context = seen.context
        profile = context.profile
        slots = _Slots(context, seen.candidates, world.mapping)  # type: ignore[attr-defined]
        if not slots.pairs:
            continue
        terms_t = _truth_terms(world, slots)
        value = slots.value(world.truth)  # type: ignore[attr-defined]
        conv = terms_t.marginals().convert
        where = {(i, slot.channel): k for k, (i, slot, _) in enumerate(slots.pairs)}
        for i, candidate in enumerate(seen.candidates):
            if candidate.action.id != engine.watched:
                continue
            offer = candidate.action.offer
            assert offer is not None
            basket = profile.average_basket if profile.average_basket > 0 else REFERENCE_BASKET
            promo = min(1.0, max(0.0, profile.promo_sensitivity))
            pull = boost * promo * gift_depth(offer, basket) / REFERENCE_OFFER_DEPTH
            for slot, assessment in zip(candidate.slots, seen.assessments[i], strict=True):
                k = where.get((i, slot.channel))
                t = assessment.terms
                if k is None or t is None or assessment.reason is not None:
                    continue
                anyway = redeemed_anyway(profile, slot.channel, offer)
                gain = t.value * t.lever * t.fatigue
                cost_anyway = t.redeemed_anyway * t.anyway_offer_cost
                credit = pull * anyway * gain
                total = t.priority() - t.deferral_credit
                rate_e = orders_per_day(profile)
                e = {
                    "seen": seen_share(profile, slot.channel),
                    "rate": rate_e,
                    "orders_held": -math.expm1(-rate_e * 7.0),
                    "anyway": t.redeemed_anyway,
                    "cost_anyway": cost_anyway,
                    "credit": credit,
                    "message": total + cost_anyway - credit,
                    "total": total,
                    "pull": pull,
                    "response": t.propensity - pull * anyway,
                    "gross": (t.propensity - pull * anyway) * gain,
                    "offer_own": t.propensity * t.offer_cost,
                    "channel_cost": t.channel_cost,
                    "opportunity": t.opportunity_cost,
                    "fatigue": t.fatigue,
                    "value": t.value,
                }
                tt = terms_t  # ResponseTerms of every pair of the decision
                s = float(tt.deliver[k] * tt.open[k])
                rate = float(tt.organic_rate[k])
                bd = float(tt.boost_days[k])
                b = float(tt.boost[k])
                held = s * rate * b * bd
                cost_t = (
                    held * tt.coupon_redemption * float(tt.other_cost[k] + tt.usual_discount[k])
                )
                credit_t = (
                    s * rate * (b - 1.0) * bd * float(tt.usual_basket[k] * tt.usual_margin_rate[k])
                )
                margin = float(value.margin[k])
                tr = {
                    "seen": s,
                    "rate": rate,
                    "orders_held": rate * bd,
                    "anyway": held * tt.coupon_redemption,
                    "cost_anyway": cost_t,
                    "credit": credit_t,
                    "message": margin + cost_t - credit_t,
                    "total": margin,
                    "pull": b - 1.0,
                    "boost_days": bd,
                    "response": float(conv[k]),
                    "gross": float(conv[k] * tt.basket[k] * tt.margin_rate[k]),
                    "offer_own": float(conv[k] * (tt.discount[k] + tt.other_cost[k])),
                    "channel_cost": float(tt.contact_cost[k]),
                    "unsubscribe": float(value.unsubscribe_cost[k]),
                }
                out.append(Row(context.customer_id, slot.channel.value, e, tr))
    return out


@dataclass
class Exclusion:
    action: str
    channel: str
    priority: float
    expected: float
    bar: float
    posterior: str
    ceiling: float
    response: float


def _probe_exclusions(found: list[Exclusion]) -> None:
    """Wraps :func:`nba.arbitration._contenders` to record the options left out by the
    "no gamble on what is expected to lose to doing nothing" rule whose priority is above
    doing nothing's."""
    original = arbitration._contenders

    def wrapped(options, arms):  # type: ignore[no-untyped-def]
        live, protected = original(options, arms)
        kept = {a.index for a in live}
        bars = [a.worst for a in arms if options[a.index].candidate.action.is_do_nothing]
        if bars:
            bar = max(bars)
            for a in arms:
                o = options[a.index]
                if a.index in kept or a.posterior is None or o.priority < bar:
                    continue
                expected = math.fsum(a.values) / len(a.values)
                if expected - arbitration._credit(options, a) >= bar:
                    continue
                post = a.posterior
                text = (
                    f"Gamma({post.shape:.2f},{post.rate:.2f}) mean {post.mean:.3f}"
                    if isinstance(post, ResponsePosterior)
                    else f"{type(post).__name__} mean {post.mean:.3f}"
                )
                t = o.assessment.terms
                found.append(
                    Exclusion(
                        o.action_id,
                        "-" if o.slot is None else o.slot.channel.value,
                        o.priority,
                        expected,
                        bar,
                        text,
                        1.0 if t is None else t.ceiling,
                        0.0 if t is None else t.response,
                    )
                )
        return live, protected

    arbitration._contenders = wrapped


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--action", default="birthday")
    parser.add_argument("--probe-exclusions", action="store_true")
    parser.add_argument("--show", type=int, default=15, help="rows of the worst sends shown")
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
    excluded: list[Exclusion] = []
    if args.probe_exclusions:
        _probe_exclusions(excluded)
    engine = RecordingEngine(world.catalog, world.contact_policy, watched=args.action)
    run_policy(world, build_pipeline(world.catalog, world.contact_policy, policy=engine))
    rows = _rows(engine, world)
    names = ["seen", "rate", "orders_held", "anyway", "cost_anyway", "credit", "message", "total"]
    names += ["response", "gross", "offer_own", "channel_cost"]
    print(f"seed {args.seed}: {args.customers} customers; {args.action} assessed, by channel\n")
    print("| channel | group | n | " + " | ".join(f"{n} e / t" for n in names) + " |")
    print("|---|---|---:|" + "---|" * len(names))
    for channel in sorted({r.channel for r in rows}):
        mine = [r for r in rows if r.channel == channel]
        groups = {
            "all": mine,
            "truth > 0 >= engine": [r for r in mine if r.truth["total"] > 0 >= r.engine["total"]],
        }
        for label, group in groups.items():
            cells = " | ".join(
                f"{_mean([r.engine[n] for r in group]):.3f} / "
                f"{_mean([r.truth[n] for r in group]):.3f}"
                for n in names
            )
            print(f"| {channel} | {label} | {len(group)} | {cells} |")
    bad = sorted(
        (r for r in rows if r.truth["total"] > 0 >= r.engine["total"]),
        key=lambda r: r.engine["total"] - r.truth["total"],
    )
    print("\nworst: customer channel | engine terms | truth terms")
    for r in bad[: args.show]:
        e = ", ".join(f"{k} {v:.3f}" for k, v in r.engine.items())
        t = ", ".join(f"{k} {v:.3f}" for k, v in r.truth.items())
        print(f"{r.customer} {r.channel} | {e} | {t}")
    if args.probe_exclusions:
        print(f"\nexcluded with priority >= doing nothing: {len(excluded)}")
        print(Counter((x.action, x.channel) for x in excluded).most_common(15))
        for x in [x for x in excluded if x.action == args.action][: args.show]:
            print(
                f"  {x.action}/{x.channel}: priority {x.priority:.3f} expected {x.expected:.3f} "
                f"bar {x.bar:.3f} {x.posterior} ceiling {x.ceiling:.3f} response {x.response:.4f}"
            )
        gaps = [x.priority - x.expected for x in excluded]
        if gaps:
            print(f"  priority - expected: median {statistics.median(gaps):.3f}")


if __name__ == "__main__":
    main()
