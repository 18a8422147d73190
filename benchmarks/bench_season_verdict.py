"""The cost of a customer's seasonal verdict (the Bayesian months test), this tree against
another, on the same customers, and whether the two give the same probabilities.

The API computes a customer's verdict at their first decision of the day in each process
(:func:`features.seasonality.seasonal_months`, cached for the day): with an audience of
one decision per customer per day, nearly every decision pays it. This simulates a
retailer (``--customers`` x ``--days``), builds its profiles with the real feature code
and records the inputs of every customer's :func:`~features.seasonality.season_probabilities`
call; then each tree (this one and ``--baseline-tree``, e.g. ``git archive main``) times
all those calls in a fresh interpreter, alternated ``--repeats`` times, and prints the
median µs per verdict and a digest of the probabilities (the same digest: the same
numbers, bit for bit).

    PYTHONPATH=. python benchmarks/bench_season_verdict.py --baseline-tree /tmp/base \\
        --customers 400 --days 730 --repeats 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def record_calls(customers: int, days: int, seed: int) -> list[tuple[Any, ...]]:
    """The arguments of every verdict a profile build computes."""
    import features.seasonality as seasonality
    from features.batch import build_profiles
    from features.dataset import RetailDataset
    from simulator import SimulatorConfig, simulate

    sim = simulate(SimulatorConfig(n_customers=customers, days=days, seed=seed))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    calls: list[tuple[Any, ...]] = []
    compute = seasonality.season_probabilities

    def recorded(*args: Any) -> tuple[float, ...]:
        calls.append(args)
        return compute(*args)

    seasonality.season_probabilities = recorded  # type: ignore[assignment]
    try:
        build_profiles(data)
    finally:
        seasonality.season_probabilities = compute
    return calls


def time_calls(path: Path, rounds: int) -> dict[str, Any]:
    """µs per verdict (the best of ``rounds`` passes) and the digest of the results."""
    from features.seasonality import season_probabilities

    calls = pickle.loads(path.read_bytes())
    best = float("inf")
    results: list[tuple[float, ...]] = []
    for _ in range(rounds):
        started = time.perf_counter()
        results = [season_probabilities(*args) for args in calls]
        best = min(best, (time.perf_counter() - started) / len(calls))
    digest = hashlib.sha256(repr(results).encode()).hexdigest()[:16]
    return {"us": best * 1e6, "digest": digest, "verdicts": len(calls)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--passes", type=int, default=3, help="passes per timing (the best)")
    parser.add_argument("--baseline-tree", type=Path, required=False)
    parser.add_argument("--time-calls", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_calls is not None:
        print(json.dumps(time_calls(args.time_calls, args.passes)))
        return
    trees = {"this": ROOT}
    if args.baseline_tree is not None:
        trees["baseline"] = args.baseline_tree.resolve()
    with tempfile.TemporaryDirectory(prefix="nba-season-") as tmp:
        path = Path(tmp) / "calls.pkl"
        path.write_bytes(pickle.dumps(record_calls(args.customers, args.days, args.seed)))
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for _ in range(args.repeats):
            for name, tree in trees.items():
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--time-calls",
                        str(path),
                        "--passes",
                        str(args.passes),
                    ],
                    env={**os.environ, "PYTHONPATH": str(tree)},
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=tree,
                ).stdout
                runs[name].append(json.loads(out.strip().splitlines()[-1]))
    print(f"load average {os.getloadavg()}, nproc {os.cpu_count()}")
    for name, found in runs.items():
        median = statistics.median(r["us"] for r in found)
        ratio = ""
        if name != "this":
            ratio = (
                f", this / {name} {statistics.median(r['us'] for r in runs['this']) / median:.2f}"
            )
        rounds = ", ".join(f"{r['us']:.0f}" for r in found)
        digests = sorted({r["digest"] for r in found})
        print(
            f"{name}: {median:.1f} µs per verdict (rounds {rounds}){ratio}; "
            f"{found[0]['verdicts']} verdicts, digests {digests}"
        )


if __name__ == "__main__":
    main()
