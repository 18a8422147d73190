"""Benchmark: simulate and write a retailer, against a bare write of as many random events.

Run::

    .venv/bin/python benchmarks/bench_simulator.py            # 100,000 customers x 90 days
    .venv/bin/python benchmarks/bench_simulator.py --customers 20000 --days 30

Three measurements, each in its own fresh process so that each peak RSS
(``resource.getrusage``) is its own (then, with ``--spread``, how much the
choice of action, channel and time is worth in the simulated world):

1. ``simulate`` + ``write_simulation`` (events kept in memory, compact);
2. ``stream_simulation`` (events written chunk by chunk, never all in memory);
3. baseline: numpy draws the same number of random event rows, pyarrow builds
   the same text columns and writes them with the same Parquet settings. The
   difference with (1) is the cost of the simulation logic itself.

The worker processes are started before any work, while this process is
small: a process forked later would inherit this one's peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simulator import SimulatorConfig, simulate, stream_simulation, write_simulation
from simulator.eventlog import EVENTS_ARROW_SCHEMA, padded_ids
from simulator.spread import option_spread
from simulator.writer import EVENTS_ROW_GROUP


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _files_mb(out: Path) -> float:
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6


def run_in_memory(config: SimulatorConfig, out: Path) -> dict[str, float]:
    started = time.perf_counter()
    sim = simulate(config)
    simulated = time.perf_counter()
    write_simulation(sim, out)
    written = time.perf_counter()
    return {
        "events": float(sim.n_events),
        "simulate_s": simulated - started,
        "write_s": written - simulated,
        "total_s": written - started,
        "compact_mb": sum(b.nbytes for b in sim.event_blocks) / 1e6,
        "files_mb": _files_mb(out),
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_streamed(config: SimulatorConfig, out: Path) -> dict[str, float]:
    started = time.perf_counter()
    stream_simulation(config, out)
    return {
        "total_s": time.perf_counter() - started,
        "files_mb": _files_mb(out),
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_baseline(n_rows: int, n_customers: int, chunk_rows: int, out: Path) -> dict[str, float]:
    """Random rows with the events schema, built and written like the simulator's."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    channels = pa.array(["email", "web", "app", "store", "sms", "push"])
    types = pa.array(["product_view", "message_sent", "message_delivered", "purchase", "search"])
    customers = padded_ids("C", 1, n_customers, 6)
    products = padded_ids("P", 1, 2000, 5)
    start = np.datetime64("2026-01-05", "ns").astype(np.int64)
    with pq.ParquetWriter(out, EVENTS_ARROW_SCHEMA, compression="zstd") as writer:
        for first in range(0, n_rows, chunk_rows):
            n = min(chunk_rows, n_rows - first)
            product = rng.integers(-1, 2000, n)
            revenue = rng.lognormal(3.5, 0.6, n)
            table = pa.Table.from_arrays(
                [
                    padded_ids("E", first + 1, n, 9),
                    customers.take(pa.array(np.sort(rng.integers(0, n_customers, n)))),
                    pa.array(start + rng.integers(0, 90 * 86_400 * 10**9, n)).cast(
                        pa.timestamp("ns", tz="UTC")
                    ),
                    channels.take(pa.array(rng.integers(0, len(channels), n))),
                    types.take(pa.array(rng.integers(0, len(types), n))),
                    products.take(pa.array(np.maximum(product, 0), mask=product < 0)),
                    pa.nulls(n, pa.string()),
                    pa.nulls(n, pa.string()),
                    pa.array(rng.integers(1, 3, n), mask=product < 0),
                    pa.array(revenue, mask=product < 0),
                    pa.nulls(n, pa.string()),
                ],
                schema=EVENTS_ARROW_SCHEMA,
            )
            writer.write_table(table, row_group_size=EVENTS_ROW_GROUP)
    return {
        "total_s": time.perf_counter() - started,
        "files_mb": os.path.getsize(out) / 1e6,
        "peak_rss_mb": _peak_rss_mb(),
    }


