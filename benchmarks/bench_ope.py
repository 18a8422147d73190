"""Off-policy evaluation benchmark: estimates from logged decisions against the truth.

Simulates a world, logs decisions with the exploring engine in closed loop,
estimates each candidate policy's value per decision by IPS, SNIPS and doubly
robust (:mod:`experiments.ope_validation`), and compares with the candidate's
true value at the logged contexts (what single-step off-policy evaluation
estimates) and with its value when actually run in closed loop on the same
world. Prints a Markdown report (and writes it with ``--out``).

    .venv/bin/python benchmarks/bench_ope.py --customers 3000 --days 14
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from experiments.ope_validation import CANDIDATES, validate_ope
from simulator.closed_loop import ClosedLoopConfig, build_world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--history-days", type=int, default=60)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilon", type=float, default=0.3)
    parser.add_argument("--reward", choices=("margin", "revenue"), default="margin")
    parser.add_argument("--interval", choices=("normal", "bootstrap"), default="normal")
    parser.add_argument("--candidates", default="rules,random,nba-greedy,nba")
    parser.add_argument("--no-closed-loop", action="store_true")
    parser.add_argument("--out", type=Path, help="Also write the report (Markdown) here.")
    args = parser.parse_args(argv)
    candidates = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = [c for c in candidates if c not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown} (expected some of: {', '.join(CANDIDATES)})")

    config = ClosedLoopConfig(
        n_customers=args.customers,
        history_days=args.history_days,
        days=args.days,
        seed=args.seed,
    )
    started = time.perf_counter()
    world = build_world(config)
    built = time.perf_counter() - started

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    result = validate_ope(
        world,
        candidates,
        epsilon=args.epsilon,
        reward=args.reward,
        interval=args.interval,
        closed_loop=not args.no_closed_loop,
        seed=args.seed,
        progress=say,
    )
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    lines = [
        "## Off-policy evaluation",
        "",
        "```",
        "$ " + shlex.join([".venv/bin/python", "benchmarks/bench_ope.py", *sys.argv[1:]]),
        "```",
        "",
        f"Hardware: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()}.",
        "",
        f"{len(world.customer_ids):,} customers, {config.days} days in closed loop after "
        f"{config.history_days} days of history; {len(result.logged.logged):,} decisions logged "
        f"by the engine mixed with {args.epsilon:g} uniform exploration over actions and "
        f"channels (its own value: {result.logged_value:.4f} {args.reward}/decision). "
        f"World built in {built:.0f} s; {timings}.",
        "",
        result.markdown(),
        "",
        "Unsupported candidate probability (mass on actions the logger could not take): "
        + ", ".join(f"{c.candidate} {c.unsupported_mass:.3f}" for c in result.candidates)
        + ". Closed-loop decisions: "
        + ", ".join(f"{c.candidate} {c.closed_loop_decisions}" for c in result.candidates)
        + f" (logger {len(result.logged.logged)}).",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
