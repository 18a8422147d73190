"""``POST /v1/decisions``'s CPU per request, two source trees served at once, wrk alternated.

``bench_api_wrk.py`` starts each target afresh per round and measures it for 10 s: on a
machine whose load swings from 5 to 15 within a minute, the rounds of one tree run at other
loads than the other's, and three rounds do not separate a 5 % change. Here both APIs (this
tree and ``--baseline-src``) run side by side for the whole measurement, each with one
uvicorn worker on the same world, and wrk (``-c16``) drives them in turn for ``--seconds``
at a time, ``--rounds`` times, the order swapped every round (A B, B A, ...): each pair of
runs is a few seconds apart, and the paired ratio (this / baseline) is read per pair. The
server's user + system CPU comes from ``/proc`` (:func:`bench_api_wrk.server_cpu_seconds`);
the server not driven is idle meanwhile.

    .venv/bin/python benchmarks/bench_decision_cpu.py --customers 5000 --save-world W.json
    .venv/bin/python benchmarks/bench_api_pairs.py --world W.json --baseline-src BASE --rounds 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_api import ROOT, World, loadavg, machine, server
from benchmarks.bench_api_wrk import LUA, run_wrk, serving_env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, required=True, help="saved by --save-world")
    parser.add_argument("--baseline-src", type=Path, required=True, help="the other tree")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--audience", type=int, default=500)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    world = World.saved(args.world)
    ids = random.Random(args.seed).sample(
        world.customer_ids, min(args.audience, len(world.customer_ids))
    )
    trees = {"this": ROOT, "baseline": args.baseline_src.resolve()}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    loads = [loadavg()]
    with (
        tempfile.TemporaryDirectory(prefix="nba-bench-pairs-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        script = Path(tmp) / "api.lua"
        script.write_text(
            LUA
            % {
                "ids": ", ".join(json.dumps(i) for i in ids),
                "path": "/v1/decisions",
                "auth": world.api_key,
                "seed": args.seed,
            }
        )
        served = {
            name: stack.enter_context(
                server("serving.app:create_app", serving_env(world), None, "/healthz", 1, root)
            )
            for name, root in trees.items()
        }
        warm = argparse.Namespace(connections=4, seconds=2)
        for base, _ in served.values():
            run_wrk(base, script, warm)
        for round_ in range(args.rounds):
            order = list(served) if round_ % 2 == 0 else list(served)[::-1]
            for name in order:
                base, pid = served[name]
                runs[name].append(run_wrk(base, script, args, pid))
            loads.append(loadavg())
            print(
                f"round {round_}: "
                + ", ".join(f"{n} {runs[n][-1]['cpu_us']:,.0f} µs" for n in trees)
                + f"; load {loads[-1][0]}",
                flush=True,
            )
    ratios = [
        a["cpu_us"] / b["cpu_us"] for a, b in zip(runs["this"], runs["baseline"], strict=True)
    ]
    print(
        f"\nwrk -t1 -c{args.connections}, {args.rounds} alternated pairs of {args.seconds} s, "
        f"load {loads[0]} -> {loads[-1]}\n\n"
        "| tree | CPU µs per request (median) | req/s (median) | per round |\n|---|---:|---:|---|"
    )
    for name in trees:
        cpu = [r["cpu_us"] for r in runs[name]]
        rate = statistics.median(r["rps"] for r in runs[name])
        print(
            f"| {name} | {statistics.median(cpu):,.0f} | {rate:,.0f} | "
            + " / ".join(f"{c:,.0f}" for c in cpu)
            + " |"
        )
    below = sum(r < 1 for r in ratios)
    print(
        f"\nthis / baseline CPU per request: median {statistics.median(ratios):.3f} "
        f"(per pair {' / '.join(f'{r:.2f}' for r in ratios)}; {below} of {len(ratios)} below 1)"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"machine": machine(), "loadavg": loads, "runs": runs, "ratios": ratios})
        )


if __name__ == "__main__":
    main()
