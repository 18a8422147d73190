"""Issue 12: is the opportunity cost's P(trigger) calibrated? (nba.reserve)

Runs the engine in the closed loop's playbook world and, at every daily decision
(06:00 UTC) where a session-triggered reminder is neither eligible now nor in its
cool-down (nor in the 24 hours after it), records the probability the engine gives it
of a trigger within 24 hours (:func:`nba.reserve.trigger_rates`) and whether the
reminder did become eligible at one of the customer's decisions in those 24 hours.
Prints the mean predicted and observed rates, overall and by band of the prediction,
next to the earlier constant-share model (0.45 / 0.05 of the days with product
views) on the same decisions.

The engine's ``_assess`` is wrapped to read each decision's context and candidates
(the loop's own API has no hook there); the decisions are the engine's as they are.

Run: ``PYTHONPATH=. python benchmarks/reserve_calibration.py --customers 600 --days 14``
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from nba import engine
from nba.context import CustomerContext
from nba.reserve import trigger_rates
from nba.screening import ActionCandidate
from simulator.closed_loop import ClosedLoopConfig, build_world, compare_policies

#: The shares of days with product views the earlier model gave each reminder.
CONSTANT_SHARES = {"cart_reminder": 0.05, "browse_reminder": 0.45}
BANDS = ((0.0, 0.02), (0.02, 0.1), (0.1, 0.25), (0.25, 1.01))


@dataclass(frozen=True)
class Seen:
    customer: str
    at: dt.datetime
    eligible: frozenset[str]
    predicted: dict[str, float]  # P(a trigger within 24 h) per reminder
    constant: dict[str, float]  # the constant-share model's
    cooling: frozenset[str]  # in or within 24 h of its cool-down


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    seen: list[Seen] = []
    assess = engine.NextBestActionPolicy._assess

    def recording(
        self: engine.NextBestActionPolicy,
        context: CustomerContext,
        candidates: Sequence[ActionCandidate],
    ) -> list[list[engine.ChannelAssessment]]:
        reminders = list(self._session_reminders)
        rates = trigger_rates(context, reminders, self._trigger_hours)
        views = context.profile.browse_days_30d / 30.0
        seen.append(
            Seen(
                context.profile.customer_id,
                context.now_utc,
                frozenset(c.action.id for c in candidates),
                {
                    a.id: 0.0 if r is None else 1.0 - math.exp(-r.expected(24.0))
                    for a, r in zip(reminders, rates, strict=True)
                },
                {a.id: (1.0 - math.exp(-views)) * CONSTANT_SHARES[a.type] for a in reminders},
                frozenset(
                    a.id
                    for a in reminders
                    if (since := context.hours_since_sent(a.id)) is not None
                    and since < (a.cooldown_hours or 0.0) + 24.0
                ),
            )
        )
        return assess(self, context, candidates)

    engine.NextBestActionPolicy._assess = recording  # type: ignore[method-assign]
    try:
        sizes = {"n_customers": args.customers, "history_days": args.history_days}
        config = ClosedLoopConfig(**sizes, days=args.days, seed=args.seed, playbook=True)
        compare_policies(build_world(config), ["nba"], workers=1)
    finally:
        engine.NextBestActionPolicy._assess = assess  # type: ignore[method-assign]

    by_customer: dict[str, list[Seen]] = collections.defaultdict(list)
    for row in seen:
        by_customer[row.customer].append(row)
    reminders = sorted({r for row in seen for r in row.predicted})
    print(
        f"{args.customers} customers, {args.days} days after {args.history_days} of history, "
        f"seed {args.seed}: daily decisions where the reminder is not eligible nor cooling"
    )
    for reminder in reminders:
        rows: list[tuple[float, float, bool]] = []
        for decisions in by_customer.values():
            decisions.sort(key=lambda r: r.at)
            for i, row in enumerate(decisions):
                if row.at.hour != 6 or reminder in row.eligible or reminder in row.cooling:
                    continue
                end = row.at + dt.timedelta(hours=24)
                hit = any(
                    reminder in later.eligible for later in decisions[i + 1 :] if later.at <= end
                )
                rows.append((row.predicted[reminder], row.constant[reminder], hit))
        if not rows:
            continue
        n = len(rows)
        print(
            f"{reminder}: {n} decisions; observed {sum(h for *_, h in rows) / n:.4f}, "
            f"predicted {sum(p for p, _, _ in rows) / n:.4f} "
            f"(constant shares {sum(c for _, c, _ in rows) / n:.4f})"
        )
        for name, index in (("per customer", 0), ("constant shares", 1)):
            for low, high in BANDS:
                band = [r for r in rows if low <= r[index] < high]
                if band:
                    mean = sum(r[index] for r in band) / len(band)
                    observed = sum(r[2] for r in band) / len(band)
                    print(
                        f"  {name} P in [{low:g}, {high:g}): {len(band)} decisions, "
                        f"predicted {mean:.3f}, observed {observed:.3f}"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
