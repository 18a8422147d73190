"""Where the open loop's slow decisions lose their time: ``POST /v1/decisions`` traced.

Each variant is served by uvicorn (``--workers 1``) through
:mod:`benchmarks.api_trace` (the API as deployed, with a flight recorder), warmed up by
an open loop of ``--warmup`` seconds, then measured by an open loop of ``--rate``
requests a second for ``--seconds`` (latency from each request's due time, as in
``bench_api_wrk.py``). The server's record then tells, for its slowest 1 % of requests
and for all of them, how each request's time splits:

* ``parse``: from the ASGI call to the route's thread-pool call (body, key, validation,
  on the event loop);
* ``hop out`` / ``hop back``: waiting for a decision thread, and for the event loop to
  take the answer back (none when the decision runs on the loop);
* ``read``, ``profile``, ``route``, ``record``, ``season`` (a verdict computed afresh),
  ``rest``: the decision's stages; ``log``: the wait for the decision log's group commit
  (its fsync, or the one that covers it);
* ``send``: from the logged answer to the last byte handed to the transport;

and which process-wide pauses overlapped the slow requests: the cyclic collector's (by
generation), the event loop's lag, ``fsync``. Variants (``NAME`` or ``NAME:VAR=VALUE,...``)
set environment variables of the server (``NBA_TRACE_GC`` sets the collector's
thresholds, see :mod:`benchmarks.api_trace`); ``--baseline-src DIR`` adds ``base``: the
API of another tree, untraced (its client-side latency only). Variants alternate within
each of ``--repeats`` rounds.

    .venv/bin/python benchmarks/bench_decision_cpu.py --customers 5000 --save-world W.json
    .venv/bin/python benchmarks/bench_api_tail.py --world W.json --repeats 3 \\
        --variants as-deployed gc-off:NBA_TRACE_GC=off
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_api import World, loadavg, machine, server
from benchmarks.bench_api_wrk import run_open_loop, serving_env

#: The stages of a traced request, in order (see the module doc).
THREAD_STAGES = ("read", "profile", "route", "record", "log", "season")
PAUSES = ("gc0", "gc1", "gc2", "lag", "fsync", "batch")


def _duration(record: dict[str, Any], kind: str) -> float:
    return sum(end - start for start, end in record.get(kind, ()))


def breakdown(record: dict[str, Any]) -> dict[str, float] | None:
    """A traced request's time by stage (seconds), or None when it was not decided."""
    if "thread" not in record and "call" in record:  # decided in a batch
        record = {**record, "thread": record["call"]}
    if "thread" not in record:
        return None
    thread_start, thread_end = record["thread"][0]
    call_start, call_end = record["call"][0] if "call" in record else record["thread"][0]
    log_end = max((end for _, end in record.get("log", ())), default=call_end)
    parts = {
        "total": record["end"] - record["start"],
        "parse": call_start - record["start"],
        "hop out": thread_start - call_start,
        **{stage: _duration(record, stage) for stage in THREAD_STAGES},
        "hop back": call_end - thread_end,
        "send": record["end"] - max(call_end, log_end),
    }
    # the verdict is computed inside the profile's build: counted once, as its own stage
    parts["profile"] -= parts["season"]
    in_thread = [s for s in THREAD_STAGES if s != "log"]
    logged_in_thread = sum(
        end - start
        for start, end in record.get("log", ())
        if start >= thread_start and end <= thread_end
    )
    parts["rest"] = (
        (thread_end - thread_start) - sum(parts[s] for s in in_thread) - logged_in_thread
    )
    return parts


def _overlap(start: float, end: float, spans: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)