def measure_spread(n_customers: int = 5000, days: int = 90, sampled: int = 1500) -> str:
    """Option values of ``sampled`` customers known at the start, on day 60 of a simulation."""
    config = SimulatorConfig(n_customers=n_customers, days=days, seed=0)
    sim = simulate(config)
    known = ~sim.truth.customers["created_in_window"].to_numpy()
    rows = np.flatnonzero(known)[:sampled]
    day = config.start + dt.timedelta(days=min(60, days - 1))
    started = time.perf_counter()
    spread = option_spread(sim, rows, day)
    s = spread.summary()
    return (
        f"option spread ({n_customers:,} x {days} days, {int(s['customers'])} customers, "
        f"{spread.options} options each before consent, {time.perf_counter() - started:.1f} s): "
        f"best {s['best']:.3f}, mean option {s['mean_option']:.3f}, "
        f"spread mean {s['spread_mean']:.3f} (median {s['spread_median']:.3f}); "
        f"fixed rule (one priority list for everyone) {s['best_fixed_option']:.3f}, "
        f"personal best / fixed rule - 1 = {s['personalisation_gain']:.0%}"
    )


def _worker(jobs: mp.Queue, results: mp.Queue) -> None:
    results.put("ready")
    name, args = jobs.get()
    runners: dict[str, Callable[..., dict[str, float]]] = {
        "in_memory": run_in_memory,
        "streamed": run_streamed,
        "baseline": run_baseline,
    }
    results.put(runners[name](*args))


class _Worker:
    """A fresh process that runs one measurement when asked."""

    def __init__(self, ctx: Any):
        self.jobs: mp.Queue = ctx.Queue()
        self.results: mp.Queue = ctx.Queue()
        self.process = ctx.Process(target=_worker, args=(self.jobs, self.results))
        self.process.start()
        self.results.get()  # imports done: start-up is never timed

    def run(self, name: str, *args: object) -> dict[str, float]:
        self.jobs.put((name, args))
        result: dict[str, float] = self.results.get()
        self.process.join()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--spread", action="store_true", help="also measure the option spread (5,000 x 90 days)"
    )
    args = parser.parse_args()
    config = SimulatorConfig(n_customers=args.customers, days=args.days, seed=args.seed)

    ctx = mp.get_context("spawn")
    workers = [_Worker(ctx) for _ in range(3)]
    print(
        f"machine: {os.cpu_count()} cpu, {platform.machine()}, python {platform.python_version()}, "
        f"numpy {np.__version__}, pyarrow {pa.__version__}"
    )
    print(
        f"config: {config.n_customers:,} customers x {config.days} days, "
        f"chunks of {config.chunk_size:,}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sim = workers[0].run("in_memory", config, Path(tmp) / "in_memory")
        events = int(sim["events"])
        print(
            f"simulate + write_simulation: {events:,} events "
            f"({events / config.n_customers:.1f} per customer), "
            f"simulate {sim['simulate_s']:.1f} s + write {sim['write_s']:.1f} s "
            f"= {sim['total_s']:.1f} s, {events / sim['total_s']:,.0f} events/s, "
            f"compact events {sim['compact_mb']:.0f} MB, files {sim['files_mb']:.0f} MB, "
            f"peak RSS {sim['peak_rss_mb']:.0f} MB"
        )
        streamed = workers[1].run("streamed", config, Path(tmp) / "streamed")
        print(
            f"stream_simulation: {streamed['total_s']:.1f} s, "
            f"{events / streamed['total_s']:,.0f} events/s, "
            f"peak RSS {streamed['peak_rss_mb']:.0f} MB"
        )
        rows_per_chunk = max(1, events // config.n_chunks)
        base = workers[2].run(
            "baseline", events, config.n_customers, rows_per_chunk, Path(tmp) / "random.parquet"
        )
        print(
            f"baseline (random rows, same schema and writer): {events:,} rows "
            f"in {base['total_s']:.1f} s, {events / base['total_s']:,.0f} rows/s, "
            f"file {base['files_mb']:.0f} MB, peak RSS {base['peak_rss_mb']:.0f} MB"
        )
        print(f"simulate + write / baseline time: {sim['total_s'] / base['total_s']:.1f}x")
    if args.spread:
        print(measure_spread())


if __name__ == "__main__":
    main()
