"""Issue 12: where the engine leaves an action to the oracle, which term of its valuation is off?

Runs the engine (``nba``: the rule-based scorer) in the closed loop's playbook world and,
at every decision where one of the ``--actions`` is eligible on a channel, compares the
engine's priority terms of that (action, channel) with the simulator's truth
(:class:`~simulator.closed_loop.truth.TrueValue`) of the same message at the same send
time. ``benchmarks/offer_valuation.py`` does the same for the offer-pays test alone.

* **truth wins**: the truth's incremental margin of the (action, channel) beats doing
  nothing and every other option of the decision (what the myopic oracle sends);
* where the truth wins and the engine does not send, **the engine's choice**: another
  action ("lost to"), doing nothing (the priority below ``do_nothing``'s) or a refusal
  (an offer whose uplift does not pay for it);
* **response x value**, means over all the decisions where the action is eligible on the
  channel: the engine's ``propensity x value`` against the truth's gross gain (its
  incremental margin + the channel's and the offer's cost, what ``propensity x value``
  stands for), and their Spearman rank correlation;
* **the reserve's hold** (:mod:`nba.reserve`), over the decisions where the truth wins,
  the engine does not send and charges the send an opportunity cost for a reminder a
  session may trigger (the rate path): the opportunity cost; P(the reminder's trigger
  before the send's block ends) as the engine predicts it (its rate over the hours from
  now to the send plus a day) against how often the reminder's rule held at one of the
  customer's later decisions within those hours (``observed``); the reminder's priority
  the engine counts as lost against the truth's margin per contact of that reminder on
  the same channel, over the run's sends of it to the customers concerned.

Counts are decisions, not customers: a customer undecided for days is counted at each
decision. Run:
``PYTHONPATH=. python benchmarks/action_valuation.py --customers 600 --days 30 --seed 0``
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import spearmanr

from nba.actions import Action
from nba.arbitration import ChannelAssessment
from nba.channels import Channel
from nba.context import ContextScope, CustomerContext
from nba.engine import NextBestActionPolicy
from nba.pipeline import build_pipeline
from nba.reserve import trigger_rates
from nba.screening import ActionCandidate
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.oracle import _Slots
from simulator.closed_loop.runner import run_policy

#: A send blocks its channel for a day after it goes (the daily cap of one e-mail).
BLOCK_AFTER_SEND = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Assessed:
    """One decision's candidates and the engine's assessments of them."""

    context: CustomerContext
    candidates: list[ActionCandidate]
    assessments: list[list[ChannelAssessment]]


def _rule_holds(action: Action, context: CustomerContext, scope: ContextScope) -> bool:
    """Whether ``action``'s trigger happened: its rule (and its offer's) holds and it is out
    of its cool-down (as ``benchmarks/reserve_calibration.py`` observes it)."""
    rules = [action.eligibility] + ([action.offer.eligibility] if action.offer else [])
    if any(rule is not None and rule.evaluator(scope) is not True for rule in rules):
        return False
    since = context.hours_since_sent(action.id)
    return since is None or since >= (action.cooldown_hours or 0.0)


class RecordingEngine(NextBestActionPolicy):
    """The engine, keeping the assessments of the decisions where a watched action is a
    candidate, and at every decision the session reminders whose trigger happened."""

    def __init__(self, *args: object, watched: frozenset[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.watched = watched
        self.seen: list[Assessed] = []
        self.triggered: dict[str, list[tuple[dt.datetime, frozenset[str]]]] = {}

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        out = super()._assess(context, candidates)
        scope = ContextScope(context)
        held = frozenset(a.id for a in self._session_reminders if _rule_holds(a, context, scope))
        self.triggered.setdefault(context.customer_id, []).append((context.now_utc, held))
        if any(c.action.id in self.watched for c in candidates):
            self.seen.append(Assessed(context, list(candidates), out))
        return out

    def came(self, customer: str, reminder: str, start: dt.datetime, end: dt.datetime) -> bool:
        """Whether ``reminder``'s trigger happened at a decision in ``(start, end]``."""
        return any(
            reminder in held for at, held in self.triggered.get(customer, []) if start < at <= end
        )


@dataclass
class Row:
    """One watched (action, channel) at one decision."""

    customer: str
    truth_wins: bool
    verdict: str
    engine_rv: float
    truth_rv: float
    opportunity: float = 0.0
    kept_for: str = ""
    predicted: float = 0.0  # P(trigger before the block ends), the engine's rate
    observed: bool = False
    lost: float = 0.0