def analyse(
    trace: dict[str, Any], timeline: list[tuple[float, float, int]], since: float
) -> dict[str, Any]:
    """The measured window's server records and pauses against the client's latencies."""
    records = [r for r in trace["requests"] if r["start"] >= since]
    parts = [p for p in (breakdown(r) for r in records) if p is not None]
    parts.sort(key=lambda p: p["total"])
    slow = parts[int(len(parts) * 0.99) :] if parts else []
    spans: dict[str, list[tuple[float, float]]] = {k: [] for k in PAUSES}
    gc_cpu: dict[str, list[float]] = {k: [] for k in PAUSES}
    for kind, start, end, info in trace["spans"]:
        if end >= since and kind in spans:
            spans[kind].append((start, end))
            if kind.startswith("gc"):
                gc_cpu[kind].append(info[1])  # (collected, CPU seconds, generation 2's size)
    latencies = sorted(end - due for due, end, _ in timeline)
    slow_client = sorted(timeline, key=lambda t: t[1] - t[0])[int(len(timeline) * 0.99) :]

    def mean_ms(rows: list[dict[str, float]], key: str) -> float:
        return 1000 * statistics.fmean(r[key] for r in rows) if rows else 0.0

    return {
        "client_p50_ms": 1000 * latencies[len(latencies) // 2],
        "client_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "client_max_ms": 1000 * latencies[-1],
        "failed": sum(1 for *_, status in timeline if status != 200),
        "server_p50_ms": 1000 * parts[len(parts) // 2]["total"] if parts else 0.0,
        "server_p99_ms": 1000 * parts[int(len(parts) * 0.99)]["total"] if parts else 0.0,
        "slow_ms": {k: mean_ms(slow, k) for k in (slow[0] if slow else {})},
        "all_ms": {k: mean_ms(parts, k) for k in (parts[0] if parts else {})},
        "pauses": {
            kind: {
                "count": len(found),
                "total_ms": 1000 * sum(b - a for a, b in found),
                "max_ms": 1000 * max((b - a for a, b in found), default=0.0),
                # the collector's own CPU (its wall time includes being descheduled)
                "cpu_ms": 1000 * sum(gc_cpu[kind]),
                "max_cpu_ms": 1000 * max(gc_cpu[kind], default=0.0),
                # the mean share of the slowest 1 % of client latencies a pause overlapped
                "slow_client_share": statistics.fmean(
                    _overlap(due, end, found) / max(end - due, 1e-9) for due, end, _ in slow_client
                )
                if slow_client
                else 0.0,
            }
            for kind, found in spans.items()
        },
        "batch_sizes": sorted(
            info for kind, _, end, info in trace["spans"] if kind == "batch" and end >= since
        ),
        "season_computed": sum(1 for r in records if "season" in r),
        "stats_reads": sum(1 for r in records if r.get("read_info")),
        "requests_traced": len(records),
    }


@contextlib.contextmanager
def client_cpu(every: float = 0.05) -> Iterator[list[tuple[float, float]]]:
    """``(monotonic, CPU seconds)`` of this process (the load generator) every ``every``
    seconds while the block runs: is the generator itself short of a core?"""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), time.process_time()))
            stop.wait(every)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def one_run(
    name: str, extra: dict[str, str], world: World, ids: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    base = name == "base"
    root = args.baseline_src.resolve() if base else Path(__file__).resolve().parents[1]
    target = "serving.app:create_app" if base else "benchmarks.api_trace:create_app"
    timeline: list[tuple[float, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="nba-bench-tail-") as tmp:
        trace_path = Path(tmp) / "trace.json"
        env = {**serving_env(world), **extra, "NBA_TRACE_PATH": str(trace_path)}
        with server(target, env, None, "/healthz", args.workers, root) as (url, _):
            warm = argparse.Namespace(seed=args.seed + 1, rate=args.rate, open_seconds=args.warmup)
            asyncio.run(run_open_loop(url, "/v1/decisions", ids, world.api_key, warm))
            measure = argparse.Namespace(seed=args.seed, rate=args.rate, open_seconds=args.seconds)
            lags: list[float] = []
            with client_cpu() as client:
                asyncio.run(
                    run_open_loop(url, "/v1/decisions", ids, world.api_key, measure, timeline, lags)
                )
        since = min(due for due, _, _ in timeline)
        if trace_path.is_file():
            if args.keep_traces is not None:
                args.keep_traces.mkdir(parents=True, exist_ok=True)
                kept = args.keep_traces / f"{name}-{len(list(args.keep_traces.iterdir()))}.json"
                trace = json.loads(trace_path.read_text())
                kept.write_text(
                    json.dumps(
                        {"trace": trace, "timeline": timeline, "lags": lags, "client_cpu": client}
                    )
                )
            return analyse(json.loads(trace_path.read_text()), timeline, since)
        return analyse({"requests": [], "spans": []}, timeline, since)


def _variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition(":")
    env = dict(a.split("=", 1) for a in assignments.split(",") if a)
    return name, env


def markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    names = list(dict.fromkeys(r["variant"] for r in runs))

    def med(name: str, get: Any) -> float:
        return statistics.median(get(r) for r in runs if r["variant"] == name)

    lines = [
        f"open loop {results['rate']:g} requests/s for {results['seconds']:g} s, "
        f"{results['workers']} worker(s), medians of {results['repeats']}; load average "
        f"{results['loadavg_before']} -> {results['loadavg_after']}",
        "",
        "| variant | p50 ms | p99 ms | max ms | failed | p99 per round | server p99 ms | "
        "gc2 pauses (max ms) | gc1 | gc0 | GC CPU ms per 1,000 requests (max pause) | "
        "loop lag > 2 ms (max ms) | fsync max ms |",
        "|---|---:|---:|---:|---:|---|---:|---|---|---|---|---|---:|",
    ]
    for name in names:
        own = [r for r in runs if r["variant"] == name]

        def pause(kind: str, rows: list[dict[str, Any]] = own) -> str:
            count = statistics.median(r["pauses"][kind]["count"] for r in rows)
            longest = statistics.median(r["pauses"][kind]["max_ms"] for r in rows)
            return f"{count:g} ({longest:.1f})"

        def gc_cost(rows: list[dict[str, Any]]) -> str:
            per = statistics.median(
                1000
                * sum(r["pauses"][k]["cpu_ms"] for k in ("gc0", "gc1", "gc2"))
                / max(r["requests_traced"], 1)
                for r in rows
            )
            longest = statistics.median(
                max(r["pauses"][k]["max_cpu_ms"] for k in ("gc0", "gc1", "gc2")) for r in rows
            )
            return f"{per:.1f} ({longest:.2f})"

        rounds = " / ".join(f"{r['client_p99_ms']:.0f}" for r in own)
        lines.append(
            f"| {name} | {med(name, lambda r: r['client_p50_ms']):.1f} | "
            f"{med(name, lambda r: r['client_p99_ms']):.1f} | "
            f"{med(name, lambda r: r['client_max_ms']):.1f} | "
            f"{sum(r['failed'] for r in own)} | "
            f"{rounds} | "
            f"{med(name, lambda r: r['server_p99_ms']):.1f} | "
            f"{pause('gc2')} | {pause('gc1')} | {pause('gc0')} | {gc_cost(own)} | {pause('lag')} | "
            f"{med(name, lambda r: r['pauses']['fsync']['max_ms']):.1f} |"
        )
    traced = [n for n in names if any(r["slow_ms"] for r in runs if r["variant"] == n)]
    if traced:
        stages = list(next(r["slow_ms"] for r in runs if r["slow_ms"]))
        lines += [
            "",
            "Mean ms per request by stage, server side: the slowest 1 % / all (medians of rounds)",
            "",
            "| variant | " + " | ".join(stages) + " |",
            "|---|" + "---:|" * len(stages),
        ]
        for name in traced:
            cells = [
                f"{med(name, lambda r, s=s: r['slow_ms'].get(s, 0.0)):.2f} / "
                f"{med(name, lambda r, s=s: r['all_ms'].get(s, 0.0)):.2f}"
                for s in stages
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, required=True, help="bench_decision_cpu --save-world")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--audience", type=int, default=500, help="customers the requests name (bench_api_wrk: 500)"
    )
    parser.add_argument("--variants", nargs="+", default=["as-deployed"])
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep-traces", type=Path, default=None, help="copy each trace here")
    args = parser.parse_args()
    world = World.saved(args.world)
    ids = random.Random(args.seed).sample(
        world.customer_ids, min(args.audience, len(world.customer_ids))
    )
    variants = [_variant(v) for v in args.variants]
    if args.baseline_src is not None:
        variants.append(("base", {}))
    results: dict[str, Any] = {
        "machine": machine(),
        "loadavg_before": loadavg(),
        "rate": args.rate,
        "seconds": args.seconds,
        "workers": args.workers,
        "repeats": args.repeats,
        "runs": [],
    }
    for repeat in range(args.repeats):
        for name, extra in variants:
            run = one_run(name, extra, world, ids, args)
            results["runs"].append({"variant": name, "repeat": repeat, **run})
            print(
                f"{name} #{repeat}: p50 {run['client_p50_ms']:.1f} p99 {run['client_p99_ms']:.1f} "
                f"max {run['client_max_ms']:.1f} ms, {run['failed']} failed; server p99 "
                f"{run['server_p99_ms']:.1f}; slow {json.dumps(run['slow_ms'], default=str)[:400]}",
                flush=True,
            )
    results["loadavg_after"] = loadavg()
    print(markdown(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
