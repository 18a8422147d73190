"""The decision core compiled (mypyc or Cython) against the same source interpreted.

Exports this repository's ``HEAD`` (``git archive``) twice into ``--work-dir``: one copy
stays pure Python (the baseline), the other has the decision core's modules compiled in
place (``--backend mypyc``: the modules that mypyc accepts, see :data:`MYPYC_MODULES`;
``--backend cython``: the modules of :data:`CYTHON_MODULES`, Cython 3 in pure-Python
mode with its annotation typing off; Cython must be importable). Then it runs, from
the compiled copy against the pure one (same run, alternated, medians; both scripts
fail when the two copies decide differently):

* ``benchmarks/bench_core.py`` (CPU µs per ``DecisionPipeline.route``; with
  ``--instructions``, callgrind's instructions per decision instead);
* ``benchmarks/bench_batch_decisions.py`` (``decide_audience``: customers/s, CPU per
  customer and the idle-core estimate with 1 and 2 workers).

The stage split of ``bench_core.py`` reads 0 for a compiled tree: a compiled module
calls its functions directly, past the timers the script patches in.

    nba simulate --customers 5000 --days 90 --seed 1 --out /tmp/r5k
    nba features build --data /tmp/r5k --out /tmp/p5k.parquet
    .venv/bin/python benchmarks/bench_compiled.py --profiles /tmp/p5k.parquet \\
        --backend mypyc --work-dir /tmp/compiled
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

#: What mypyc compiles (``--backend mypyc``). Left out, and why: ``actions``,
#: ``catalog``, ``contact_policy`` (pydantic models: mypyc miscompiles their annotated
#: validators, and a native class cannot carry pydantic's metaclass); ``profile``
#: (mypyc replaces dataclass fields' types by runtime classes, and the rule schema and
#: the profile table read those types as text); ``scoring`` (a ``runtime_checkable``
#: protocol that interpreted scorers subclass); ``rules/tree``, ``rules/parser``,
#: ``rules/functions`` (``ClassVar`` declarations without a value in a dataclass base
#: are taken for fields); ``budgets`` (a compiled frozen dataclass cannot be unpickled:
#: pickle restores it through ``__setattr__``, which a frozen class refuses, and the batch
#: sends ``UsageCounts`` to its forked workers); the packages' ``__init__``.
MYPYC_MODULES = (
    "nba/arbitration.py",
    "nba/baselines.py",
    "nba/channels.py",
    "nba/config_errors.py",
    "nba/consent.py",
    "nba/context.py",
    "nba/decision.py",
    "nba/engine.py",
    "nba/events.py",
    "nba/experiment.py",
    "nba/explain.py",
    "nba/pipeline.py",
    "nba/policy.py",
    "nba/reach.py",
    "nba/reachability.py",
    "nba/reasons.py",
    "nba/reserve.py",
    "nba/screening.py",
    "nba/timing.py",
    "nba/rules/closures.py",
    "nba/rules/types.py",
)


#: What Cython compiles (``--backend cython``): the modules a decision runs through, but
#: the pydantic models (``actions``, ``catalog``, ``contact_policy``: pydantic takes a
#: compiled method for a field without annotation). Annotation typing is off: with it, a
#: variable annotated ``float`` becomes a C double, and ``x = mapping.get(key)`` raises
#: on a ``None`` (``nba/decision.py`` ``_ordinal``) where Python does not.
CYTHON_MODULES = tuple(
    f"nba/{name}.py"
    for name in (
        "engine", "policy", "screening", "arbitration", "scoring", "timing", "reserve",
        "context", "decision", "explain", "pipeline", "profile", "reasons", "budgets",
        "rules/closures", "rules/tree", "rules/functions",
    )
)  # fmt: skip


def export(target: Path) -> None:
    """``git archive HEAD`` of this repository into an empty ``target``."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(HERE), "archive", "HEAD"], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)


def compile_tree(tree: Path, backend: str) -> float:
    """Compile ``tree``'s core in place; the build's wall-clock seconds."""
    started = time.perf_counter()
    if backend == "mypyc":
        command = [str(Path(sys.executable).with_name("mypyc")), *MYPYC_MODULES]
    else:
        command = [sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3"]
        command += ["-j", str(os.cpu_count() or 1), "-X", "annotation_typing=False"]
        command += CYTHON_MODULES
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{backend} failed in {tree}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    check = subprocess.run(
        [sys.executable, "-c", "import nba.engine; print(nba.engine.__file__)"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    if not check.stdout.strip().endswith(".so"):
        raise SystemExit(f"nba.engine is not compiled in {tree}: {check.stdout.strip()}")
    return time.perf_counter() - started


def run(script: str, tree: Path, baseline: Path, args: argparse.Namespace, *extra: str) -> None:
    """One benchmark script of the compiled tree against the pure one; its report."""
    command = [
        sys.executable,
        str(tree / "benchmarks" / script),
        "--profiles",
        str(args.profiles),
        "--baseline-src",
        str(baseline),
        *(["--tracking-uri", args.tracking_uri] if args.tracking_uri else []),
        *extra,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    print(done.stdout)
    if done.returncode != 0:
        raise SystemExit(f"{script} failed:\n{done.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, required=True, help="profiles Parquet file")
    parser.add_argument("--tracking-uri", help="MLflow registry with champions [default: rules]")
    parser.add_argument("--backend", choices=("mypyc", "cython"), default="mypyc")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/nba-compiled"))
    parser.add_argument("--customers", type=int, default=3000, help="decisions per core run")
    parser.add_argument("--batch-customers", type=int, default=8000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    parser.add_argument("--reuse", action="store_true", help="keep an earlier build")
    args = parser.parse_args(argv)
    pure, compiled = args.work_dir / "pure", args.work_dir / args.backend
    if not (args.reuse and compiled.exists()):
        export(pure)
        export(compiled)
        print(f"{args.backend} build: {compile_tree(compiled, args.backend):.0f} s wall clock\n")
    profiles = ["--customers", str(args.customers), "--repeat", str(args.repeat)]
    run("bench_core.py", compiled, pure, args, *profiles)
    if args.instructions:
        run("bench_core.py", compiled, pure, args, "--customers", "300", "--instructions")
    batch = ["--customers", str(args.batch_customers), "--repeat", str(args.repeat)]
    run("bench_batch_decisions.py", compiled, pure, args, *batch, "--floor-customers", "1000")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
