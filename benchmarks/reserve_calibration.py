"""Issue 12: is the opportunity cost's P(trigger) calibrated? (nba.reserve)

Runs the engine in the closed loop's playbook world and, at every daily decision
(06:00 UTC), for each session-triggered reminder of the catalog (the browse and the cart
reminder), records what the engine would use to value keeping a channel free for it,
on the decisions where the engine does value it:

* the customer may get it (a consented outbound channel of the reminder, as
  ``NextBestActionPolicy._reminder_candidates`` asks), its rule is not true now and it is
  not in its cool-down (nor in the 24 hours after it);
* **pending**: its trigger already happened and :func:`nba.reserve.pending_due` says when
  it becomes due (certain); else **rate**: P(a trigger within 24 h) from
  :func:`nba.reserve.trigger_rates`.

Observed: the reminder's rule (and its offer's) held, out of its cool-down, at one of the
customer's decisions in the next 24 hours. That is the event the engine predicts: a
trigger. Whether a channel was then free is the reserve's own arithmetic (what a send
takes from it), not part of P(trigger).

Prints, per reminder, the mean predicted and observed rates and the table by decile of
the prediction (observed with a Wilson 95 % interval), the same by segment (lifecycle
state, journey phase, days since the last visit: is the store-wide shrinkage prior off
for some segment?), the pending path's share that
came, and, for comparison with the earlier measurement, the old definition (every
customer, consented or not; observed only when the reminder was a candidate after
consent and the contact policy), which counted as "not triggered" the customers who
could never get the reminder and the triggers a spent cap hid.

The engine's ``_assess`` is wrapped to read each decision's context and candidates
(the loop's own API has no hook there); the decisions are the engine's as they are.

Run: ``PYTHONPATH=. python benchmarks/reserve_calibration.py --customers 600 --days 14 --seeds 0,1``
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from nba import engine
from nba.actions import Action
from nba.context import ContextScope, CustomerContext
from nba.profile import CustomerProfile
from nba.reserve import pending_due, trigger_rates
from nba.screening import ActionCandidate
from simulator.closed_loop import ClosedLoopConfig, build_world, compare_policies

DECILES = 10


@dataclass(frozen=True)
class Seen:
    """One decision of one customer, for every session reminder of the catalog."""

    customer: str
    at: dt.datetime
    candidates: frozenset[str]  # reminders among the decision's candidates
    triggered: frozenset[str]  # reminders whose rule holds, out of their cool-down
    consented: frozenset[str]  # reminders the customer may get on an outbound channel
    predicted: dict[str, float]  # P(a trigger within 24 h), rate path
    due: dict[str, float | None]  # hours until due, pending path
    cooling: frozenset[str]  # in or within 24 h of its cool-down
    segment: dict[str, str]  # lifecycle, journey phase, days since the last visit (binned)


def _holds(action: Action, context: CustomerContext, scope: ContextScope) -> bool:
    rules = [action.eligibility] + ([action.offer.eligibility] if action.offer else [])
    if any(rule is not None and rule.evaluator(scope) is not True for rule in rules):
        return False
    since = context.hours_since_sent(action.id)
    return since is None or since >= (action.cooldown_hours or 0.0)


#: Days since the last visit, binned for the table by segment (upper bounds).
VISIT_BINS = (1.0, 7.0, 30.0, 90.0, math.inf)


def segment_of(profile: CustomerProfile) -> dict[str, str]:
    """The segments a customer's predicted rate is compared within: lifecycle state,
    journey phase and days since the last visit."""
    days = profile.days_since_last_visit
    visit = "unknown" if days is None else next(f"<= {b:g}" for b in VISIT_BINS if days <= b)
    return {
        "lifecycle": profile.lifecycle_state.value,
        "phase": profile.journey_phase.value,
        "days since visit": visit,
    }


def record(seed: int, customers: int, days: int, history_days: int) -> list[Seen]:
    """Every decision of the engine over one closed-loop run, with its reminders' numbers."""
    seen: list[Seen] = []
    assess = engine.NextBestActionPolicy._assess

    def recording(
        self: engine.NextBestActionPolicy,
        context: CustomerContext,
        candidates: Sequence[ActionCandidate],
    ) -> list[list[engine.ChannelAssessment]]:
        reminders = list(self._session_reminders)
        rates = trigger_rates(context, reminders, self._trigger_hours)
        scope = ContextScope(context)
        rules = self.contact_policy.rules
        profile = context.profile
        seen.append(
            Seen(
                profile.customer_id,
                context.now_utc,
                frozenset(c.action.id for c in candidates),
                frozenset(a.id for a in reminders if _holds(a, context, scope)),
                frozenset(
                    a.id
                    for a in reminders
                    if any(
                        profile.consented(k) and not rules(k).requires_session for k in a.channels
                    )
                ),
                {
                    a.id: 0.0 if r is None else 1.0 - math.exp(-r.expected(24.0))
                    for a, r in zip(reminders, rates, strict=True)
                },
                {a.id: pending_due(context, a) for a in reminders},
                frozenset(
                    a.id
                    for a in reminders
                    if (since := context.hours_since_sent(a.id)) is not None
                    and since < (a.cooldown_hours or 0.0) + 24.0
                ),
                segment_of(profile),
            )
        )
        return assess(self, context, candidates)

    engine.NextBestActionPolicy._assess = recording  # type: ignore[method-assign]
    try:
        config = ClosedLoopConfig(
            n_customers=customers, history_days=history_days, days=days, seed=seed, playbook=True
        )
        compare_policies(build_world(config), ["nba"], workers=1)
    finally:
        engine.NextBestActionPolicy._assess = assess  # type: ignore[method-assign]
    return seen


