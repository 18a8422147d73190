"""Training data at scale: point-in-time examples per second, and ``nba train`` per model.

* examples: the columnar path that training uses
  (:func:`features.point_in_time.point_in_time_columns`, then the propensity
  design's feature columns, :func:`training.contact_features.profile_matrix` and
  :func:`~training.contact_features.channel_matrix`) on sampled ``message_sent``
  rows, against the per-profile path it replaced (:func:`features.batch.point_in_time`,
  one ``CustomerProfile`` per row, then ``profile_features`` / ``channel_features``
  per row) on a smaller sample (it is ~10x slower), in the same process, alternated,
  medians over repeats; CPU seconds (``time.process_time``, one process) and wall;
* the recommender's training budget (``--recommender-budget N``): the family selection
  ``nba train`` runs (every family, validation then the held-out test) on at most ``N``
  customers and on all of them, in the same process, alternated (CPU seconds); then
  both chosen families measured on the same full held-out test (what the model fitted
  on every customer is worth with and without the budget);
* examples per second (``--workers-rows N``, 0: every send): the examples training
  cuts (:func:`training.examples.contact_examples`) in one process and in one per
  core, alternated, wall and CPU seconds (the forked processes' included);
* training (``--train``): ``nba train <target>`` for each target, one process each
  under ``/usr/bin/time -v`` (wall, user and system CPU of it and its forked
  processes, peak memory), in this tree and, with ``--baseline-tree``, in another
  source tree (e.g. ``git archive main``), alternated, ``--train-repeats`` times; with
  the wall and CPU seconds of each step that ``nba train`` prints (reading the data;
  per model the shared examples and fingerprint, evaluation, fit, measure, logging).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_training_scale.py --data /tmp/r20k \\
        --rows 60000 --baseline-rows 5000 --repeats 3
    PYTHONPATH=. .venv/bin/python benchmarks/bench_training_scale.py --data /tmp/r20k \\
        --no-examples --train channels offers --baseline-tree /tmp/main-tree
    PYTHONPATH=. .venv/bin/python benchmarks/bench_training_scale.py --data /tmp/r100k \\
        --no-examples --workers-rows 0 --train all
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_features import report
from features.batch import point_in_time
from features.dataset import RetailDataset, load_dataset
from features.point_in_time import point_in_time_columns
from nba.channels import Channel
from training.contact_features import (
    channel_codes,
    channel_features,
    channel_matrix,
    profile_features,
    profile_matrix,
)
from training.data import default_weights
from training.evaluation import EvaluationProtocol
from training.examples import (
    contact_examples,
    local_hours_of_week,
    message_sends,
    reference_moment,
    sample_rows,
)
from training.recommender_families import FamilySpec
from training.selection import measure_on_task, select_recommender

TARGETS = ("recommender", "offers", "channels", "send-time")


def columnar_examples(data: RetailDataset, rows: pd.DataFrame) -> np.ndarray:
    """Training's path: profile columns of every row, then the feature columns."""
    cols = point_in_time_columns(data, rows[["customer_id", "timestamp"]])
    hours = local_hours_of_week(data, rows) % 24
    per = channel_matrix(cols, channel_codes(rows["channel"]), hours)
    return np.hstack([profile_matrix(cols), per])


def per_profile_examples(data: RetailDataset, rows: pd.DataFrame) -> np.ndarray:
    """The path it replaced: a ``CustomerProfile`` per row, then its features row by row."""
    profiles = point_in_time(data, rows[["customer_id", "timestamp"]], workers=1)
    how = local_hours_of_week(data, rows)
    return np.vstack(
        [
            np.concatenate(
                [profile_features(p), channel_features(p, Channel(c), reference_moment(int(h)))]
            )
            for p, c, h in zip(profiles, rows["channel"], how, strict=True)
        ]
    )


def _timed(build: Callable[[], np.ndarray]) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    n = len(build())
    return time.process_time() - cpu, time.perf_counter() - wall, n


def time_examples(
    data: RetailDataset, rows: pd.DataFrame, baseline_rows: pd.DataFrame, repeats: int
) -> dict[str, float]:
    """Rows per CPU second and per wall second of both paths, alternated, medians."""
    ours: list[tuple[float, float, int]] = []
    base: list[tuple[float, float, int]] = []
    for _ in range(repeats):
        ours.append(_timed(lambda: columnar_examples(data, rows)))
        base.append(_timed(lambda: per_profile_examples(data, baseline_rows)))
        print(f"  columnar {ours[-1][:2]}, per-profile {base[-1][:2]}", flush=True)
    ours_cpu = statistics.median(c for c, _, _ in ours)
    ours_wall = statistics.median(w for _, w, _ in ours)
    base_cpu = statistics.median(c for c, _, _ in base)
    base_wall = statistics.median(w for _, w, _ in base)
    return {
        "rows": len(rows),
        "columnar_cpu_s": ours_cpu,
        "columnar_wall_s": ours_wall,
        "columnar_rows_per_cpu_s": len(rows) / ours_cpu,
        "columnar_rows_per_wall_s": len(rows) / ours_wall,
        "baseline_rows": len(baseline_rows),
        "per_profile_cpu_s": base_cpu,
        "per_profile_wall_s": base_wall,
        "per_profile_rows_per_cpu_s": len(baseline_rows) / base_cpu,
        "per_profile_rows_per_wall_s": len(baseline_rows) / base_wall,
        "speedup_cpu": (len(rows) / ours_cpu) / (len(baseline_rows) / base_cpu),
    }


