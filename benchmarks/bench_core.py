"""The per-decision core: µs per ``DecisionPipeline.route`` by stage, against a baseline.

Each measurement runs in a fresh subprocess that imports ``nba`` (and ``features``)
from a source tree, builds the profiles of a profiles Parquet file (``nba features
build``; ``--customers`` rows, repeated under new ids when the file has fewer), the
demo's catalog and contact policy, and the pipeline (rule scorer, or the registry's
champions with ``--tracking-uri``), then decides every customer at one ``now`` (the
file's latest ``as_of``): once to warm up, then ``--repeat`` timed passes without
instrumentation (the total), then one pass with each stage's function wrapped in a
timer (the split; the wrappers' own cost lands in the stages). The baseline tree
(``--baseline-src``, e.g. ``git archive`` of the branch point) and this tree are
measured alternately; the table gives medians and the ratio. Both trees must decide
alike: the script fails when their decisions (action, channel, send time, propensity,
rejections, explanation) differ.

``--instructions`` counts instead of timing: each tree decides ``--customers`` customers
(after 50 to warm up) under valgrind's callgrind, less a run that decides none after the
same set-up; instructions per decision do not move with the machine's load, which the
times on a shared machine do (valgrind must be installed; minutes per tree).

    nba simulate --customers 3000 --days 30 --seed 7 --out /tmp/retailer
    nba features build --data /tmp/retailer --out /tmp/profiles.parquet
    git -C /work/main archive <commit> | tar -x -C /tmp/base
    .venv/bin/python benchmarks/bench_core.py --profiles /tmp/profiles.parquet \\
        --baseline-src /tmp/base
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
sys.path.append(str(HERE))  # after PYTHONPATH: the measured tree's nba comes first

from benchmarks.bench_batch_decisions import audience, measure_in_tree  # noqa: E402

#: (module, attribute, stage): the functions whose time is each stage's.
STAGES = (
    ("nba.pipeline", "DecisionPipeline.prepare", "prepare"),
    ("nba.policy", "screen", "screening"),
    ("nba.engine", "NextBestActionPolicy._assess", "scoring"),
    ("nba.policy", "DecisionPolicy._arbitrate", "arbitration"),
    ("nba.policy", "explain", "explanation"),
    ("nba.policy", "context_features", "context features"),
)


def _wrap(totals: dict[str, float], stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            totals[stage] += time.process_time() - started

    return timed


def _instrument(totals: dict[str, float]) -> None:
    import importlib

    for module_name, path, stage in STAGES:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        if hasattr(owner, name):
            setattr(owner, name, _wrap(totals, stage, getattr(owner, name)))


def measure(profiles: Path, tracking_uri: str | None, customers: int, repeat: int) -> dict:
    """This interpreter's core: µs per decision, in total and by stage (the subprocess)."""
    import pandas as pd

    from cli.decide import load_catalog, load_contact_policy, load_scorer
    from features.profile_table import profiles_from_frame
    from nba.context import CustomerContext
    from nba.pipeline import build_pipeline

    frame = audience(profiles, customers)
    built = profiles_from_frame(frame)
    now = pd.Timestamp(frame["as_of"].max()).tz_convert("UTC").to_pydatetime()
    catalog, contacts = load_catalog(None), load_contact_policy(None)
    scorer, label = load_scorer(tracking_uri) if tracking_uri else (None, "rules")
    pipeline = build_pipeline(catalog, contacts, scorer=scorer)

    def run() -> None:  # the decisions are dropped as they come, as the API does
        for p in built:
            pipeline.route(CustomerContext(p, now), seed=f"0:{p.customer_id}")

    # warm-up, and the decisions compared across trees
    decisions = [
        pipeline.route(CustomerContext(p, now), seed=f"0:{p.customer_id}").decision for p in built
    ]
    digest = hashlib.sha256()
    for d in decisions:
        chosen = [
            (a.action_id, str(a.channel), str(a.send_at), round(a.propensity, 12))
            for a in d.actions
        ]
        codes = [(r.action_id, str(r.channel), str(r.code), r.message) for r in d.rejections]
        explained = str(d.explanation)
        digest.update(repr((d.customer_id, chosen, round(d.propensity, 12), codes)).encode())
        digest.update(explained.encode())
    del decisions
    totals = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        totals.append((time.process_time() - started) / len(built) * 1e6)
    stages: dict[str, float] = defaultdict(float)
    _instrument(stages)
    started = time.process_time()
    run()
    instrumented = (time.process_time() - started) / len(built) * 1e6
    split = {k: v / len(built) * 1e6 for k, v in stages.items()}
    split["other"] = instrumented - sum(split.values())
    return {"total": totals, "stages": split, "models": label, "digest": digest.hexdigest()}


def decide_only(profiles: Path, tracking_uri: str | None, customers: int, warm: int) -> dict:
    """Decide ``warm`` customers, then ``customers`` more, and nothing else (the child
    that ``--instructions`` runs under callgrind: its count, less that of a run deciding
    none after the same set-up, is what the decisions cost)."""
    import pandas as pd

    from cli.decide import load_catalog, load_contact_policy, load_scorer
    from features.profile_table import profiles_from_frame
    from nba.context import CustomerContext
    from nba.pipeline import build_pipeline

    frame = audience(profiles, warm + max(customers, 1))
    built = profiles_from_frame(frame)
    now = pd.Timestamp(frame["as_of"].max()).tz_convert("UTC").to_pydatetime()
    scorer, label = load_scorer(tracking_uri) if tracking_uri else (None, "rules")
    pipeline = build_pipeline(load_catalog(None), load_contact_policy(None), scorer=scorer)
    for p in built[: warm + customers]:
        pipeline.route(CustomerContext(p, now), seed=f"0:{p.customer_id}")
    return {"models": label}


