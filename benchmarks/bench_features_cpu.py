"""CPU seconds of the batch build and of point-in-time profiles, in one process.

Wall times on a shared machine follow its load; the CPU time of one process
(``time.process_time``, ``workers=1``) much less, so this compares two
versions of the code run alternately (set ``PYTHONPATH`` to each tree):

    PYTHONPATH=. .venv/bin/python benchmarks/bench_features_cpu.py --data DIR --label after
"""

from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path

from features.batch import build_profiles, point_in_time
from features.dataset import load_dataset
from training.examples import message_sends, sample_rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="a data folder (nba simulate)")
    parser.add_argument("--rows", type=int, default=5_000, help="sends to give profiles")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    data = load_dataset(args.data)
    rows = sample_rows(message_sends(data.events), args.rows, seed=0)[["customer_id", "timestamp"]]
    started = time.process_time()
    build_profiles(data, workers=1)
    build = time.process_time() - started
    # versions before the vectorised cut had no ``workers`` (and finalised in this process)
    one = {"workers": 1} if "workers" in inspect.signature(point_in_time).parameters else {}
    started = time.process_time()
    point_in_time(data, rows, **one)  # type: ignore[arg-type]
    cut = time.process_time() - started
    print(
        f"{args.label} build_cpu_s {build:.2f} events_per_cpu_s {len(data.events) / build:,.0f} "
        f"pit_cpu_s {cut:.2f} rows_per_cpu_s {len(rows) / cut:,.0f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