def _cpu_with_children() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def time_workers(data: RetailDataset, rows: pd.DataFrame, repeats: int) -> dict[str, object]:
    """Point-in-time examples (:func:`training.examples.contact_examples`: profile columns
    and local send hours) of ``rows`` cut in one process and in one per core, alternated:
    wall seconds, CPU seconds (the forked processes' included), medians; the two give
    the same columns (checked once)."""
    cores = os.cpu_count() or 1
    runs: dict[int, list[tuple[float, float]]] = {1: [], cores: []}
    built = {}
    for _ in range(repeats):
        for workers in runs:
            wall, cpu = time.perf_counter(), _cpu_with_children()
            built[workers] = contact_examples(data, rows, workers=workers)
            runs[workers].append((time.perf_counter() - wall, _cpu_with_children() - cpu))
            print(f"  {workers} process(es): {runs[workers][-1]}", flush=True)
    one, many = built[1].columns, built[cores].columns
    assert all(
        np.array_equal(getattr(one, f), getattr(many, f), equal_nan=getattr(one, f).dtype != object)
        for f in ("purchases_total", "open_rate", "day_activity", "customer_id")
    )
    out: dict[str, object] = {"rows": len(rows), "cores": cores}
    for workers, measured in runs.items():
        wall = statistics.median(w for w, _ in measured)
        cpu = statistics.median(c for _, c in measured)
        out[f"workers_{workers}"] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "rows_per_s": len(rows) / wall,
            "rows_per_cpu_s": len(rows) / cpu,
            "runs": measured,
        }
    return out


def recommender_budget(
    data: RetailDataset, max_customers: int, repeats: int, seeds: int
) -> dict[str, object]:
    """Selection CPU seconds with and without the customer budget (alternated, medians),
    the families each chose, and each chosen family's NDCG on the full held-out test."""
    cpu: dict[str, list[float]] = {"budget": [], "full": []}
    chosen: dict[str, FamilySpec] = {}
    for _ in range(repeats):
        for label, limit in (("budget", max_customers), ("full", None)):
            started = time.process_time()
            selection = select_recommender(
                data, label, protocol=EvaluationProtocol(max_customers=limit), test_all=True
            )
            cpu[label].append(time.process_time() - started)
            chosen[label] = selection.chosen
            print(f"  {label}: {cpu[label][-1]:.1f} CPU s, chose {selection.chosen.label()}")
    _, test = EvaluationProtocol().tasks(data, default_weights(data), "full test")
    quality: dict[str, dict[str, object]] = {}
    for label, spec in chosen.items():
        result = measure_on_task(spec, test, seeds)
        runs = result.ndcg_runs or (result.warm.ndcg,)
        quality[label] = {
            "family": spec.label(),
            "ndcg_median": statistics.median(runs),
            "ndcg_runs": list(runs),
            "customers": result.warm.customers,
        }
        print(f"  {label} choice on the full test: {quality[label]}", flush=True)
    return {
        "max_customers": max_customers,
        "customers": len(data.customers),
        "cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
        "cpu_runs": cpu,
        "quality": quality,
    }


_TIME_FIELDS = {
    "wall_s": r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)",
    "user_s": r"User time \(seconds\): (\S+)",
    "system_s": r"System time \(seconds\): (\S+)",
    "max_rss_mb": r"Maximum resident set size \(kbytes\): (\S+)",
}


