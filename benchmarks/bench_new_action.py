"""Issue 13: an action added on day 10, truly the best for a segment; is it found within 3 days?

Runs the engine in closed loop (in process, :mod:`experiments.new_action`) over one
simulated world, with the response statistics (once per model of ``--models``: the
learned value of a message, or the response calibration alone) and without them
(same world, same seeds), the catalog switched on ``--add-day``. Prints, for the segment's decisions
where the new action was eligible in the ``--window-days`` after it was added: how
many chose it (the goal: at least 50 %), at how many it was truly the best option
(the simulator's true incremental margin), per day, the mean logged propensity, and
the statistics the engine gathered about it.

    PYTHONPATH=. python benchmarks/bench_new_action.py --customers 1500 --days 13
"""

from __future__ import annotations

import argparse
import time

from experiments.new_action import NEW_ACTION_KIND, new_action_world, run_new_action
from features.online.response_stats import MODELS
from simulator.closed_loop import ClosedLoopConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1500)
    parser.add_argument("--days", type=int, default=13)
    parser.add_argument("--add-day", type=int, default=10)
    parser.add_argument("--window-days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--kind", default=NEW_ACTION_KIND, help="the new action's message kind")
    parser.add_argument("--models", default=",".join(MODELS), help="statistics models to run")
    args = parser.parse_args()
    started = time.perf_counter()
    world = new_action_world(
        ClosedLoopConfig(n_customers=args.customers, days=args.days, seed=args.seed), args.kind
    )
    seconds = time.perf_counter() - started
    print(f"world: {args.customers} customers, {args.days} days ({seconds:.0f} s)")
    for model in [*args.models.split(","), ""]:
        r = run_new_action(
            world,
            add_day=args.add_day,
            window_days=args.window_days,
            learn=bool(model),
            model=model or MODELS[0],
        )
        days = ", ".join(f"day {d}: {c}/{n}" for d, n, c in r.by_day)
        label = f"with statistics ({model})" if model else "without statistics"
        print(
            f"{label}: chosen {r.chosen}/{r.decisions} "
            f"= {r.share:.3f} ({days}); truly best at {r.truly_best:.3f}; "
            f"mean propensity {r.propensity:.3f} ({r.seconds:.0f} s)"
        )
        if r.counts is not None:
            c = r.counts
            print(
                f"    its statistics: {c.exposures:.0f} exposures, {c.expected:.1f} responses "
                f"expected, {c.responses:.0f} observed ({c.clicks:.0f} clicks, "
                f"{c.purchases:.0f} purchases, margin {c.margin:.1f} against "
                f"{c.response_value:.1f} stated for its responses), "
                f"calibration {c.posterior().mean:.2f}"
            )


if __name__ == "__main__":
    main()
