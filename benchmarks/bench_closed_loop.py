"""Closed-loop benchmark: decision policies on the simulated retailer, and batch throughput.

Simulates history, cuts it, runs every policy in closed loop over the same
customers and days (same background, same seeds, same truth), checks every
delivered contact with the independent checker and prints a Markdown table:
conversions, true incremental revenue and margin, revenue per contact with a
95 % interval, unsubscribes and violations, then the ratios the issue sets as
goals (nba / random and nba / oracle), including against the oracle held to the
engine's contact volume (``oracle~nba``). Finally it measures batch decisions
(``serving.batch_decisions.decide_audience``) on an audience made of the
world's profiles at the cut, repeated under new ids up to ``--batch-customers``.

    .venv/bin/python benchmarks/bench_closed_loop.py --customers 3000 --days 14
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

from serving.batch_decisions import decide_audience
from simulator.closed_loop import ClosedLoopConfig, build_world, compare_policies
from simulator.closed_loop.world import ClosedLoopWorld

DEFAULT_POLICIES = "random,rules,nba,nba+truth,oracle,oracle~nba"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--history-days", type=int, default=60)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policies", default=DEFAULT_POLICIES)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-customers", type=int, default=100_000)
    parser.add_argument("--batch-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, help="Also write the report (Markdown) here.")
    args = parser.parse_args(argv)

    lines = [
        "## Closed loop",
        "",
        "```",
        "$ " + shlex.join([".venv/bin/python", "benchmarks/bench_closed_loop.py", *sys.argv[1:]]),
        "```",
        "",
        f"Hardware: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()}.",
        "",
    ]
    config = ClosedLoopConfig(
        n_customers=args.customers,
        history_days=args.history_days,
        days=args.days,
        seed=args.seed,
    )
    started = time.perf_counter()
    world = build_world(config)
    built = time.perf_counter() - started
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    started = time.perf_counter()
    result = compare_policies(world, policies, workers=args.workers)
    ran = time.perf_counter() - started
    lines += [
        f"{len(world.customer_ids):,} customers known at the cut "
        f"({world.cut:%Y-%m-%d}, after {config.history_days} days of history), "
        f"{config.days} days in closed loop, decisions every {config.trigger_every_hours} h "
        f"for active customers and daily at {config.decision_hour_utc:02d}:00 UTC for everyone; "
        f"{len(world.background):,} background events. World built in {built:.0f} s, "
        f"policies run in {ran:.0f} s ({args.workers} workers).",
        "",
        result.table(),
        "",
        "Contacts by channel:",
        "",
    ]
    for metrics in result.metrics:
        mix = ", ".join(f"{k} {v:,}" for k, v in sorted(metrics.contacts_by_channel.items()))
        lines.append(f"- {metrics.policy}: {mix} ({metrics.seconds:.0f} s)")
    if args.batch_customers > 0:
        lines += ["", *batch_report(world, args.batch_customers, args.batch_workers)]
    report = "\n".join(lines)
    print(report)
    if args.out is not None:
        args.out.write_text(report + "\n")
    return 0 if all(m.violations == 0 for m in result.metrics) else 1


def batch_report(world: ClosedLoopWorld, n: int, workers: int) -> list[str]:
    """Batch decisions for ``n`` customers: the world's profiles repeated under new ids."""
    base = world.build.profiles
    audience = [dataclasses.replace(base[i % len(base)], customer_id=f"B{i:07d}") for i in range(n)]
    now = world.cut + dt.timedelta(hours=9)
    started = time.perf_counter()
    table = decide_audience(audience, world.catalog, world.contact_policy, now, workers=workers)
    decided = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        table.to_parquet(Path(folder) / "decisions.parquet", index=False)
        written = time.perf_counter() - started
    contacts = int(table["channel"].notna().sum())
    return [
        "## Batch decisions",
        "",
        f"{n:,} customers ({len(base):,} simulated profiles repeated under new ids), "
        f"engine with the example catalog, {workers} workers: decided in {decided:.0f} s "
        f"({n / decided:,.0f} customers/s), {contacts:,} contacts, "
        f"Parquet written in {written:.1f} s.",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
