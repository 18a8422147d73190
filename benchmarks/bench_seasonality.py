"""Issue 12 goal: seasonal months detected with precision and recall >= 0.8 against the truth.

Simulates retailers (one per seed and history length), builds every profile at the end
of the history with the real feature code (:func:`features.batch.build_profiles`, the
store's priors estimated from the same data, as ``nba features build`` does) and scores
the claimed seasonal months against the simulator's truth, over (customer, month)
pairs. The posterior threshold (:data:`features.seasonality.THRESHOLD`) is chosen on
the tuning seed (``--tune-seed``), never on an evaluation seed: the threshold of a grid
that maximises the smaller of precision and recall (the goal weighs them equally).

It also reports the cost of seasonality in the online store: the packed state per
customer (:func:`features.online.codec.pack`) with the ``ad`` days kept for the whole
history (as the batch build holds them), with days past the replay window folded into
``am`` month counts (what the online store keeps), and without either.

With ``--baseline-tree`` (a checkout of the code to compare with, e.g. ``git archive
main | tar -x -C /tmp/base``), it instead times the profile build (``build_profiles``,
one process, priors estimated) of one simulated retailer with this tree's code and the
baseline's, alternated ``--repeats`` times, each in a fresh interpreter.

Run: ``PYTHONPATH=. python benchmarks/bench_seasonality.py --customers 5000``
or   ``PYTHONPATH=. python benchmarks/bench_seasonality.py --baseline-tree /tmp/base \
--customers 5000 --days 730 --repeats 3``
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
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from features.batch import ProfileBuild, build_profiles
from features.dataset import RetailDataset, write_dataset
from features.online import codec
from features.online.store import DEFAULT_REPLAY_WINDOW_SECONDS
from features.seasonality import THRESHOLD, season_probabilities, state_months
from features.state import fold_shopping_days
from simulator import SimulatorConfig, simulate

GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.05))


def true_pairs(truth: pd.DataFrame) -> set[tuple[str, int]]:
    """(customer, month) of every seasonal customer's two months."""
    pairs = set()
    for cid, first, second in truth[["customer_id", "season_month_1", "season_month_2"]].itertuples(
        index=False
    ):
        pairs |= {(cid, int(m)) for m in (first, second) if not pd.isna(m)}
    return pairs


def scores(claimed: set[tuple[str, int]], truth: set[tuple[str, int]]) -> dict[str, float]:
    hit = len(claimed & truth)
    return {
        "precision": hit / max(len(claimed), 1),
        "recall": hit / max(len(truth), 1),
        "claimed": len(claimed),
        "true": len(truth),
    }


def probabilities(build: ProfileBuild) -> dict[str, tuple[float, ...]]:
    """Each customer's posterior per month, as the profile build computes it."""
    now = build.as_of.timestamp()
    priors = build.priors
    return {
        cid: season_probabilities(
            state_months(state), state.get("t0"), now, priors.month_activity, priors.season_prior
        )
        for cid, state in build.states.items()
    }


def claims(probs: Mapping[str, Sequence[float]], threshold: float) -> set[tuple[str, int]]:
    return {(c, m + 1) for c, ps in probs.items() for m, p in enumerate(ps) if p >= threshold}


def state_bytes(build: ProfileBuild) -> dict[str, float]:
    """Median and p90 packed state per customer: all days kept, folded, no seasonality."""
    at = build.as_of.timestamp()
    sizes: dict[str, list[int]] = {"days kept": [], "folded": [], "none": []}
    for state in build.states.values():
        folded = fold_shopping_days(state, at - DEFAULT_REPLAY_WINDOW_SECONDS)
        bare = {f: v for f, v in state.items() if not f.startswith(("ad:", "am:"))}
        for name, kept in (("days kept", state), ("folded", folded), ("none", bare)):
            sizes[name].append(len(codec.pack(kept, {"_tz": "Europe/Paris"})))
    out: dict[str, float] = {}
    for name, values in sizes.items():
        out[f"{name} median B"] = float(np.median(values))
        out[f"{name} p90 B"] = float(np.percentile(values, 90))
    return out


