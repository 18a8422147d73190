"""The cost of a customer's seasonal verdict (the Bayesian months test), this tree against
another, on the same customers, and whether the two give the same probabilities.

The API computes a customer's verdict at their first decision of the day in each process
(:func:`features.seasonality.seasonal_months`, cached for the day): with an audience of
one decision per customer per day, nearly every decision pays it. This simulates a
retailer (``--customers`` x ``--days``), builds its profiles with the real feature code
and records the inputs of every customer's :func:`~features.seasonality.season_probabilities`
call; then this tree's ``features/seasonality.py`` and ``--baseline-tree``'s (e.g. ``git
archive main``), loaded side by side in one process, each compute all those verdicts in
turn, ``--repeats`` rounds, timed by the process's CPU clock (the machine's other load
moves wall times far more); it prints the median µs per verdict and a digest of each
tree's probabilities (the same digest: the same numbers, bit for bit).

    PYTHONPATH=. python benchmarks/bench_season_verdict.py --baseline-tree /tmp/base \\
        --customers 400 --days 730 --repeats 9
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import statistics
import sys
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


def load_module(tree: Path, name: str) -> Any:
    """``features/seasonality.py`` of ``tree`` as a module of its own (it imports only the
    standard library and numpy), so that two trees' versions run in one process."""
    spec = importlib.util.spec_from_file_location(name, tree / "features" / "seasonality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and doctests look modules up by name
    spec.loader.exec_module(module)
    return module


def time_trees(calls: list[tuple[Any, ...]], trees: dict[str, Path], rounds: int) -> dict[str, Any]:
    """Per tree: the CPU µs per verdict of each round (the trees alternate within a round,
    in one process: the same machine state) and the digest of its probabilities."""
    modules = {name: load_module(tree, f"_season_{name}") for name, tree in trees.items()}
    out: dict[str, Any] = {name: {"us": [], "digest": ""} for name in trees}
    for _ in range(rounds):
        for name, module in modules.items():
            started = time.process_time()
            results = [module.season_probabilities(*args) for args in calls]
            out[name]["us"].append((time.process_time() - started) / len(calls) * 1e6)
            out[name]["digest"] = hashlib.sha256(repr(results).encode()).hexdigest()[:16]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-tree", type=Path, required=True)
    args = parser.parse_args()
    trees = {"this": ROOT}
    if args.baseline_tree is not None:
        trees["baseline"] = args.baseline_tree.resolve()
    calls = record_calls(args.customers, args.days, args.seed)
    runs = time_trees(calls, trees, args.repeats)
    print(f"load average {os.getloadavg()}, nproc {os.cpu_count()}, {len(calls)} verdicts")
    this = statistics.median(runs["this"]["us"])
    for name, found in runs.items():
        median = statistics.median(found["us"])
        rounds = ", ".join(f"{us:.0f}" for us in found["us"])
        ratio = "" if name == "this" else f", this / {name} {this / median:.2f}"
        digest = found["digest"]
        print(f"{name}: {median:.1f} µs CPU per verdict (rounds {rounds}){ratio}; digest {digest}")


if __name__ == "__main__":
    main()
