"""Issue 12: is the reserve's P(trigger) calibrated where it holds a send? (nba.reserve)

``benchmarks/reserve_calibration.py`` checks P(a session reminder's trigger within 24 h)
at the daily decisions. The reserve acts on other decisions: those where it charges a
send an opportunity cost for a reminder a session may trigger (the rate path), and most
of all those where that cost **holds** the send (without it the send would have beaten
every rival, do-nothing included). Holds are selected: they go to customers whose rate
is high, which a rate estimated from a few days of their own history overstates when
the count is at its peak (regression to the mean).

Runs the engine (``nba``) in the closed loop's playbook world and records, at every
decision where the reserve charges a rate-path cost for the evening browse reminder (or
any session reminder of the catalog), the engine's P(the reminder's trigger before the
send's channel frees again: its send time plus a day) and whether the reminder's rule
then held (out of its cool-down) at one of the customer's later decisions in that time,
as ``benchmarks/action_valuation.py`` observes it. Prints, per reminder: every charged
decision and the held ones, predicted against observed (Wilson 95 %), by the customer's
own count of trigger days in the last 30 and by decile of the prediction. For a browse
reminder, also against the **organic** triggers: the world's background sessions that
make its rule hold in the same time (:func:`organic_triggers`), which a message in flight
does not hide from the harness and the policy's own messages do not add to (trig12).

Run: ``PYTHONPATH=. python benchmarks/trigger_holds.py --customers 600 --days 30 --seeds 0,1``
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from benchmarks.action_valuation import BLOCK_AFTER_SEND, _rule_holds
from benchmarks.reserve_calibration import wilson
from features.definitions import _view_seconds
from features.finalise import BROWSE_LEFT_SECONDS
from nba.actions import ActionType
from nba.arbitration import ChannelAssessment
from nba.context import ContextScope, CustomerContext
from nba.engine import NextBestActionPolicy
from nba.pipeline import build_pipeline
from nba.reserve import trigger_hours, trigger_rates
from nba.screening import ActionCandidate
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.runner import run_policy

DECILES = 10
#: An add-to-cart this soon after a view (seconds: the loop's tick, when the rule is next
#: read) is the same session's: the cart, not products left behind.
CART_AFTER_VIEW = 3 * 3_600


@dataclass(frozen=True)
class Charged:
    """One decision where the reserve charged a send for a reminder's possible trigger."""

    customer: str
    at: dt.datetime
    reminder: str
    end: dt.datetime  # the charged send's time plus a day
    predicted: float  # P(a trigger before ``end``), the engine's rate
    held: bool  # the cost turned a winning send into a loss
    own_days: int  # the customer's trigger days in the last 30
    segment: tuple[tuple[str, str], ...] = ()  # diagnostic segments


class HoldEngine(NextBestActionPolicy):
    """The engine, keeping every rate-path charge and the reminders triggered at each
    decision."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.charged: list[Charged] = []
        self.triggered: dict[str, list[tuple[dt.datetime, frozenset[str]]]] = {}

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        out = super()._assess(context, candidates)
        scope = ContextScope(context)
        held_now = frozenset(
            a.id for a in self._session_reminders if _rule_holds(a, context, scope)
        )
        self.triggered.setdefault(context.customer_id, []).append((context.now_utc, held_now))
        reminders = {a.id: a for a in self._session_reminders}
        allowed = [a.priority for per in out for a in per if a.reason is None]
        best = max(allowed, default=-math.inf)
        winner = "none"
        for candidate, per in zip(candidates, out, strict=True):
            if any(a.reason is None and a.priority == best for a in per):
                winner = candidate.action.id
        # per reminder, the charged slot that ends latest (the widest window) and whether
        # any charge held its send
        charges: dict[str, tuple[dt.datetime, bool]] = {}
        for candidate, per in zip(candidates, out, strict=True):
            if len(candidate.slots) != len(per):  # do-nothing: no slot
                continue
            for slot, assessment in zip(candidate.slots, per, strict=True):
                terms = assessment.terms
                kept = None if terms is None else terms.kept_free
                if kept is None or kept.due_hours is not None or assessment.reason is not None:
                    continue
                if terms is None or terms.opportunity_cost <= 0.0:
                    continue
                held = (
                    assessment.priority < best
                    and assessment.priority + terms.opportunity_cost >= best
                )
                end = slot.send.at + BLOCK_AFTER_SEND
                was_end, was_held = charges.get(kept.action_id, (end, False))
                charges[kept.action_id] = (max(end, was_end), held or was_held)
        for reminder_id, (end, held) in charges.items():
            reminder = reminders[reminder_id]
            [rate] = trigger_rates(context, [reminder], self._trigger_hours)
            hours = (end - context.now_utc) / dt.timedelta(hours=1)
            profile = context.profile
            own = (
                profile.browse_left_days_30d
                if reminder.type.value == "browse_reminder"
                else profile.cart_left_days_30d
            )
            self.charged.append(
                Charged(
                    context.customer_id,
                    context.now_utc,
                    reminder_id,
                    end,
                    0.0 if rate is None else -math.expm1(-rate.expected(hours)),
                    held,
                    own,
                    _segments(context, winner),
                )
            )
        return out

    def came(self, customer: str, reminder: str, start: dt.datetime, end: dt.datetime) -> bool:
        """Whether ``reminder``'s trigger happened at a decision in ``(start, end]``."""
        return any(
            reminder in held for at, held in self.triggered.get(customer, []) if start < at <= end
        )