@dataclass
class Rows:
    """(predicted, observed) per path, and the old definition's rows."""

    rate: list[tuple[float, bool]]
    pending: list[tuple[float, bool]]
    old: list[tuple[float, bool]]
    #: the rate path's rows with the customer's segments
    segmented: list[tuple[dict[str, str], float, bool]]


def rows_of(seen: list[Seen], reminder: str) -> Rows:
    by_customer: dict[str, list[Seen]] = collections.defaultdict(list)
    for row in seen:
        by_customer[row.customer].append(row)
    out = Rows([], [], [], [])
    for decisions in by_customer.values():
        decisions.sort(key=lambda r: r.at)
        for i, row in enumerate(decisions):
            if row.at.hour != 6:
                continue
            end = row.at + dt.timedelta(hours=24)
            later = [d for d in decisions[i + 1 :] if d.at <= end]
            if reminder not in row.candidates and reminder not in row.cooling:
                # the earlier measurement: everyone, observed as a candidate
                hit = any(reminder in d.candidates for d in later)
                out.old.append((row.predicted[reminder], hit))
            if (
                reminder in row.triggered
                or reminder in row.cooling
                or reminder not in row.consented
            ):
                continue
            came = any(reminder in d.triggered for d in later)
            due = row.due[reminder]
            if due is not None:
                out.pending.append((due, came))
            else:
                out.rate.append((row.predicted[reminder], came))
                out.segmented.append((row.segment, row.predicted[reminder], came))
    return out


def wilson(hits: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a binomial share."""
    if n == 0:
        return 0.0, 1.0
    z = 1.96
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def deciles(rows: list[tuple[float, bool]]) -> list[str]:
    """Table lines by decile of the prediction (ties kept in order of appearance)."""
    ranked = sorted(rows, key=lambda r: r[0])
    lines = [
        "| decile | decisions | predicted | observed (95 % CI) | predicted / observed |",
        "|---:|---:|---:|---:|---:|",
    ]
    n = len(ranked)
    for d in range(DECILES):
        part = ranked[d * n // DECILES : (d + 1) * n // DECILES]
        if not part:
            continue
        lines.append(_calibration_row(str(d + 1), part))
    return lines


def _calibration_row(label: str, part: list[tuple[float, bool]]) -> str:
    """One table line: decisions, mean predicted, observed share (95 % CI), their ratio."""
    predicted = sum(p for p, _ in part) / len(part)
    hits = sum(h for _, h in part)
    low, high = wilson(hits, len(part))
    ratio = f"{predicted / (hits / len(part)):.2f}" if hits else "-"
    return (
        f"| {label} | {len(part)} | {predicted:.4f} | {hits / len(part):.4f} "
        f"({low:.4f}-{high:.4f}) | {ratio} |"
    )


def by_segment(rows: list[tuple[dict[str, str], float, bool]]) -> list[str]:
    """Table lines of the rate path by segment (:func:`segment_of`): predicted against
    observed within each lifecycle state, journey phase and recency bin."""
    lines = [
        "| segment | decisions | predicted | observed (95 % CI) | predicted / observed |",
        "|---|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[str, str], list[tuple[float, bool]]] = collections.defaultdict(list)
    for segment, predicted, came in rows:
        for kind, name in segment.items():
            groups[kind, name].append((predicted, came))
    for (kind, name), part in sorted(groups.items()):
        lines.append(_calibration_row(f"{kind}: {name}", part))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seeds", default="0", help="comma-separated world seeds, pooled")
    args = parser.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",")]
    seen = [
        row for seed in seeds for row in record(seed, args.customers, args.days, args.history_days)
    ]
    reminders = sorted({r for row in seen for r in row.predicted})
    print(
        f"{args.customers} customers, {args.days} days after {args.history_days} of history, "
        f"seeds {args.seeds}: daily decisions (06:00 UTC)"
    )
    for reminder in reminders:
        rows = rows_of(seen, reminder)
        print(f"\n### {reminder}\n")
        if rows.old:
            n = len(rows.old)
            print(
                f"earlier measurement (every customer; observed = a candidate after consent "
                f"and contact policy): {n} decisions, predicted "
                f"{sum(p for p, _ in rows.old) / n:.4f}, observed "
                f"{sum(h for _, h in rows.old) / n:.4f}"
            )
        if rows.rate:
            n = len(rows.rate)
            predicted = sum(p for p, _ in rows.rate) / n
            hits = sum(h for _, h in rows.rate)
            low, high = wilson(hits, n)
            print(
                f"rate path (consented, not triggered, out of cool-down): {n} decisions, "
                f"predicted {predicted:.4f}, observed {hits / n:.4f} ({low:.4f}-{high:.4f})\n"
            )
            print("\n".join(deciles(rows.rate)))
            print()
            print("\n".join(by_segment(rows.segmented)))
        if rows.pending:
            n = len(rows.pending)
            hits = sum(h for _, h in rows.pending)
            print(
                f"\npending path (trigger already happened, due in a median "
                f"{sorted(d for d, _ in rows.pending)[n // 2]:.1f} h): {n} decisions, "
                f"predicted 1 (certain), observed {hits / n:.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
