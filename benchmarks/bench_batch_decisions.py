"""Batch decisions: customers/s of ``decide_audience`` against a baseline, same run.

Each measurement runs in a fresh subprocess that imports ``serving.batch_decisions``
from a source tree, reads the profiles Parquet file, builds the pipeline (with the
registry's champions when ``--tracking-uri`` is given, as ``nba decide`` does) and
times ``decide_audience(frame, ...)`` on the frame (``--customers`` rows: the file's
profiles, repeated under new ids when it has fewer): reading the audience, deciding
and assembling the table. The baseline tree (``--baseline-src``, e.g. an export of
an earlier commit of main) and this tree are measured alternately, with 1 and 2
workers, ``--repeat`` times each; the table gives medians and the ratio to the
baseline, the CPU per customer of the process and its forked workers, and the
rate on idle cores that this CPU allows (all of it shared evenly among the deciding
processes, the parent's at least: customers / max(parent CPU, all CPU / workers);
the parent decides chunks too in a tree where it does, else only its serial part), which
the machine's other load moves less than the wall clock. Every run must give the same
decisions table (a hash of each row's ids, action, channel, send times, priority,
propensity and reasons): the script fails when the trees, or 1 and 2 workers, differ
(``--different-decisions`` reports anyway). In this tree's process it
also times the floors that bound the gains:

* ``core``: ``pipeline.route`` alone over profiles already built (what ``nba/``
  costs per decision, one process);
* ``profiles``: building the profiles from the frame, row by row
  (``row_to_profile``) and column by column (``profiles_from_frame``).

    git -C /work/main archive <commit> | tar -x -C /tmp/base
    .venv/bin/python benchmarks/bench_batch_decisions.py --profiles data/profiles.parquet \\
        --tracking-uri sqlite:///data/mlflow.db --baseline-src /tmp/base
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parents[1]


def audience(profiles: Path, customers: int) -> pd.DataFrame:
    """The first ``customers`` profile rows, repeated under new ids when there are fewer."""
    frame = pd.read_parquet(profiles)
    copies = [
        frame.assign(customer_id=frame["customer_id"] + ("" if k == 0 else f"-{k}"))
        for k in range(-(-customers // len(frame)))
    ]
    return pd.concat(copies, ignore_index=True).iloc[:customers]


def measure(
    profiles: Path,
    tracking_uri: str | None,
    workers: int,
    customers: int,
    products: Path | None = None,
    rejected: int = 0,
) -> dict:
    """One timed run of this interpreter's ``serving.batch_decisions`` (the subprocess):
    with ``products`` (a contract products table), its stock levels, and, in a tree
    whose batch rows carry products, the champion recommender and the table's order
    as the popularity list (what ``nba decide --products`` gives it)."""
    from cli.decide import load_catalog, load_contact_policy
    from nba.pipeline import build_pipeline
    from serving.batch_decisions import decide_audience

    frame = audience(profiles, customers)
    catalog, contacts = load_catalog(None), load_contact_policy(None)
    champions = _champions(tracking_uri)
    pipeline = build_pipeline(catalog, contacts, scorer=champions.scorer)
    now = pd.Timestamp(frame["as_of"].max()).tz_convert("UTC").to_pydatetime()
    extra: dict[str, object] = {}
    if rejected:  # the rows explain the best rejected actions (nba decide --rejected)
        extra["rejected"] = rejected
    if products is not None:
        from features.online.stock import StockLevels

        listed = pd.read_parquet(products)
        extra["stock"] = StockLevels(None, "", listed)
        if "recommender" in inspect.signature(decide_audience).parameters:
            extra["recommender"] = champions.recommender
            extra["popular"] = listed["product_id"].astype(str).head(50).tolist()
    started, cpu = time.perf_counter(), time.process_time()
    table = decide_audience(
        frame,
        catalog,
        contacts,
        now,
        policy=pipeline,
        workers=workers,
        **extra,  # type: ignore[arg-type]
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    forked = children.ru_utime + children.ru_stime
    shown = table["products"].map(len).gt(0).sum() if "products" in table.columns else 0
    return {
        "digest": decisions_digest(table),
        "rows_with_products": int(shown),
        "rate": len(frame) / elapsed,
        # CPU of this process and of the workers it forked, per customer
        "cpu_ms": 1000 * (cpu + forked) / len(frame),
        # customers/s on idle cores: all the CPU shared evenly among the deciding
        # processes (each decides about as many chunks), this process's at least (a tree
        # whose parent only waits: its serial part; one that decides too: its chunks)
        "idle_rate": len(frame) / max(cpu, (cpu + forked) / workers),
        "models": champions.label,
        "rows": len(table),
        "contacts": int(table["channel"].notna().sum()),
    }


def _champions(tracking_uri: str | None) -> Any:
    """The registry's champions as the API and ``nba decide`` load them (empty without)."""
    from serving.models import ModelSet, champion_models
    from serving.startup import open_registry

    if not tracking_uri:
        return ModelSet()
    return champion_models(open_registry(tracking_uri)).current


