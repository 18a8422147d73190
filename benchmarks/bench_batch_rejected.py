"""CPU of ``nba decide --rejected N``: ``BatchJob.decide`` with N = 0, 3 and 10, one process.

Each round decides the same profiles once per setting, each setting first in turn, and
the table gives the median CPU per customer and the ratio to N = 0 (no ``rejected``
column)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_batch_rejected.py \\
        --profiles data/profiles.parquet --customers 3000 --rounds 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import pandas as pd

from cli.decide import load_catalog, load_contact_policy
from features.profile_table import profiles_from_frame
from nba.budgets import UsageCounts
from nba.pipeline import build_pipeline
from serving.batch_decisions import BatchJob

SETTINGS = (0, 3, 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, required=True, help="profiles Parquet file")
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    frame = pd.read_parquet(args.profiles).head(args.customers)
    profiles = profiles_from_frame(frame)
    now = pd.Timestamp(frame["as_of"].max()).tz_convert("UTC").to_pydatetime()
    pipeline = build_pipeline(load_catalog(None), load_contact_policy(None))
    cpu_us: dict[int, list[float]] = {n: [] for n in SETTINGS}
    for round_ in range(args.rounds):
        shift = round_ % len(SETTINGS)
        for n in SETTINGS[shift:] + SETTINGS[:shift]:
            job = BatchJob(pipeline, now, 0, rejected=n)
            started = time.process_time()
            job.decide(profiles, UsageCounts())
            cpu_us[n].append(1e6 * (time.process_time() - started) / len(profiles))
    base = statistics.median(cpu_us[0])
    print(f"{len(profiles):,} customers, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}")
    print("| --rejected | CPU us per customer (median) | runs | vs none |")
    print("|---:|---:|---|---:|")
    for n, values in cpu_us.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {n} | {median:.0f} | {runs} | {median / base:.3f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
