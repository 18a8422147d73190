"""CPU per request of ``POST /v1/decisions`` against the bare endpoints, in process.

The API and :mod:`benchmarks.bare_app` are called through their ASGI interface from
this process, one request at a time (no HTTP server, no load generator), and the
process's CPU time is divided by the requests: what a decision costs in CPU,
whatever the machine's other load does to wall times. The targets alternate within
each of ``--repeats`` rounds (medians). The API runs as deployed (champion
recommender, statistics, decision log fsynced per decision through its group
commit, thread-pool hop); each request names one of 500 customers of the audience.

``--baseline-src DIR`` measures this tree and another (e.g. ``git archive`` of the
branch point) finely interleaved: one long-lived process per tree, each with its own
app on the same world, the same Redis and the same requests, driven in turns of
``--slice`` requests (API, then bare, in each process in turn), ``--requests`` per
target and round, a fresh pair of processes in each of ``--repeats`` rounds; the table
gives each round's medians of the per-slice CPU. Both trees then see the same machine
load within a fraction of a second, which a run after a run on a shared machine does
not give; each API over its own process's bare endpoint also cancels what a process's
placement does to its speed.

``--fsync never`` leaves the decision log's fsync out (its kernel time is CPU time
of this process, paid once per request when requests come one at a time, shared by
a batch under load). ``--world`` reuses a world written by ``--save-world`` (same
Redis), and ``--api-src`` imports the API from another checkout: the same world and
bare endpoints then measure an older version of the API, run after run.

    .venv/bin/python benchmarks/bench_decision_cpu.py --customers 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_api import (
    World,
    _asgi_post,
    build,
    in_process_settings,
    loadavg,
    machine,
    redis_server,
)
from benchmarks.bench_api_wrk import world_parser

PATHS = {"api": "/v1/decisions", "bare": "/bare", "bare-raw": "/bare-raw"}
SLICED = ("api", "bare")


async def _drive(app: Any, path: str, bodies: list[bytes], key: str) -> float:
    """CPU seconds of this process per request over ``bodies``."""
    started = time.process_time()
    for body in bodies:
        status = await _asgi_post(app, path, body, key)
        if status != 200:
            raise SystemExit(f"{path} answered {status}")
    return (time.process_time() - started) / len(bodies)


def main() -> None:
    parser = world_parser(__doc__)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fsync", choices=["always", "never"], default="always")
    parser.add_argument("--world", type=Path, default=None, help="a world saved by --save-world")
    parser.add_argument(
        "--save-world",
        type=Path,
        default=None,
        help="write the world here (its files beside it, in a folder of the same stem)",
    )
    parser.add_argument(
        "--redis-url", default=None, help="build the world in this Redis (kept for --world)"
    )
    parser.add_argument("--api-src", type=Path, default=None, help="import the API from here")
    parser.add_argument(
        "--baseline-src", type=Path, default=None, help="interleave with the API of this tree"
    )
    parser.add_argument("--slice", type=int, default=50, help="requests per turn")
    parser.add_argument("--serve-slices", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.api_src is not None:
        sys.path.insert(0, str(args.api_src.resolve()))
    if args.baseline_src is not None:
        if args.world is None:
            raise SystemExit("--baseline-src needs --world (a world saved by --save-world)")
        interleave(args)
        return

    from fastapi.testclient import TestClient

    from benchmarks.bare_app import create_app as bare_app
    from serving.app import create_app

    with tempfile.TemporaryDirectory(prefix="nba-bench-cpu-") as tmp:
        folder = Path(tmp)
        with contextlib.ExitStack() as stack:
            if args.world is not None:
                world = World.saved(args.world)
                url = world.redis_url
            else:
                url = args.redis_url or stack.enter_context(redis_server(folder / "redis"))
                home = folder
                if args.save_world is not None:
                    home = args.save_world.with_suffix("")
                    home.mkdir(parents=True, exist_ok=True)
                world = build(args, url, home)
            if args.save_world is not None:
                args.save_world.write_text(json.dumps(dataclasses.asdict(world)))
            settings = in_process_settings(
                world,
                url,
                decision_log_fsync=args.fsync,
                decision_log_dir=folder / "decision-log",
            )
            rng = random.Random(args.seed)
            ids = rng.sample(world.customer_ids, min(500, len(world.customer_ids)))
            bodies = [
                json.dumps({"customer_id": rng.choice(ids)}).encode() for _ in range(args.requests)
            ]
            api, bare = create_app(settings), bare_app()
            apps = {"api": api, "bare": bare, "bare-raw": bare}
            if args.serve_slices:
                with TestClient(api), TestClient(bare):
                    serve_slices(apps, bodies, world.api_key)
                return
            cpu: dict[str, list[float]] = {name: [] for name in PATHS}
            before = loadavg()
            with TestClient(api), TestClient(bare):  # their lifespans
                for name in PATHS:  # warm-up
                    asyncio.run(_drive(apps[name], PATHS[name], bodies[:100], world.api_key))
                for repeat in range(args.repeats):
                    for name in PATHS:
                        cpu[name].append(
                            asyncio.run(_drive(apps[name], PATHS[name], bodies, world.api_key))
                        )
                    print(
                        f"#{repeat}: "
                        + ", ".join(f"{k} {v[-1] * 1e3:.3f} ms" for k, v in cpu.items())
                    )
    medians = {name: statistics.median(values) * 1e3 for name, values in cpu.items()}
    api_src = "this checkout" if args.api_src is None else str(args.api_src)
    print(json.dumps({"machine": machine(), "loadavg": [before, loadavg()], "api": api_src}))
    print("| target | CPU ms per request | API / target |")
    print("|---|---:|---:|")
    for name, ms in medians.items():
        ratio = "" if name == "api" else f"{medians['api'] / ms:.1f}x"
        print(f"| {name} | {ms:.3f} | {ratio} |")


def serve_slices(apps: dict[str, Any], bodies: list[bytes], key: str) -> None:
    """The child of :func:`interleave`: for each line ``TARGET COUNT`` on stdin, the next
    ``COUNT`` requests (cycling over ``bodies``) to ``TARGET``; prints CPU ms per request."""
    position = 0
    print("ready", flush=True)
    for line in sys.stdin:
        name, count = line.split()
        chunk = [bodies[(position + i) % len(bodies)] for i in range(int(count))]
        position += int(count)
        cpu = asyncio.run(_drive(apps[name], PATHS[name], chunk, key))
        print(json.dumps({name: cpu * 1e3}), flush=True)


def interleave(args: argparse.Namespace) -> None:
    """This tree's API and ``--baseline-src``'s, in turns of ``--slice`` requests; a fresh
    pair of processes per round (a process's own speed varies by some 20 % on a shared
    machine, so each API is also given over the bare endpoint of its own process)."""
    here = Path(__file__).resolve()
    trees = {"this": here.parents[1], "baseline": args.baseline_src.resolve()}
    before = loadavg()
    rounds = [_interleaved_round(args, here, trees) for _ in range(args.repeats)]
    print(json.dumps({"machine": machine(), "loadavg": [before, loadavg()]}))
    turns = max(1, args.requests // args.slice)
    print(
        f"| round ({turns} turns of {args.slice} requests per target) | API ms, this "
        "| bare ms, this | API / bare, this | API ms, baseline | bare ms, baseline "
        "| API / bare, baseline | API baseline / this | (API / bare) baseline / this |"
    )
    print("|---|" + "---:|" * 8)
    ratios, normalised = [], []
    for number, m in enumerate(rounds, 1):
        this, base = (
            m["this", "api"] / m["this", "bare"],
            m["baseline", "api"] / m["baseline", "bare"],
        )
        ratios.append(m["baseline", "api"] / m["this", "api"])
        normalised.append(base / this)
        print(
            f"| {number} | {m['this', 'api']:.3f} | {m['this', 'bare']:.3f} | {this:.2f}x "
            f"| {m['baseline', 'api']:.3f} | {m['baseline', 'bare']:.3f} | {base:.2f}x "
            f"| {ratios[-1]:.2f}x | {normalised[-1]:.2f}x |"
        )
    print(
        f"medians over rounds: API baseline / this {statistics.median(ratios):.2f}x; "
        f"(API / bare) baseline / this {statistics.median(normalised):.2f}x"
    )


def _interleaved_round(
    args: argparse.Namespace, here: Path, trees: dict[str, Path]
) -> dict[tuple[str, str], float]:
    """One round: a process per tree, warmed by a quarter of the turns, then the turns;
    the median CPU ms per request of each (tree, target)."""
    command = [
        "--serve-slices",
        "--world",
        str(args.world.resolve()),
        "--requests",
        str(args.requests),
        "--fsync",
        args.fsync,
        "--seed",
        str(args.seed),
    ]
    children = {
        name: subprocess.Popen(  # this script in both, the API imported from each tree
            [sys.executable, str(here), *command, "--api-src", str(src)],
            cwd=src,
            env={**os.environ, "PYTHONPATH": str(src)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, src in trees.items()
    }
    cpu: dict[tuple[str, str], list[float]] = {(t, n): [] for t in trees for n in SLICED}
    try:
        for child in children.values():
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        turns = max(1, args.requests // args.slice)
        for turn in range(turns + turns // 4):
            for tree, child in children.items():
                for name in SLICED:
                    assert child.stdin is not None and child.stdout is not None
                    child.stdin.write(f"{name} {args.slice}\n")
                    child.stdin.flush()
                    value = json.loads(child.stdout.readline())[name]
                    if turn >= turns // 4:
                        cpu[tree, name].append(value)
    finally:
        for child in children.values():
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=120)
    return {key: statistics.median(values) for key, values in cpu.items()}


if __name__ == "__main__":
    main()