def decisions_digest(table: pd.DataFrame) -> str:
    """A hash of what the decisions table says of every customer (ids, actions,
    channels, send times, priorities and propensities to 12 decimals, reasons): equal
    across trees and worker counts when they decide alike."""
    digest = hashlib.sha256()
    for row in table.itertuples(index=False):
        digest.update(
            repr(
                (
                    row.customer_id,
                    row.decision_id,
                    row.action_id,
                    row.channel,
                    str(row.send_at_utc),
                    row.send_at_local,
                    None if pd.isna(row.priority) else round(row.priority, 12),
                    None if pd.isna(row.propensity) else round(row.propensity, 12),
                    row.reasons,
                )
            ).encode()
        )
    return digest.hexdigest()


def floors(profiles: Path, tracking_uri: str | None, customers: int) -> dict[str, float]:
    """customers/s of the core alone and of building profiles both ways (this tree)."""
    from cli.decide import load_catalog, load_contact_policy, load_scorer
    from features.profile_table import profiles_from_frame, row_to_profile
    from nba.context import CustomerContext
    from nba.pipeline import build_pipeline

    frame = audience(profiles, customers)
    catalog, contacts = load_catalog(None), load_contact_policy(None)
    scorer, _ = load_scorer(tracking_uri) if tracking_uri else (None, "rules")
    pipeline = build_pipeline(catalog, contacts, scorer=scorer)
    now = pd.Timestamp(frame["as_of"].max()).tz_convert("UTC").to_pydatetime()
    out = {}
    started = time.perf_counter()
    rows = [row_to_profile({str(k): v for k, v in r.items()}) for r in frame.to_dict("records")]
    out["profiles_rows"] = len(frame) / (time.perf_counter() - started)
    started = time.perf_counter()
    built = profiles_from_frame(frame)
    out["profiles_columns"] = len(frame) / (time.perf_counter() - started)
    assert built == rows, "profiles_from_frame differs from row_to_profile"
    started, cpu = time.perf_counter(), time.process_time()
    for p in built:
        pipeline.route(CustomerContext(p, now), seed=f"0:{p.customer_id}")
    out["core"] = len(frame) / (time.perf_counter() - started)
    out["core_cpu_ms"] = 1000 * (time.process_time() - cpu) / len(frame)
    return out


def run_child(
    src: Path,
    args: argparse.Namespace,
    mode: str,
    workers: int = 1,
    customers: int = 0,
    rejected: int = 0,
) -> dict:
    command = [
        sys.executable,
        str(HERE / "benchmarks" / "bench_batch_decisions.py"),
        "--child",
        mode,
        "--profiles",
        str(args.profiles),
        "--customers",
        str(customers or args.customers),
        "--workers",
        str(workers),
        *(["--products", str(args.products)] if args.products else []),
        *(["--rejected", str(rejected)] if rejected else []),
    ]
    return measure_in_tree(command, src, args.tracking_uri)