def _parse_time(report: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, pattern in _TIME_FIELDS.items():
        found = re.search(pattern, report)
        if found is None:
            continue
        text = found.group(1)
        if name == "wall_s":
            seconds = 0.0
            for part in text.split(":"):
                seconds = seconds * 60 + float(part)
            out[name] = seconds
        elif name == "max_rss_mb":
            out[name] = float(text) / 1024
        else:
            out[name] = float(text)
    return out


_READ_LINE = re.compile(r"^read \S+ in ([0-9.]+) s$", re.MULTILINE)
_TRAINED_LINE = re.compile(
    r"^([\w-]+): trained in ([0-9.]+) s, ([0-9.]+) CPU s \(wall/CPU: (.*)\)$", re.MULTILINE
)
_STEP = re.compile(r"(\w+) ([0-9.]+)/([0-9.]+) s")


def parse_stages(output: str) -> dict[str, object]:
    """The seconds ``nba train`` prints: reading the data, and each model's steps
    (``{"read": s, "models": {name: {"wall": s, "cpu": s, step: [wall, cpu], ...}}}``;
    empty for a tree whose ``nba train`` does not print them)."""
    stages: dict[str, object] = {}
    read = _READ_LINE.search(output)
    if read:
        stages["read"] = float(read.group(1))
    models: dict[str, dict[str, object]] = {}
    for name, wall, cpu, steps in _TRAINED_LINE.findall(output):
        models[name] = {"wall": float(wall), "cpu": float(cpu)}
        models[name].update({k: [float(w), float(c)] for k, w, c in _STEP.findall(steps)})
    if models:
        stages["models"] = models
    return stages


def train_once(
    tree: Path, target: str, data_dir: Path, store: Path, extra: Sequence[str] = ()
) -> dict[str, object]:
    """``nba train target [extra]`` from source ``tree`` under ``/usr/bin/time -v``: its
    time and memory, and the steps it printed (:func:`parse_stages`)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "cli.main", "train", target, "--data", str(data_dir)]
    command += list(extra)
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command, "--data-dir", str(store)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"nba train {target} failed in {tree}:\n{done.stderr[-2000:]}")
    return {**_parse_time(done.stderr), **parse_stages(done.stdout)}


def time_training(
    data_dir: Path,
    targets: list[str],
    trees: dict[str, Path],
    extra: Sequence[str] = (),
    repeats: int = 1,
) -> dict[str, dict[str, list[dict[str, object]]]]:
    """Each target in each tree, ``repeats`` times (alternated), each run with a fresh
    MLflow store; ``extra`` options go to this tree's runs only."""
    results: dict[str, dict[str, list[dict[str, object]]]] = {}
    for target in targets:
        results[target] = {label: [] for label in trees}
        for _ in range(repeats):
            for label, tree in trees.items():
                options = extra if label == "this" else ()
                with tempfile.TemporaryDirectory() as store:
                    measured = train_once(tree, target, data_dir, Path(store), options)
                results[target][label].append(measured)
                print(f"nba train {target} ({label}): {measured}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="a data folder (nba simulate)")
    parser.add_argument("--rows", type=int, default=60_000, help="sends, columnar path")
    parser.add_argument("--baseline-rows", type=int, default=5_000, help="sends, per profile")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-examples", action="store_true", help="skip the examples timing")
    parser.add_argument(
        "--workers-rows",
        type=int,
        default=None,
        help="sends (0: all) cut in one process and in one per core (examples per second)",
    )
    parser.add_argument("--train", nargs="*", choices=[*TARGETS, "all"], default=[])
    parser.add_argument("--baseline-tree", type=Path, default=None, help="source tree to compare")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--recommender-budget", type=int, default=None, help="customers: selection with and without"
    )
    parser.add_argument("--seeds", type=int, default=1, help="fits per stochastic family (budget)")
    parser.add_argument(
        "--train-args", nargs="*", default=[], help="extra nba train options (this tree only)"
    )
    parser.add_argument("--train-repeats", type=int, default=1, help="runs of each nba train")
    args = parser.parse_args()

    results: dict[str, object] = {
        "nproc": os.cpu_count(),
        "load_before": os.getloadavg(),
    }
    if not args.no_examples:
        data = load_dataset(args.data)
        sends = message_sends(data.events)
        rows = sample_rows(sends, args.rows, seed=0)
        baseline_rows = sample_rows(sends, args.baseline_rows, seed=1)
        results["customers"] = len(data.customers)
        results["events"] = len(data.events)
        results["examples"] = time_examples(data, rows, baseline_rows, args.repeats)
        print(json.dumps(results["examples"], indent=2), flush=True)
    if args.workers_rows is not None:
        data = load_dataset(args.data)
        sends = message_sends(data.events)
        rows = sample_rows(sends, args.workers_rows or None, seed=0)
        results["customers"] = len(data.customers)
        results["events"] = len(data.events)
        results["workers"] = time_workers(data, rows, args.repeats)
        print(json.dumps(results["workers"], indent=2), flush=True)
    if args.recommender_budget is not None:
        data = load_dataset(args.data)
        results["recommender_budget"] = recommender_budget(
            data, args.recommender_budget, args.repeats, args.seeds
        )
    if args.train:
        trees = {"this": Path(__file__).resolve().parents[1]}
        if args.baseline_tree is not None:
            trees["baseline"] = args.baseline_tree.resolve()
        results["train"] = time_training(
            args.data, args.train, trees, args.train_args, args.train_repeats
        )
    results["load_after"] = os.getloadavg()
    report(results, args.out)


if __name__ == "__main__":
    main()
