"""Point-in-time training examples per second, and time to train each model.

* examples: :func:`features.batch.point_in_time` (every send's profile as known
  just before it) on sampled ``message_sent`` rows of a simulated retailer,
  against a plain pandas ``merge_asof`` of the same rows onto the same events
  (each row's last event before it: the floor of any as-of join), alternated,
  medians over repeats;
* training (``--train``): ``nba train <target>`` for each of the four models
  on the same data, one process each, under ``/usr/bin/time -v``
  (:func:`bench_training_scale.time_training`).

    .venv/bin/python benchmarks/bench_examples.py --customers 20000 --days 90 --rows 60000
    .venv/bin/python benchmarks/bench_examples.py --data data/retailer --train
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parents[1]
sys.path.append(str(HERE))  # after PYTHONPATH: the measured tree's packages come first

from benchmarks.bench_features import report  # noqa: E402
from benchmarks.bench_training_scale import TARGETS, time_training  # noqa: E402
from features.batch import point_in_time  # noqa: E402
from features.dataset import RetailDataset, load_dataset  # noqa: E402
from simulator import SimulatorConfig, simulate  # noqa: E402
from training.examples import message_sends, sample_rows  # noqa: E402


def asof_baseline(events: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Each row's last event before it (same customer), by a plain pandas ``merge_asof``."""
    right = events[["customer_id", "timestamp", "event_type"]].sort_values("timestamp")
    left = rows[["customer_id", "timestamp"]].sort_values("timestamp")
    left["customer_id"] = left["customer_id"].astype(right["customer_id"].dtype)
    return pd.merge_asof(left, right, on="timestamp", by="customer_id", allow_exact_matches=False)


def load(args: argparse.Namespace) -> RetailDataset:
    if args.data is not None:
        return load_dataset(args.data)
    sim = simulate(SimulatorConfig(n_customers=args.customers, days=args.days, seed=args.seed))
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


def time_examples(data: RetailDataset, rows: pd.DataFrame, repeats: int) -> dict[str, float]:
    ours, base = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        profiles = point_in_time(data, rows[["customer_id", "timestamp"]])
        ours.append(time.perf_counter() - started)
        assert len(profiles) == len(rows)
        started = time.perf_counter()
        asof_baseline(data.events, rows)
        base.append(time.perf_counter() - started)
    ours_s, base_s = statistics.median(ours), statistics.median(base)
    return {
        "rows": len(rows),
        "point_in_time_s": ours_s,
        "examples_per_s": len(rows) / ours_s,
        "baseline_merge_asof_s": base_s,
        "baseline_rows_per_s": len(rows) / base_s,
        "vs_baseline": ours_s / base_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--data", type=Path, default=None, help="a data folder instead of simulating"
    )
    parser.add_argument("--rows", type=int, default=60_000, help="sends to give profiles")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train", action="store_true", help="also time nba train per model")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    data = load(args)
    rows = sample_rows(message_sends(data.events), args.rows, seed=0)
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} cores",
        "customers": int(data.customers["customer_id"].nunique()),
        "events": len(data.events),
        "sends_customers": int(np.unique(rows["customer_id"]).size),
    }
    results.update(time_examples(data, rows, args.repeats))
    print(
        f"point-in-time examples: {results['examples_per_s']:,.0f} /s "
        f"({results['rows']:,} rows; merge_asof baseline {results['baseline_rows_per_s']:,.0f} /s)"
    )
    if args.train:
        if args.data is None:
            raise SystemExit("--train needs --data (nba simulate --out DIR first)")
        results["train"] = time_training(args.data, list(TARGETS), {"this": HERE})
    report(results, args.out)


if __name__ == "__main__":
    main()
