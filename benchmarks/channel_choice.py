"""Issue 12: where an action could go on several channels, does the engine pick the truth's?

Runs the engine (``nba``, the rule-based scorer) in the closed loop's playbook world and, at
every decision where one of the ``--actions`` is a candidate on two channels or more (none
refused), compares the engine's best channel for it (its highest priority) with the
truth's best (:class:`~simulator.closed_loop.truth.TrueValue`: the highest true
incremental margin of the same message at each channel's own send time). It prints, per
action, the (engine, truth) pairs and the true margin the engine's channel gives up
against the truth's, and with ``--examples`` the decisions where they differ (each
channel's priority, true margin, propensity, P(redeemed anyway) and send time).

A second table takes the engine's *sends* of the watched actions (what went out, by channel)
and says how each channel was chosen: the only one open (the others not consented or
refused), the engine's best (the highest expected priority), or **explored** (Thompson
sampling drew it although another channel of the same action had a higher expected
priority), with the true margin of those sends.

A read-only diagnostic (it changes no decision): whether an action's scenario is below the
rules because of its channel (the engine's channel choice, decision by decision) or because
of what it sends at other moments (``benchmarks/oracle_lead.py``).

Run: ``PYTHONPATH=. python benchmarks/channel_choice.py --seed 0
--actions birthday,cross_sell_after_purchase``
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

from benchmarks.action_valuation import RecordingEngine
from nba.decision import RoutedDecision
from nba.pipeline import build_pipeline
from nba.reasons import ReasonCode
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.oracle import _Slots
from simulator.closed_loop.runner import run_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actions", default="birthday,cross_sell_after_purchase")
    parser.add_argument("--examples", type=int, default=0, help="differing decisions shown")
    args = parser.parse_args()
    watched = frozenset(args.actions.split(","))
    world = build_world(
        ClosedLoopConfig(
            n_customers=args.customers,
            history_days=args.history_days,
            days=args.days,
            seed=args.seed,
            playbook=True,
        )
    )
    engine = RecordingEngine(world.catalog, world.contact_policy, watched=watched)
    sent: list[tuple[str, str, str]] = []  # (decision, action, how its channel was chosen)

    def keep(routed: RoutedDecision) -> None:
        decision = routed.decision
        for chosen in decision.contacts[:1]:
            if chosen.action_id not in watched or chosen.channel is None:
                continue
            others = [o for o in decision.options if o.action_id == chosen.action_id and o.channel]
            # the action's channels other than its best are refused as "other channel
            # preferred": the chosen one among them was drawn by exploration
            best = not any(
                r.action_id == chosen.action_id
                and r.channel is chosen.channel
                and r.code is ReasonCode.OTHER_CHANNEL_PREFERRED
                for r in decision.rejections
            )
            how = "its best" if best else "explored"
            if len(others) <= 1:
                how = "only channel open"
            sent.append((decision.decision_id, chosen.action_id, f"{chosen.channel.value}: {how}"))

    run = run_policy(
        world,
        build_pipeline(world.catalog, world.contact_policy, policy=engine),
        on_decision=keep,
    )
    pairs: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    given_up: dict[str, float] = defaultdict(float)
    examples: dict[str, list[str]] = defaultdict(list)
    for seen in engine.seen:
        context = seen.context
        slots = _Slots(context, seen.candidates, world.mapping)
        value = slots.value(world.truth)
        truth = {(i, slot.channel): k for k, (i, slot, _) in enumerate(slots.pairs)}
        for i, candidate in enumerate(seen.candidates):
            if candidate.action.id not in watched:
                continue
            rows = []
            for slot, assessment in zip(candidate.slots, seen.assessments[i], strict=True):
                k = truth.get((i, slot.channel))
                terms = assessment.terms
                if k is None or terms is None or assessment.reason is not None:
                    continue
                rows.append((slot, assessment.priority, float(value.margin[k]), terms))
            if len(rows) < 2:
                continue
            engine_best = max(rows, key=lambda r: r[1])
            truth_best = max(rows, key=lambda r: r[2])
            action_id = candidate.action.id
            pairs[action_id][(engine_best[0].channel.value, truth_best[0].channel.value)] += 1
            given_up[action_id] += truth_best[2] - engine_best[2]
            if engine_best is not truth_best and len(examples[action_id]) < args.examples:
                examples[action_id].append(
                    f"{context.customer_id} at {context.now_utc:%m-%d %H:%M}: "
                    + "; ".join(
                        f"{s.channel.value} priority {p:.3f} truth {m:.3f} "
                        f"(P(response) {t.propensity:.4f}, P(redeemed anyway) "
                        f"{t.redeemed_anyway:.3f}, sent {s.send.at:%m-%d %H:%M})"
                        for s, p, m, t in rows
                    )
                )
    n = len(world.customer_ids)
    print(
        f"seed {args.seed}: {args.customers} customers x {args.days} days after "
        f"{args.history_days}; decisions where a watched action has two channels or more\n"
    )
    print(
        "| action | decisions | same channel | (engine, truth) where they differ "
        "| true margin given up per 1,000 customers |"
    )
    print("|---|---:|---:|---|---:|")
    for action_id in sorted(pairs):
        counts = pairs[action_id]
        same = sum(c for (e, t), c in counts.items() if e == t)
        differ = ", ".join(f"{e} not {t} {c}" for (e, t), c in sorted(counts.items()) if e != t)
        print(
            f"| {action_id} | {sum(counts.values())} | {same} | {differ or '-'} "
            f"| {given_up[action_id] * 1000 / n:.1f} |"
        )
    margin = {
        d: float(m)
        for d, m in zip(run.contacts["decision_id"], run.contacts["margin"], strict=True)
    }
    sends: dict[tuple[str, str], list[float]] = defaultdict(list)
    for decision_id, action_id, how in sent:
        if decision_id in margin:  # went out (not held back or withdrawn)
            sends[(action_id, how)].append(margin[decision_id])
    print("\nThe engine's sends, by how their channel was chosen:\n")
    print("| action | channel: how chosen | sends | true margin per 1,000 customers |")
    print("|---|---|---:|---:|")
    for (action_id, how), values in sorted(sends.items()):
        print(f"| {action_id} | {how} | {len(values)} | {sum(values) * 1000 / n:.1f} |")
    for action_id, lines in examples.items():
        if not lines:
            continue
        print(f"\n{action_id}:")
        for line in lines:
            print(f"- {line}")


if __name__ == "__main__":
    main()
