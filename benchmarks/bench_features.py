"""Feature pipeline benchmarks: batch build, online updates, Redis memory per customer.

Each measurement runs beside a baseline in the same process and run, and
reports medians over repeats:

* batch: ``build_profiles`` on the simulated events against a plain pandas
  ``groupby`` of the same events (counts and revenue per customer and type);
* online: ``OnlineProfiles.ingest`` into a real Redis (embedded or
  ``--redis-url``) in batches, against a bare pipeline of one ``HINCRBY`` per
  event into the same server;
* memory: ``MEMORY USAGE`` of the customer's keys after materialisation.

    .venv/bin/python benchmarks/bench_features.py --customers 100000 --days 90
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from features.batch import ProfileBuild, build_profiles
from features.dataset import RetailDataset
from features.online.connect import connect_redis
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from simulator import SimulatorConfig, simulate


def timed(fn, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def pandas_baseline(events: pd.DataFrame) -> pd.DataFrame:
    return events.groupby(["customer_id", "event_type"], observed=True).agg(
        n=("event_id", "size"), revenue=("revenue", "sum"), last=("timestamp", "max")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--online-events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--memory-customers", type=int, default=20_000)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--memory-only", action="store_true", help="measure only Redis memory per customer"
    )
    parser.add_argument(
        "--batch-only", action="store_true", help="measure only the batch build (no Redis)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    sim = simulate(SimulatorConfig(n_customers=args.customers, days=args.days, seed=args.seed))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    n_events = len(data.events)
    print(f"{args.customers:,} customers, {n_events:,} events")

    repeats = 1 if args.memory_only else args.repeats
    base_times, build_times = [], []
    for _ in range(repeats):  # alternated, so that both see the same load
        base_times.append(timed(lambda: pandas_baseline(data.events), 1)[0])
        seconds, build = timed(lambda: build_profiles(data), 1)
        build_times.append(seconds)
    base_s, build_s = statistics.median(base_times), statistics.median(build_times)
    assert isinstance(build, ProfileBuild)
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "customers": args.customers,
        "events": n_events,
        "batch_build_s": build_s,
        "batch_events_per_s": n_events / build_s,
        "baseline_groupby_s": base_s,
        "baseline_events_per_s": n_events / base_s,
        "batch_vs_baseline": build_s / base_s,
    }
    print(
        f"batch build: {build_s:.1f} s = {n_events / build_s:,.0f} events/s "
        f"(pandas groupby baseline {base_s:.1f} s = {n_events / base_s:,.0f} events/s)"
    )

    if args.batch_only:
        report(results, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        client = connect_redis(args.redis_url, Path(tmp))
        if not args.memory_only:
            # online updates: the last events, on profiles materialised before them
            events = data.events.sort_values("timestamp", kind="stable")
            tail = events.iloc[-args.online_events :]
            cut = tail["timestamp"].iloc[0]
            warm = build_profiles(
                RetailDataset(
                    data.customers, data.products, data.offers, events.iloc[: -args.online_events]
                ),
                as_of=cut.to_pydatetime(),
            )
            ingest_times, bare_times = [], []
            for _ in range(args.repeats):
                store = RedisOnlineStore(client, prefix=f"b{uuid.uuid4().hex[:6]}")
                online = OnlineProfiles(store, data.products)
                online.materialise(warm)
                started = time.perf_counter()
                for i in range(0, len(tail), args.batch_size):
                    online.ingest(tail.iloc[i : i + args.batch_size])
                ingest_times.append(time.perf_counter() - started)

                ids = tail["customer_id"].to_numpy()
                started = time.perf_counter()
                for i in range(0, len(ids), args.batch_size):
                    pipe = client.pipeline(transaction=False)
                    for cid in ids[i : i + args.batch_size]:
                        pipe.hincrby(f"bare:{{{cid}}}", "n", 1)
                    pipe.execute()
                bare_times.append(time.perf_counter() - started)
            ingest_s, bare_s = statistics.median(ingest_times), statistics.median(bare_times)
            results.update(
                {
                    "online_events": len(tail),
                    "online_batch_size": args.batch_size,
                    "online_events_per_s": len(tail) / ingest_s,
                    "bare_hincrby_events_per_s": len(tail) / bare_s,
                }
            )
            print(
                f"online ingest: {len(tail) / ingest_s:,.0f} events/s, batch {args.batch_size} "
                f"(bare HINCRBY pipeline {len(tail) / bare_s:,.0f} events/s)"
            )

        # memory per customer after materialisation (a fresh namespace)
        store = RedisOnlineStore(client, prefix="mem")
        ids = sorted(build.states)[: args.memory_customers]
        store.materialise(
            {c: build.states[c] for c in ids}, {c: build.statics[c] for c in ids}, build.as_of
        )
        usage = np.array([store.memory_usage(c) for c in ids])
        fields = np.array([len(build.states[c]) for c in ids])
        results.update(
            {
                "redis_version": client.info("server")["redis_version"],
                "memory_customers": len(ids),
                "bytes_per_customer_median": float(np.median(usage)),
                "bytes_per_customer_p90": float(np.percentile(usage, 90)),
                "fields_per_customer_median": float(np.median(fields)),
            }
        )
        print(
            f"redis memory per customer: median {np.median(usage):,.0f} B, "
            f"p90 {np.percentile(usage, 90):,.0f} B ({np.median(fields):.0f} fields)"
        )
        client.flushdb()

    report(results, args.out)


def report(results: dict[str, object], out: Path | None) -> None:
    """Print the results as JSON, and write them to ``out`` when given."""
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
