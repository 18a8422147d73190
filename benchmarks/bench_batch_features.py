"""Batch profiles end to end: this tree against a baseline tree, alternated in one run.

Each measurement is a fresh process (``PYTHONPATH`` set to the tree) that loads the
data and times ``build_profiles(data, workers=W)``: the wall clock, the CPU time of
the process itself and of the processes it forked (``RUSAGE_CHILDREN``). Trees and
worker counts are alternated within each repetition; the report gives medians and
the ratios to the baseline. On a shared machine the wall clock follows the load; the
CPU times much less, and ``serial_cpu_s + children_cpu_s / workers`` estimates the
wall clock of an otherwise idle machine with ``workers`` cores.

    git -C /work/main archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/bench_batch_features.py --data DIR --baseline-src /tmp/base
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_ONE = """
import json, resource, sys, time
from features.batch import build_profiles
from features.dataset import load_dataset
data = load_dataset(sys.argv[1])
workers = int(sys.argv[2])
wall, cpu = time.perf_counter(), time.process_time()
build = build_profiles(data, workers=workers)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"events": len(data.events), "profiles": len(build.profiles), "wall_s": wall,
                  "cpu_s": cpu, "children_cpu_s": children.ru_utime + children.ru_stime}))
"""


def measure(src: Path, data: Path, workers: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", _ONE, str(data), str(workers)],
        env=env,
        cwd=src,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="a data folder (nba simulate)")
    parser.add_argument("--baseline-src", type=Path, required=True, help="the baseline's tree")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trees = {"baseline": args.baseline_src.resolve(), "this": Path(__file__).parents[1].resolve()}
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    for r in range(args.repeat):
        for workers in args.workers:
            for label, src in trees.items():
                got = measure(src, args.data, workers)
                runs.setdefault((label, workers), []).append(got)
                print(f"# repeat {r + 1} {label} workers={workers}: {json.dumps(got)}", flush=True)
    load = os.getloadavg()
    print(f"\nnproc {os.cpu_count()}, load average at the end {load[0]:.1f} {load[1]:.1f}")
    print(
        "\n| tree | workers | wall s (median) | events/s | CPU s (process + children) "
        "| events per CPU s | idle estimate events/s | vs baseline (wall, CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for workers in args.workers:
        base: dict[str, float] = {}
        for label in trees:
            rows = runs[(label, workers)]
            events = rows[0]["events"]
            wall = statistics.median(x["wall_s"] for x in rows)
            cpu = statistics.median(x["cpu_s"] + x["children_cpu_s"] for x in rows)
            idle = statistics.median(x["cpu_s"] + x["children_cpu_s"] / workers for x in rows)
            if label == "baseline":
                base = {"wall": wall, "cpu": cpu}
            walls = ", ".join(f"{x['wall_s']:.1f}" for x in rows)
            print(
                f"| {label} | {workers} | {wall:.2f} ({walls}) | {events / wall:,.0f} "
                f"| {cpu:.2f} | {events / cpu:,.0f} | {events / idle:,.0f} "
                f"| {base['wall'] / wall:.2f}x, {base['cpu'] / cpu:.2f}x |"
            )


if __name__ == "__main__":
    main()