def _rows(engine: RecordingEngine, world: object) -> dict[tuple[str, Channel], list[Row]]:
    reminders = {a.id: a for a in engine._session_reminders}
    out: dict[tuple[str, Channel], list[Row]] = {}
    for seen in engine.seen:
        context = seen.context
        slots = _Slots(context, seen.candidates, world.mapping)  # type: ignore[attr-defined]
        value = slots.value(world.truth)  # type: ignore[attr-defined]
        truth = {(i, slot.channel): k for k, (i, slot, _) in enumerate(slots.pairs)}
        for i, candidate in enumerate(seen.candidates):
            if candidate.action.id not in engine.watched:
                continue
            rivals = [
                (a.priority, seen.candidates[j].action.id)
                for j, per in enumerate(seen.assessments)
                if j != i
                for a in per
                if a.reason is None
            ]
            best_rival, rival_id = max(rivals, default=(-math.inf, ""))
            for slot, assessment in zip(candidate.slots, seen.assessments[i], strict=True):
                k = truth.get((i, slot.channel))
                terms = assessment.terms
                if k is None or terms is None:
                    continue
                margin = float(value.margin[k])
                others = [float(value.margin[m]) for (j, _), m in truth.items() if j != i]
                if assessment.reason is not None:
                    verdict = "refused: " + assessment.reason.code.value
                elif assessment.priority >= best_rival:
                    verdict = "sent"
                elif rival_id == "do_nothing":
                    verdict = "below do_nothing"
                else:
                    verdict = "lost to " + rival_id
                row = Row(
                    context.customer_id,
                    margin > max([0.0, *others]),
                    verdict,
                    terms.propensity * terms.value,
                    margin + float(value.contact_cost[k] + value.offer_cost[k]),
                    terms.opportunity_cost,
                )
                kept = terms.kept_free
                if kept is not None and kept.due_hours is None:
                    end = slot.send.at + BLOCK_AFTER_SEND
                    reminder = reminders[kept.action_id]
                    [rate] = trigger_rates(context, [reminder], engine._trigger_hours)
                    hours = (end - context.now_utc) / dt.timedelta(hours=1)
                    row.kept_for = kept.action_id
                    row.predicted = 0.0 if rate is None else -math.expm1(-rate.expected(hours))
                    row.observed = engine.came(
                        context.customer_id, kept.action_id, context.now_utc, end
                    )
                    row.lost = kept.lost
                out.setdefault((candidate.action.id, slot.channel), []).append(row)
    return out


def _mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):.4f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--actions", default="style_guide_content,recommendations_weekly,reactivation_offer"
    )
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
    engine = RecordingEngine(
        world.catalog, world.contact_policy, watched=frozenset(args.actions.split(","))
    )
    run = run_policy(world, build_pipeline(world.catalog, world.contact_policy, policy=engine))
    rows = _rows(engine, world)
    contacts = run.contacts
    print(
        f"seed {args.seed}: {args.customers} customers x {args.days} days after "
        f"{args.history_days}; the engine's decisions where a watched action is eligible\n"
    )
    print(
        "| action | channel | decisions | truth wins | engine sends them | the engine's choice "
        "where the truth wins and it does not | response x value: engine, truth (Spearman) "
        "| held for a session's reminder | opportunity cost | P(trigger before the block "
        "ends): predicted, observed | the reminder's priority lost: engine, truth |"
    )
    print("|---|---|---:|---:|---:|---|---|---:|---:|---|---|")
    for (action_id, channel), found in sorted(rows.items(), key=lambda kv: kv[0][0]):
        wins = [r for r in found if r.truth_wins]
        missed = [r for r in wins if r.verdict != "sent"]
        choices = Counter(r.verdict for r in missed).most_common(3)
        held = [r for r in missed if r.kept_for]
        rho = spearmanr([r.engine_rv for r in found], [r.truth_rv for r in found])[0]
        kept_for = {r.kept_for for r in held}
        truth_lost = contacts[
            contacts["action_id"].isin(kept_for)
            & (contacts["channel"] == channel.value)
            & contacts["customer_id"].astype(str).isin({r.customer for r in held})
        ]["margin"]
        print(
            f"| {action_id} | {channel.value} | {len(found)} | {len(wins)} "
            f"| {len(wins) - len(missed)} | {', '.join(f'{v} {n}' for v, n in choices)} "
            f"| {_mean([r.engine_rv for r in found])}, {_mean([r.truth_rv for r in found])} "
            f"({rho:.2f}) | {len(held)} | {_mean([r.opportunity for r in held])} "
            f"| {_mean([r.predicted for r in held])}, {_mean([float(r.observed) for r in held])} "
            f"| {_mean([r.lost for r in held])}, "
            f"{_mean(list(truth_lost)) if len(truth_lost) else '-'} ({len(truth_lost)} sends) |"
        )


if __name__ == "__main__":
    main()
