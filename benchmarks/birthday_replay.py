"""Issue 12: the birthdays the rules sent and the engine did not, decision by decision.

Runs the rules (``rules``) and the engine (``nba``) in the closed loop's playbook world
(one process, one after the other), pairs their sends of ``--action`` to the same customer
as ``benchmarks/scenario_pairs.py`` does (within its window), and for every send of the
rules with no engine send beside it prints the engine's decisions for that customer from
the window before the rules' send to the window after it, where the action was more than
ineligible: what the engine chose (action, channel,
send time, priority) and why the action was not chosen (its reason codes and, where it
competed, its priority and the reason's message). A read-only diagnostic.

Run: ``PYTHONPATH=. python benchmarks/birthday_replay.py --customers 3000 --seeds 1,2``
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from scenario_pairs import WINDOW_DAYS

from nba.decision import RoutedDecision
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.policies import make_policy
from simulator.closed_loop.runner import run_policy


@dataclass(frozen=True)
class Seen:
    """One engine decision for one customer, as far as the watched action goes."""

    at: dt.datetime
    chosen: str
    watched: str


def _describe(routed: RoutedDecision, action: str) -> Seen:
    decision = routed.decision
    picks = [
        f"{a.action_id}/{a.channel.value if a.channel else '-'}@{a.send_at:%m-%d %H:%M}"
        if a.send_at
        else f"{a.action_id}"
        for a in decision.actions
    ]
    chosen = ", ".join(
        f"{p} (prio {a.priority:.3f})" for p, a in zip(picks, decision.actions, strict=True)
    )
    parts = []
    first = decision.actions[0] if decision.actions else None
    if first is not None and first.explored:
        chosen += f" EXPLORED (p {first.propensity:.3f})"
    if action in decision.eligible_action_ids:
        parts.append("eligible")
    for r in decision.explanation.every_rejected:
        if r.action_id == action:
            where = r.channel.value if r.channel else "-"
            prio = "" if r.priority is None else f" prio {r.priority:.3f}"
            parts.append(f"[{where}: {r.code.value}{prio}: {r.message}]")
    return Seen(decision.decided_at, chosen or "(none)", " ".join(parts))


def _recorder(seen: dict[str, list[Seen]], action: str) -> Callable[[RoutedDecision], None]:
    """Keeps every decision in ``seen`` (per customer), in full where ``action`` was
    eligible or refused for another reason than its eligibility rule."""

    def record(routed: RoutedDecision) -> None:
        d = routed.decision
        codes = {r.code.value for r in d.rejections if r.action_id == action}
        if action in d.eligible_action_ids or codes - {"not_eligible"}:
            described = _describe(routed, action)
        else:
            chosen = ", ".join(a.action_id for a in d.actions)
            described = Seen(d.decided_at, chosen or "(none)", ",".join(sorted(codes)))
        seen.setdefault(d.customer_id, []).append(described)

    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--action", default="birthday")
    args = parser.parse_args()
    action = args.action
    window = pd.Timedelta(days=WINDOW_DAYS.get(action, 7.0))
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
        rules = run_policy(world, make_policy("rules", world)).contacts
        seen: dict[str, list[Seen]] = {}
        engine = run_policy(
            world, make_policy("nba", world), on_decision=_recorder(seen, action)
        ).contacts
        theirs = rules[rules["action_id"] == action]
        mine = engine[engine["action_id"] == action]
        mine_at = pd.to_datetime(mine["sent_at"], utc=True)
        print(f"\n## seed {seed}: rules {len(theirs)} sends, engine {len(mine)}", flush=True)
        for r in theirs.itertuples():
            sent = pd.Timestamp(r.sent_at)
            near = mine[(mine["customer_id"] == r.customer_id) & ((mine_at - sent).abs() < window)]
            if len(near):
                continue
            print(
                f"\n### {r.customer_id}: rules {r.channel} decided {r.decided_at:%m-%d %H:%M} "
                f"sent {sent:%m-%d %H:%M}, margin {r.margin:+.3f}, converted {r.converted}"
            )
            others = engine[
                (engine["customer_id"] == r.customer_id)
                & ((pd.to_datetime(engine["sent_at"], utc=True) - sent).abs() < window)
            ]
            for o in others.itertuples():
                print(
                    f"  engine sent {o.action_id}/{o.channel} at "
                    f"{pd.Timestamp(o.sent_at):%m-%d %H:%M}, margin {o.margin:+.3f}"
                )
            for s in seen.get(str(r.customer_id), []):
                near_send = sent - window <= pd.Timestamp(s.at) <= sent + window
                if near_send and s.watched != "not_eligible":
                    print(f"  {s.at:%m-%d %H:%M} chose {s.chosen} | {action}: {s.watched}")


if __name__ == "__main__":
    main()
