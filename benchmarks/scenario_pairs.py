"""Issue 12: a scenario's cell send by send, the rule-based journeys' sends against the engine's.

Runs the rules (``rules``) and the engine (``nba``) in the closed loop's playbook world for
each seed, pairs the two policies' sends of each ``--actions`` action to the same customer
(the same delivery, purchase or birthday: within the action's window, ``WINDOW_DAYS``) and
splits the cell's engine-minus-rules true incremental margin into classes:

* **both sent**, on the same channel or another one, and when (the engine within 3 hours of
  the rules, earlier or later); where the channel differs, whether the engine's channel was
  its best (highest expected priority) or **explored** (Thompson sampling drew it);
* **only one policy sent**, and that policy's own earlier message converted where the other's
  did not: outcomes are sampled, so a purchase, and the cross-sell or review request it
  triggers, may exist in one policy's world only (no decision of the other could send it);
* **only the rules sent**, triggers alike: the engine spent the channel within 24 hours on
  another message (named; the margin of what it sent instead is given beside: the claim
  that paid elsewhere, or did not), or sent nothing then;
* **only the engine sent**, triggers alike.

The classes add up to the cell (up to the horizon's edges: a send matched outside it).
Margins are per 1,000 customers and per seed (summed over the seeds, divided by their
number). A read-only diagnostic: it changes no decision. ``benchmarks/channel_choice.py``
and ``benchmarks/action_valuation.py`` look inside one decision; this looks at the sends.

Run: ``PYTHONPATH=. python benchmarks/scenario_pairs.py --seeds 0,1,2,3
--actions review_request,birthday,cross_sell_after_purchase``
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from simulator.closed_loop import ClosedLoopConfig, build_world, compare_policies

#: How far apart two sends of an action to one customer can be and still answer the same
#: trigger: its eligibility's reach (a review 1-10 days after the delivery, a cross-sell
#: 1-14 days after the purchase, a birthday within its week, a pick-up within 2 days).
WINDOW_DAYS: Mapping[str, float] = {
    "review_request": 10.0,
    "cross_sell_after_purchase": 14.0,
    "birthday": 8.0,
    "cross_sell_click_collect": 3.0,
}
#: Two sends this close are "at the same time".
SAME_TIME = pd.Timedelta(hours=3)
#: A send spends its channel's daily cap for this long.
CAP_WINDOW = pd.Timedelta(hours=24)


@dataclass
class Cell:
    """One class of a cell: its sends and their margin (engine minus rules)."""

    sends: int = 0
    margin: float = 0.0
    instead: float = 0.0  # the margin of what the engine sent instead (only-rules classes)


def _converted_before(sends: pd.DataFrame, customer: str, at: pd.Timestamp, days: float) -> int:
    earlier = sends[
        (sends["customer_id"] == customer)
        & (sends["sent"] < at)
        & (sends["sent"] > at - pd.Timedelta(days=days))
    ]
    return int(earlier["converted"].sum())


def pair_sends(
    rules: pd.DataFrame,
    engine: pd.DataFrame,
    explored: set[str],
    action: str,
    window_days: float,
) -> dict[str, Cell]:
    """The classes of one seed's cell for ``action`` (see the module docstring).

    ``rules`` and ``engine`` are the runs' ``contacts`` (``customer_id``, ``action_id``,
    ``channel``, ``sent_at``, ``converted``, ``margin``, ``decision_id``); ``explored``
    the engine's decisions whose pick was explored. Margins are in currency, not scaled.
    """
    sends = {}
    for name, contacts in (("rules", rules), ("nba", engine)):
        frame = contacts.assign(
            sent=pd.to_datetime(contacts["sent_at"], utc=True),
            customer_id=contacts["customer_id"].astype(str),
        )
        sends[name] = frame
    window = pd.Timedelta(days=window_days)
    theirs = sends["rules"][sends["rules"]["action_id"] == action]
    mine = sends["nba"][sends["nba"]["action_id"] == action]
    cells: dict[str, Cell] = defaultdict(Cell)
    matched: set[int] = set()
    for r in theirs.itertuples():
        near = mine[
            (mine["customer_id"] == r.customer_id)
            & ((mine["sent"] - r.sent).abs() < window)
            & ~mine.index.isin(matched)
        ]
        if len(near):
            e = near.iloc[0]
            matched.add(int(near.index[0]))
            lag = e["sent"] - r.sent
            when = (
                "within 3 h"
                if abs(lag) <= SAME_TIME
                else ("engine earlier" if lag < pd.Timedelta(0) else "engine later")
            )
            if e["channel"] == r.channel:
                key = f"both: same channel, {when}"
            else:
                how = "explored" if e["decision_id"] in explored else "its best"
                key = f"both: rules {r.channel}, engine {e['channel']} ({how})"
            cells[key].sends += 1
            cells[key].margin += float(e["margin"]) - float(r.margin)
            continue
        own = _converted_before(sends["rules"], r.customer_id, r.sent, window_days)
        other = _converted_before(sends["nba"], r.customer_id, r.sent, window_days)
        if own > other:
            key = "rules only: their own earlier message converted, the engine's did not"
            instead = 0.0
        else:
            spent = sends["nba"][
                (sends["nba"]["customer_id"] == r.customer_id)
                & (sends["nba"]["channel"] == r.channel)
                & ((sends["nba"]["sent"] - r.sent).abs() < CAP_WINDOW)
            ]
            if len(spent):
                names = ", ".join(sorted(set(spent["action_id"])))
                key = f"rules only: the engine spent the {r.channel} on {names}"
                instead = float(spent["margin"].sum())
            else:
                key = "rules only: the engine sent nothing on the channel then"
                instead = 0.0
        cells[key].sends += 1
        cells[key].margin -= float(r.margin)
        cells[key].instead += instead
    for e in mine[~mine.index.isin(matched)].itertuples():
        own = _converted_before(sends["nba"], e.customer_id, e.sent, window_days)
        other = _converted_before(sends["rules"], e.customer_id, e.sent, window_days)
        if own > other:
            key = "engine only: its own earlier message converted, the rules' did not"
        else:
            key = f"engine only, by {e.channel}"
        cells[key].sends += 1
        cells[key].margin += float(e.margin)
    return dict(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=400)
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--actions", default="review_request,birthday,cross_sell_after_purchase")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    actions = args.actions.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    pooled: dict[tuple[str, str], Cell] = defaultdict(Cell)
    for seed in seeds:
        world = build_world(
            ClosedLoopConfig(
                n_customers=args.customers,
                history_days=args.history_days,
                days=args.days,
                seed=seed,
                playbook=True,
            )
        )
        result = compare_policies(world, ["rules", "nba"], workers=args.workers)
        decisions = result.runs["nba"].decisions
        explored = set(decisions.loc[decisions["explored"], "decision_id"])
        for action in actions:
            window = WINDOW_DAYS.get(action, 7.0)
            found = pair_sends(
                result.runs["rules"].contacts,
                result.runs["nba"].contacts,
                explored,
                action,
                window,
            )
            per = 1000.0 / len(world.customer_ids)
            for key, cell in found.items():
                total = pooled[(action, key)]
                total.sends += cell.sends
                total.margin += cell.margin * per
                total.instead += cell.instead * per
        print(f"seed {seed} done", flush=True)
    n = len(seeds)
    print(
        f"\nSeeds {args.seeds}: {args.customers} customers x {args.days} days after "
        f"{args.history_days}; engine minus rules, per 1,000 customers per seed\n"
    )
    print("| action | class | sends (all seeds) | engine - rules | the engine's send instead |")
    print("|---|---|---:|---:|---:|")
    for action in actions:
        rows = sorted(((k, c) for (a, k), c in pooled.items() if a == action), key=lambda kc: kc[0])
        for key, cell in rows:
            instead = (
                f"{cell.instead / n:+.2f}" if key.startswith("rules only: the engine spent") else ""
            )
            print(f"| {action} | {key} | {cell.sends} | {cell.margin / n:+.2f} | {instead} |")
        total = sum(c.margin for _, c in rows) / n
        print(f"| {action} | **all** | {sum(c.sends for _, c in rows)} | **{total:+.2f}** | |")


if __name__ == "__main__":
    main()
