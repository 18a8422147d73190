"""Online ingest end to end, and Redis memory per customer, against a bare pipeline.

A simulated retailer (the demo's 5,000 customers x 90 days by default) is built
in batch up to a cut, materialised into a real Redis (``--redis-url``, else the
embedded one), and its last ``--events`` events are then ingested as contract
JSON rows (what a journey tool posts), in batches of ``--batch``. Each
repetition uses a fresh key prefix and, alternated in the same run:

* ``ingestor``: ``EventIngestor.ingest`` in process (parse, screen, apply,
  attribute, archive), through the app's runtime with its default settings
  (archive fsynced before the answer, response statistics on);
* ``http``: ``POST /v1/events`` through the ASGI app (JSON encoding, the request
  model, authentication, the response), in process (``TestClient``);
* ``bare``: one ``HINCRBY`` per event into the same server, pipelined per batch
  (the floor: what Redis alone costs for one write per event).

Each run's CPU is reported per event: this process's, and the Redis server's (its
``INFO cpu``, so give it a server of its own). Then memory: ``MEMORY USAGE`` of every
customer's keys, in all and by key (the state; the sorted set of recent event ids that
layout 2 kept beside it, none since), after materialising the batch build of all
events (as ``nba features materialise`` does) and after the online ingest (median,
p90). ``--keep`` leaves the keys in Redis to inspect them.

    NBA_TEST_REDIS_URL= PYTHONPATH=. .venv/bin/python benchmarks/bench_online_ingest.py \\
        --redis-url redis://127.0.0.1:6379/0 --customers 5000 --days 90 --repeats 3
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import platform
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from features.batch import build_profiles
from features.dataset import RetailDataset
from features.online.connect import connect_redis
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from serving.app import create_app
from serving.auth import new_api_key
from serving.settings import Settings
from simulator import SimulatorConfig, simulate
from training.registry import ModelRegistry

MODES = ("ingestor", "http", "bare")


def contract_rows(events: pd.DataFrame) -> list[dict[str, Any]]:
    """The events as the JSON a client posts (contract fields, nulls left out)."""
    out = []
    for row in events.to_dict("records"):
        item: dict[str, Any] = {
            "event_id": str(row["event_id"]),
            "customer_id": str(row["customer_id"]),
            "timestamp": pd.Timestamp(row["timestamp"]).isoformat(),
            "channel": str(row["channel"]),
            "event_type": str(row["event_type"]),
        }
        for name in ("product_id", "offer_id", "decision_id"):
            value = row.get(name)
            if value is not None and not pd.isna(value):
                item[name] = str(value)
        revenue = row.get("revenue")
        if revenue is not None and not pd.isna(revenue) and revenue != 0:
            item["revenue"] = float(revenue)
        props = row.get("properties")
        if isinstance(props, str) and props:
            item["properties"] = json.loads(props)
        elif isinstance(props, dict):
            item["properties"] = props
        out.append(item)
    return out


def memory(store: RedisOnlineStore, ids: list[str]) -> dict[str, tuple[float, float]]:
    """Median and p90 of ``MEMORY USAGE`` per customer: in all, and by key (the state, the
    recent event ids kept for de-duplication; a customer without the key counts 0)."""
    # older trees kept the ids in a "seen" key of their own (this script measures them too)
    keys = {name: getattr(store, f"{name}_key") for name in ("state", "seen")}
    parts: dict[str, list[int]] = {"total": [], **{name: [] for name in keys}}
    for c in ids:
        pipe = store.client.pipeline(transaction=False)
        for key_of in keys.values():
            pipe.memory_usage(key_of(c), samples=0)
        used = [int(u or 0) for u in pipe.execute()]
        parts["total"].append(sum(used))
        for name, u in zip(keys, used, strict=True):
            parts[name].append(u)
    return {
        name: (float(np.median(used)), float(np.percentile(used, 90)))
        for name, used in parts.items()
    }


def encoded(store: RedisOnlineStore, ids: list[str]) -> dict[str, float]:
    """The state's own bytes per customer (``STRLEN``, before Redis's per-key overhead and
    the allocator's size classes, which ``MEMORY USAGE`` counts): median, p90 and mean, and
    the mean of ``MEMORY USAGE`` (a change within one size class moves the median by
    nothing, the mean by its share of customers crossing a class)."""
    pipe = store.client.pipeline(transaction=False)
    for c in ids:
        pipe.strlen(store.state_key(c))
        pipe.memory_usage(store.state_key(c), samples=0)
    got = [int(u or 0) for u in pipe.execute()]
    lengths, used = got[0::2], got[1::2]
    return {
        "strlen_median": float(np.median(lengths)),
        "strlen_p90": float(np.percentile(lengths, 90)),
        "strlen_mean": float(np.mean(lengths)),
        "memory_usage_mean": float(np.mean(used)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--redis-url", default=os.environ.get("NBA_TEST_REDIS_URL") or None)
    parser.add_argument("--profile", choices=MODES, help="cProfile one run of this mode")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--keep", action="store_true", help="leave the keys in Redis (their prefixes printed)"
    )
    args = parser.parse_args()
    modes = args.modes.split(",")

    sim = simulate(SimulatorConfig(n_customers=args.customers, days=args.days, seed=args.seed))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    events = data.events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    tail = events.iloc[-args.events :]
    cut = pd.Timestamp(tail["timestamp"].iloc[0]).to_pydatetime()
    head = RetailDataset(data.customers, data.products, data.offers, events.iloc[: -args.events])
    warm = build_profiles(head, as_of=cut)
    rows = contract_rows(tail)
    batches = [rows[i : i + args.batch] for i in range(0, len(rows), args.batch)]
    print(f"{args.customers:,} customers, {len(events):,} events; ingesting the last {len(rows):,}")

    root = Path(tempfile.mkdtemp())
    client = connect_redis(args.redis_url, root / "redis")
    products_path = root / "products.parquet"
    data.products.to_parquet(products_path)
    registry = ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
    key, spec = new_api_key("bench", ("ingest",))
    headers = {"Authorization": f"Bearer {key}"}
    # the server's clock just after the last event (the future-time screen stays on)
    now = pd.Timestamp(tail["timestamp"].iloc[-1]).to_pydatetime() + dt.timedelta(minutes=1)
    prefixes: list[str] = []
    #: per mode and run: CPU seconds of this process and of the Redis server (its own
    #: ``INFO cpu``: the whole server, so only meaningful on a server nothing else uses)
    cpu_seconds: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}

    def redis_cpu() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    last_prefix: dict[str, str] = {}

    def run(mode: str, profiler: cProfile.Profile | None = None) -> float:
        prefix = f"oi{uuid.uuid4().hex[:8]}"
        prefixes.append(prefix)
        last_prefix[mode] = prefix
        if mode == "bare":
            started = time.perf_counter()
            for batch in batches:
                pipe = client.pipeline(transaction=False)
                for item in batch:
                    pipe.hincrby(f"{prefix}:{{{item['customer_id']}}}", "n", 1)
                pipe.execute()
            return time.perf_counter() - started
        OnlineProfiles(RedisOnlineStore(client, prefix=prefix), data.products).materialise(warm)
        settings = Settings(
            api_keys=[spec],
            data_dir=root / prefix,
            products_path=products_path,
            redis_prefix=prefix,
            model_poll_seconds=0,
        )
        app = create_app(settings, client=client, registry=registry)
        with TestClient(app) as api:
            runtime = api.app.state.runtime  # type: ignore[attr-defined]
            runtime.ingestor.clock = lambda: now
            send: Callable[[list[dict[str, Any]]], object]
            if mode == "ingestor":
                send = runtime.ingestor.ingest
            else:

                def send(batch: list[dict[str, Any]]) -> object:
                    answer = api.post("/v1/events", json={"events": batch}, headers=headers)
                    assert answer.status_code == 200, answer.text
                    return answer

            if profiler is not None:
                profiler.enable()
            server_cpu = redis_cpu()
            cpu = time.process_time()
            started = time.perf_counter()
            for batch in batches:
                send(batch)
            seconds = time.perf_counter() - started
            cpu_seconds[mode].append((time.process_time() - cpu, redis_cpu() - server_cpu))
            if profiler is not None:
                profiler.disable()
            return seconds

    if args.profile:
        run(args.profile)  # warm caches
        profiler = cProfile.Profile()
        run(args.profile, profiler)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
        return

    for mode in modes:  # warm-up round: imports, script caches; not counted
        run(mode)
    times: dict[str, list[float]] = {m: [] for m in modes}
    for repeat in range(args.repeats):
        for mode in modes if repeat % 2 == 0 else reversed(modes):
            times[mode].append(run(mode))
            print(f"  {mode}: {len(rows) / times[mode][-1]:,.0f} events/s", flush=True)
    rates = {m: len(rows) / statistics.median(t) for m, t in times.items()}
    # the counted runs only (the warm-up's come first)
    cpu_us = {
        m: {
            "process": 1e6 * statistics.median(c for c, _ in cpu_seconds[m][1:]) / len(rows),
            "redis": 1e6 * statistics.median(r for _, r in cpu_seconds[m][1:]) / len(rows),
        }
        for m in modes
        if m != "bare"
    }
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, python "
        f"{platform.python_version()}, load {os.getloadavg()}",
        "redis_version": client.info("server")["redis_version"],
        "customers": args.customers,
        "events_ingested": len(rows),
        "batch": args.batch,
        "events_per_s": rates,
        "cpu_us_per_event": cpu_us,
    }
    if "bare" in rates:
        results["vs_bare"] = {m: r / rates["bare"] for m, r in rates.items()}

    # memory: the whole history materialised (as ``nba features materialise`` does), and
    # the last ingestor run's store (the batch build up to the cut, then the online tail)
    ids = [str(c) for c in data.customers["customer_id"]]
    full = build_profiles(data)
    store = RedisOnlineStore(client, prefix=f"oi{uuid.uuid4().hex[:8]}")
    prefixes.append(store.prefix)
    store.materialise(full.states, full.statics, full.as_of)
    results["bytes_materialised_median_p90"] = memory(store, ids)
    results["state_materialised"] = encoded(store, ids)
    if "ingestor" in last_prefix:
        online_store = RedisOnlineStore(client, prefix=last_prefix["ingestor"])
        results["bytes_after_online_median_p90"] = memory(online_store, ids)
        results["state_after_online"] = encoded(online_store, ids)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    if args.keep:
        print(f"kept: materialised {store.prefix}, online {last_prefix.get('ingestor')}")
        return
    for prefix in prefixes:
        pipe = client.pipeline(transaction=False)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            pipe.unlink(key)
        pipe.execute()


if __name__ == "__main__":
    main()