def world(customers: int, days: int, seed: int) -> tuple[ProfileBuild, set[tuple[str, int]], float]:
    started = time.perf_counter()
    sim = simulate(SimulatorConfig(n_customers=customers, days=days, seed=seed))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    build = build_profiles(data)
    return build, true_pairs(sim.truth.customers), time.perf_counter() - started


#: Times one profile build of the dataset in argv[1] with the code on ``sys.path``.
_TIMED_BUILD = """
import sys, time
from features.batch import build_profiles
from features.dataset import load_dataset
data = load_dataset(sys.argv[1])
started, cpu = time.perf_counter(), time.process_time()
build_profiles(data, workers=1)
print(time.perf_counter() - started, time.process_time() - cpu)
"""


def build_seconds(tree: str, directory: str) -> tuple[float, float]:
    """Wall and CPU seconds of one profile build with the code of ``tree``."""
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run(
        [sys.executable, "-c", _TIMED_BUILD, directory],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
    )
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def compare_builds(baseline: str, customers: int, days: int, seed: int, repeats: int) -> dict:
    """Profile build wall and CPU seconds (CPU: less moved by the other processes of a
    shared machine), this tree and the baseline's, alternated; medians and ratios."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sim = simulate(SimulatorConfig(n_customers=customers, days=days, seed=seed))
    runs: dict[str, list[tuple[float, float]]] = {"branch": [], "baseline": []}
    with tempfile.TemporaryDirectory() as directory:
        write_dataset(RetailDataset(sim.customers, sim.products, sim.offers, sim.events), directory)
        for _ in range(repeats):
            for name, tree in (("branch", here), ("baseline", baseline)):
                runs[name].append(build_seconds(tree, directory))
            print({k: v[-1] for k, v in runs.items()}, flush=True)
    out: dict[str, object] = {"wall, cpu seconds": runs}
    for i, measure in enumerate(("wall", "cpu")):
        medians = {k: statistics.median(r[i] for r in v) for k, v in runs.items()}
        out[f"median {measure}"] = medians
        out[f"{measure} branch / baseline"] = medians["branch"] / medians["baseline"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--tune-seed", type=int, default=11)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--days", type=int, nargs="+", default=[730, 400, 90])
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--baseline-tree", help="time the profile build against this code")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.baseline_tree:
        timing = compare_builds(
            args.baseline_tree, args.customers, max(args.days), args.seeds[0], args.repeats
        )
        print(json.dumps(timing, indent=2))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(timing, f, indent=2)
        return
    results: dict[str, object] = {"threshold in use": THRESHOLD}

    build, truth, seconds = world(args.customers, max(args.days), args.tune_seed)
    probs = probabilities(build)
    grid = {t: scores(claims(probs, t), truth) for t in GRID}
    best = max(GRID, key=lambda t: min(grid[t]["precision"], grid[t]["recall"]))
    print(f"tuning seed {args.tune_seed}, {max(args.days)} days ({seconds:.0f} s):")
    for t, s in grid.items():
        mark = " <- best" if t == best else ""
        print(f"  threshold {t:.2f}: precision {s['precision']:.3f} recall {s['recall']:.3f}{mark}")
    results["tuning"] = {"seed": args.tune_seed, "best threshold": best, "grid": grid}

    for days in args.days:
        for seed in args.seeds:
            build, truth, seconds = world(args.customers, days, seed)
            claimed = {(p.customer_id, m) for p in build.profiles for m in p.seasonal_months}
            s = scores(claimed, truth)
            s.update(state_bytes(build))
            s["seconds"] = seconds
            results[f"seed {seed}, {days} days"] = s
            print(
                f"seed {seed}, {days} days: precision {s['precision']:.3f} recall "
                f"{s['recall']:.3f} ({s['claimed']} claimed, {s['true']} true); state bytes "
                + ", ".join(f"{k} {v:.0f}" for k, v in s.items() if k.endswith(" B"))
            )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2, default=str)


if __name__ == "__main__":
    main()
