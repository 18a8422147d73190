"""CPU cost of parsing posted events (``serving.ingest.parse_items``), tree against tree.

The first step of ``POST /v1/events``: each item validated into a contract record (a
Segment message mapped). Events are the last ``--events`` of a simulated retailer, as
the JSON rows a journey tool posts; each tree (``--tree``, a source checkout) parses
them in its own process, alternated, ``--repeats`` times; the CPU seconds of the parse
alone are compared as medians and ratios against the first tree, in the same run.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_event_parse.py \\
        --tree /path/to/main --tree . --customers 2000 --days 30 --events 50000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import json, sys, time
from serving.ingest import parse_items
items = json.loads(open(sys.argv[1]).read())
start = time.process_time()
parsed = parse_items(items)
print(json.dumps({"cpu": time.process_time() - start, "records": len(parsed.records),
                  "rejected": len(parsed.rejections)}))
"""


def write_events(path: Path, customers: int, days: int, events: int, seed: int) -> int:
    """The last ``events`` simulated events as contract JSON rows, in ``path``."""
    from simulator import SimulatorConfig, simulate

    sim = simulate(SimulatorConfig(n_customers=customers, days=days, seed=seed))
    frame = sim.events.sort_values("timestamp").tail(events)
    rows = []
    for row in frame.to_dict("records"):
        item = {k: v for k, v in row.items() if v is not None and v == v}
        item["timestamp"] = row["timestamp"].isoformat()
        if isinstance(item.get("properties"), str):
            item["properties"] = json.loads(item["properties"])
        rows.append(item)
    path.write_text(json.dumps(rows, default=str))
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True, type=Path)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.json"
        n = write_events(path, args.customers, args.days, args.events, args.seed)
        cpu: dict[Path, list[float]] = {tree: [] for tree in args.tree}
        for _ in range(args.repeats):
            for tree in args.tree:
                env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(path)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=tree,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                cpu[tree].append(result["cpu"])
                print(
                    f"{tree}: {result['cpu']:.3f} CPU s, {result['records']} records, "
                    f"{result['rejected']} rejected",
                    flush=True,
                )
    base = statistics.median(cpu[args.tree[0]])
    print(f"\n{n} events, {args.repeats} alternated repetitions, {time.strftime('%H:%M:%S')}")
    for tree, seconds in cpu.items():
        med = statistics.median(seconds)
        print(
            f"{tree}: median {med:.3f} CPU s = {1e6 * med / n:.1f} us/event, "
            f"{base / med:.3f}x the first tree's rate"
        )


if __name__ == "__main__":
    main()