def instructions(src: Path, args: argparse.Namespace, customers: int) -> int:
    """Instructions (callgrind's count) of a child that decides ``customers`` after the
    warm-up, in ``src``'s tree."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(HERE / "benchmarks" / "bench_core.py"),
        "--child-decide",
        str(customers),
        "--profiles",
        str(args.profiles),
        *(["--tracking-uri", args.tracking_uri] if args.tracking_uri else []),
    ]
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind in {src} failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def count_instructions(trees: dict[str, Path], args: argparse.Namespace) -> int:
    """Instructions per decision of each tree (callgrind: the same on a loaded machine as
    on a quiet one), the decisions' count less a run that decides none."""
    before = os.getloadavg()[0]
    per: dict[str, float] = {}
    for name, src in trees.items():
        per[name] = (
            instructions(src, args, args.customers) - instructions(src, args, 0)
        ) / args.customers
    print("```")
    print("$ " + shlex.join([".venv/bin/python", "benchmarks/bench_core.py", *sys.argv[1:]]))
    print("```")
    print()
    print(
        f"{args.customers:,} decisions after {WARM_UP} to warm up, under callgrind "
        f"(instructions, load average {before:.1f} -> {os.getloadavg()[0]:.1f} does not move "
        "them)."
    )
    print()
    print("| tree | instructions per decision | baseline / this |")
    print("|---|---:|---:|")
    for name, value in per.items():
        ratio = f"{per['baseline'] / value:.2f}x" if "baseline" in per else "-"
        print(f"| {name} | {value:,.0f} | {ratio} |")
    return 0


#: Customers decided before the counted ones (caches warm, as in a running process).
WARM_UP = 50


def _value(run: dict, row: str) -> float:
    return float(run["total"][0] if row.startswith("total") else run["stages"].get(row, 0.0))


def run_child(src: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        str(HERE / "benchmarks" / "bench_core.py"),
        "--child",
        "--profiles",
        str(args.profiles),
        "--customers",
        str(args.customers),
        "--repeat",
        "1",
    ]
    return measure_in_tree(command, src, args.tracking_uri)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, required=True, help="profiles Parquet file")
    parser.add_argument("--tracking-uri", help="MLflow registry with champions [default: rules]")
    parser.add_argument("--baseline-src", type=Path, help="source tree of the baseline")
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--different-decisions",
        action="store_true",
        help="report even when the trees decide differently (a change of the decisions "
        "themselves: the times then compare different work, and the report says so)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per decision under valgrind's callgrind instead of timing "
        "(deterministic: a loaded machine does not move it; one run per tree)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-decide", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_decide is not None:
        print(json.dumps(decide_only(args.profiles, args.tracking_uri, args.child_decide, WARM_UP)))
        return 0
    if args.child:
        result = measure(args.profiles, args.tracking_uri, args.customers, args.repeat)
        print(json.dumps(result))
        return 0

    trees = {"this": HERE}
    if args.baseline_src is not None:
        trees = {"baseline": args.baseline_src.resolve(), **trees}
    if args.instructions:
        return count_instructions(trees, args)
    runs: dict[str, list[dict]] = defaultdict(list)
    before = os.getloadavg()[0]
    for _ in range(args.repeat):
        for name, src in trees.items():
            runs[name].append(run_child(src, args))
    digests = {name: {r["digest"] for r in results} for name, results in runs.items()}
    same = len(set().union(*digests.values())) == 1
    if not same:
        if not args.different_decisions:
            raise SystemExit(f"the trees decide differently: {digests}")
        print("note: the trees decide differently (--different-decisions): the times compare")
        print("the work each tree does for its own decisions")

    print("```")
    print("$ " + shlex.join([".venv/bin/python", "benchmarks/bench_core.py", *sys.argv[1:]]))
    print("```")
    print()
    print(
        f"{args.customers:,} customers, models: {runs['this'][0]['models']}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after; CPU µs per decision, medians of {args.repeat} "
        "runs alternated ("
        + ("same decisions in both trees" if same else "the trees decide differently")
        + ")."
    )
    print()
    names = list(trees)
    stage_names = [s for _, _, s in STAGES] + ["other"]
    print("| stage | " + " | ".join(names) + (" | baseline / this |" if len(names) > 1 else " |"))
    print("|---|" + "---:|" * (len(names) + (len(names) > 1)))
    rows = ["total (uninstrumented)", *stage_names]
    for label in rows:
        medians = {n: statistics.median(_value(r, label) for r in runs[n]) for n in names}
        cells = " | ".join(f"{medians[n]:,.0f}" for n in names)
        ratio = ""
        if len(names) > 1:
            ratio = f" | {medians['baseline'] / medians['this']:.2f}x" if medians["this"] else "|-"
        print(f"| {label} | {cells}{ratio} |")
    runs_line = {n: ", ".join(f"{r['total'][0]:,.0f}" for r in runs[n]) for n in names}
    print()
    print("Totals per run: " + "; ".join(f"{n}: {v}" for n, v in runs_line.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