def measure_in_tree(command: list[str], src: Path, tracking_uri: str | None) -> dict:
    """Run a measuring ``command`` with ``src``'s packages first; its last line is JSON."""
    if tracking_uri:
        command = [*command, "--tracking-uri", tracking_uri]
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement in {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, required=True, help="profiles Parquet file")
    parser.add_argument("--tracking-uri", help="MLflow registry with champions [default: rules]")
    parser.add_argument(
        "--products",
        type=Path,
        help="contract products table: stock levels, and the products of each row (the "
        "champion recommender's, else the table's order as popularity) [default: none]",
    )
    parser.add_argument("--baseline-src", type=Path, help="source tree of the baseline")
    parser.add_argument(
        "--customers", type=int, default=12_000, help="audience size (profiles repeated)"
    )
    parser.add_argument("--floor-customers", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--different-decisions",
        action="store_true",
        help="report even when the trees' decision tables differ (the times then compare "
        "different work, and the report says so)",
    )
    parser.add_argument(
        "--rejected",
        type=int,
        default=0,
        help="also run this tree writing the N best rejected actions' reasons on each row "
        "(nba decide --rejected N), alternated with the others [default: 0, not run]",
    )
    parser.add_argument("--child", choices=("decide", "floors"), help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "decide":
        print(
            json.dumps(
                measure(
                    args.profiles,
                    args.tracking_uri,
                    args.workers,
                    args.customers,
                    args.products,
                    args.rejected,
                )
            )
        )
        return 0
    if args.child == "floors":
        print(json.dumps(floors(args.profiles, args.tracking_uri, args.customers)))
        return 0

    trees = {"this": HERE}
    if args.baseline_src is not None:
        trees = {"baseline": args.baseline_src.resolve(), **trees}
    #: each measured run's tree and the --rejected it passes (0: no rejected column)
    measured = {name: (src, 0) for name, src in trees.items()}
    if args.rejected:
        measured[f"this --rejected {args.rejected}"] = (HERE, args.rejected)
    rates: dict[tuple[str, int], list[float]] = {}
    cpus: dict[tuple[str, int], list[float]] = {}
    idle: dict[tuple[str, int], list[float]] = {}
    floor_runs: list[dict[str, float]] = []
    digests: dict[str, set[str]] = {}
    shown: dict[str, int] = {}
    models = ""
    for _ in range(args.repeat):
        for workers in (1, 2):
            for name, (src, rejected) in measured.items():
                result = run_child(src, args, "decide", workers, rejected=rejected)
                rates.setdefault((name, workers), []).append(result["rate"])
                cpus.setdefault((name, workers), []).append(result.get("cpu_ms", float("nan")))
                idle.setdefault((name, workers), []).append(result.get("idle_rate", float("nan")))
                digests.setdefault(name, set()).add(result.get("digest", "?"))
                shown[name] = result.get("rows_with_products", 0)
                models = result["models"]
        floor_runs.append(run_child(HERE, args, "floors", customers=args.floor_customers))
    same = len(set().union(*digests.values())) == 1
    if not same and not args.different_decisions:
        raise SystemExit(f"the decision tables differ (between trees or worker counts): {digests}")

    print("```")
    print(
        "$ "
        + shlex.join([".venv/bin/python", "benchmarks/bench_batch_decisions.py", *sys.argv[1:]])
    )
    print("```")
    print()
    print(
        f"{args.customers:,} customers, models: {models}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
        f"medians of {args.repeat}, alternated; "
        + (
            "the same decision table in every run of both trees."
            if same
            else "the trees decide differently (--different-decisions)."
        )
        + " Rows with products: "
        + ", ".join(f"{name} {n:,}" for name, n in shown.items())
        + "."
    )
    print()
    core_cpu = statistics.median(run["core_cpu_ms"] for run in floor_runs)
    print(
        "| run | workers | customers/s (median) | runs | vs baseline "
        "| CPU ms per customer (all processes) | vs the core's CPU "
        "| idle-core estimate, customers/s (median; runs) | vs baseline |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for workers in (1, 2):
        base = rates.get(("baseline", workers))
        for name in measured:
            values = rates[(name, workers)]
            median = statistics.median(values)
            ratio = f"{median / statistics.median(base):.2f}x" if base else "-"
            runs = ", ".join(f"{v:,.0f}" for v in values)
            cpu = statistics.median(cpus[(name, workers)])
            estimates = idle[(name, workers)]
            estimate = statistics.median(estimates)
            base_idle = idle.get(("baseline", workers))
            idle_ratio = f"{estimate / statistics.median(base_idle):.2f}x" if base_idle else "-"
            print(
                f"| {name} | {workers} | {median:,.0f} | {runs} | {ratio} "
                f"| {cpu:.2f} | {cpu / core_cpu:.2f}x "
                f"| {estimate:,.0f} ({', '.join(f'{v:,.0f}' for v in estimates)}) "
                f"| {idle_ratio} |"
            )
    print()
    print(
        f"| floor (this tree, 1 process, {args.floor_customers:,} customers) | customers/s | runs |"
    )
    print("|---|---:|---|")
    for key, label in (
        ("core", "core: pipeline.route over built profiles"),
        ("core_cpu_ms", "core: CPU ms per decision"),
        ("profiles_rows", "profiles, row_to_profile per row"),
        ("profiles_columns", "profiles, profiles_from_frame"),
    ):
        values = [run[key] for run in floor_runs]
        form = ",.2f" if key.endswith("_ms") else ",.0f"
        runs = ", ".join(f"{v:{form}}" for v in values)
        print(f"| {label} | {statistics.median(values):{form}} | {runs} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