def organic_triggers(
    background: pd.DataFrame, timezones: Mapping[str, str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per customer, the times (epoch seconds, sorted) and local hours of the background's
    product views that would make a browse reminder's rule hold on the world's own
    events, whatever the policy does: two minutes of views in the 24 hours to it (its
    dwell, else the default) and no add-to-cart in them nor in the
    :data:`CART_AFTER_VIEW` after (the hours at which the rule can hold are the
    reminder's, :func:`organic_came`). The sessions a policy's messages bring are not in
    the background; nor does a scheduled message hide them (the harness decides nobody
    whose message is in flight)."""
    events = background.sort_values("timestamp", kind="stable")
    viewed = (events["event_type"] == "product_view").to_numpy()
    carted = (events["event_type"] == "add_to_cart").to_numpy()
    seconds = np.zeros(len(events))
    seconds[viewed] = _view_seconds(events["properties"], viewed)[0]
    at = events["timestamp"].astype("int64").to_numpy() // 1_000_000_000
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    customers = events["customer_id"].to_numpy()
    for customer in np.unique(customers[viewed]):
        mine = customers == customer
        t, v, c, s = at[mine], viewed[mine], carted[mine], seconds[mine]
        zone = ZoneInfo(timezones.get(str(customer), "UTC"))
        hits, hours = [], []
        for i in np.flatnonzero(v):
            window = (t > t[i] - 86_400) & (t <= t[i])
            cart = (t > t[i] - 86_400) & (t <= t[i] + CART_AFTER_VIEW)
            if s[window & v].sum() < BROWSE_LEFT_SECONDS or (cart & c).any():
                continue
            hits.append(t[i])
            hours.append(dt.datetime.fromtimestamp(int(t[i]), zone).hour)
        if hits:
            out[str(customer)] = (np.array(hits), np.array(hours))
    return out


def organic_came(
    triggers: Mapping[str, tuple[np.ndarray, np.ndarray]],
    customer: str,
    start: dt.datetime,
    end: dt.datetime,
    hours: Sequence[bool],
) -> bool:
    """Whether ``customer``'s background has a trigger in ``(start, end]`` at a local hour
    at which the reminder's rule can hold (``hours``: :func:`nba.reserve.trigger_hours`)."""
    found = triggers.get(customer)
    if found is None:
        return False
    times, local = found
    inside = (times > start.timestamp()) & (times <= end.timestamp())
    return bool((inside & np.asarray(hours, dtype=bool)[local]).any())


def _bin(value: float | None, bounds: Sequence[float]) -> str:
    if value is None:
        return "unknown"
    return next((f"<= {b:g}" for b in bounds if value <= b), f"> {bounds[-1]:g}")


def _segments(context: CustomerContext, winner: str) -> tuple[tuple[str, str], ...]:
    p = context.profile
    return (
        ("winner", "do_nothing" if winner == "do_nothing" else "an action"),
        ("daily tick", str(context.now_utc.hour == 6 and context.now_utc.minute == 0)),
        ("hours since purchase", _bin(p.hours_since_last_purchase, (24, 72, 168, 720))),
        ("hours since browse", _bin(p.hours_since_last_browse, (4, 24, 72, 168, 720))),
        ("local hour", _bin(context.local_now.hour, (5, 11, 17, 21, 23))),
        ("phase", p.journey_phase.value),
        ("lifecycle", p.lifecycle_state.value),
        ("days known", _bin(p.days_since_first_seen, (7, 30, 90, 365))),
    )


def _row(label: str, part: list[tuple[float, bool, bool]], customers: int | None = None) -> str:
    n = len(part)
    predicted = sum(p for p, _, _ in part) / n
    hits = sum(h for _, h, _ in part)
    organic = sum(o for _, _, o in part)
    low, high = wilson(hits, n)
    o_low, o_high = wilson(organic, n)
    ratio = f"{predicted / (hits / n):.2f}" if hits else "-"
    o_ratio = f"{predicted / (organic / n):.2f}" if organic else "-"
    who = "" if customers is None else f" ({customers} customers)"
    return (
        f"| {label}{who} | {n} | {predicted:.4f} | {hits / n:.4f} ({low:.4f}-{high:.4f}) "
        f"| {ratio} | {organic / n:.4f} ({o_low:.4f}-{o_high:.4f}) | {o_ratio} |"
    )


HEADER = (
    "| rows | decisions | predicted | observed (95 % CI) | predicted / observed "
    "| organic (95 % CI) | predicted / organic |\n"
    "|---|---:|---:|---:|---:|---:|---:|"
)


def tables(rows: list[tuple[Charged, bool, bool]]) -> list[str]:
    """Calibration lines: all, held, by the customer's own count, by decile."""
    lines = [HEADER]
    pairs = [(c.predicted, came, organic) for c, came, organic in rows]
    if not pairs:
        return lines
    lines.append(_row("every charged decision", pairs, len({c.customer for c, _, _ in rows})))
    held = [(c, came, organic) for c, came, organic in rows if c.held]
    if held:
        lines.append(
            _row(
                "**held**",
                [(c.predicted, x, o) for c, x, o in held],
                len({c.customer for c, _, _ in held}),
            )
        )
        first: dict[str, tuple[float, bool, bool]] = {}
        for c, came, organic in held:
            first.setdefault(c.customer, (c.predicted, came, organic))
        lines.append(_row("held, each customer's first hold", list(first.values())))
    by_count: dict[str, list[tuple[float, bool, bool]]] = collections.defaultdict(list)
    held_by_count: dict[str, list[tuple[float, bool, bool]]] = collections.defaultdict(list)
    for c, came, organic in rows:
        key = str(c.own_days) if c.own_days < 4 else "4+"
        by_count[key].append((c.predicted, came, organic))
        if c.held:
            held_by_count[key].append((c.predicted, came, organic))
    for key in sorted(by_count):
        lines.append(_row(f"own days {key}", by_count[key]))
    for key in sorted(held_by_count):
        lines.append(_row(f"held, own days {key}", held_by_count[key]))
    groups: dict[tuple[str, str], list[tuple[float, bool, bool]]] = collections.defaultdict(list)
    for c, came, organic in rows:
        for kind, name in c.segment:
            groups[kind, name].append((c.predicted, came, organic))
    for (kind, name), part in sorted(groups.items()):
        lines.append(_row(f"{kind}: {name}", part))
    ranked = sorted(pairs, key=lambda r: r[0])
    n = len(ranked)
    for d in range(DECILES):
        part = ranked[d * n // DECILES : (d + 1) * n // DECILES]
        if part:
            lines.append(_row(f"decile {d + 1}", part))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seeds", default="0", help="comma-separated world seeds, pooled")
    args = parser.parse_args(argv)
    rows: dict[str, list[tuple[Charged, bool, bool]]] = collections.defaultdict(list)
    for seed in (int(s) for s in args.seeds.split(",")):
        world = build_world(
            ClosedLoopConfig(
                n_customers=args.customers,
                history_days=args.history_days,
                days=args.days,
                seed=seed,
                playbook=True,
            )
        )
        engine = HoldEngine(world.catalog, world.contact_policy)
        run_policy(world, build_pipeline(world.catalog, world.contact_policy, policy=engine))
        triggers = organic_triggers(world.background, world.timezones)
        browse = {
            a.id: trigger_hours(a)
            for a in world.catalog.actions
            if a.type is ActionType.BROWSE_REMINDER
        }
        for c in engine.charged:
            came = engine.came(c.customer, c.reminder, c.at, c.end)
            # the background's sessions are read for a browse reminder's rule only
            organic = c.reminder in browse and organic_came(
                triggers, c.customer, c.at, c.end, browse[c.reminder]
            )
            rows[c.reminder].append(
                (dataclasses.replace(c, customer=f"{seed}:{c.customer}"), came, organic)
            )
    print(
        f"{args.customers} customers x {args.days} days after {args.history_days}, seeds "
        f"{args.seeds}: decisions where the reserve charged a send for a reminder's trigger "
        "(rate path); P(a trigger before the send's time plus a day)"
    )
    for reminder in sorted(rows):
        print(f"\n### {reminder}\n")
        print("\n".join(tables(rows[reminder])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
