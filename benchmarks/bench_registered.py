"""CPU of ``OnlineProfiles.registered``: which customers of an ingest request are
registered (a known zone or birthday), the check every ``POST /v1/events`` makes (to reject
unknown customers, or to count them when accepted).

A prefix of a real Redis gets ``--prospects`` customers seen only in events and
``--zoned`` registered ones; the check runs on requests of 100 prospects and 100
registered customers (the process's cache holds the registered ones after the first
request; a prospect is read again each time, as another process may register it), and
prints the median CPU per request over 7 rounds of 50. Then the same requests as an ingest
makes them: the check, then the ops of one view per customer (``record_ops``, which needs
each customer's zone), with the Redis reads per request (``GET`` calls in the server's
``INFO commandstats``: give it a server of its own). Run it on two trees, alternated:

    PYTHONPATH=TREE .venv/bin/python TREE/benchmarks/bench_registered.py --redis-url redis://127.0.0.1:6390/0
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import statistics
import time

from features.contract import EventRecord
from features.finalise import CustomerStatic
from features.online.connect import connect_redis
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.online.store import EventOps
from simulator import SimulatorConfig, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prospects", type=int, default=2_000)
    parser.add_argument("--zoned", type=int, default=200)
    args = parser.parse_args()
    store = RedisOnlineStore(connect_redis(args.redis_url), prefix="bench-registered")
    for key in store.client.scan_iter(match="bench-registered:*"):
        store.client.delete(key)
    at = 1_772_000_000
    store.apply([EventOps(f"P{i}", f"e{i}", at, (("n", 1.0),)) for i in range(args.prospects)])
    for i in range(args.zoned):
        store.upsert_static(f"Z{i}", CustomerStatic(timezone="Europe/Paris"))
    products = simulate(SimulatorConfig(n_customers=10, days=1, seed=0, n_products=20)).products
    online = OnlineProfiles(store, products)
    ids = [f"P{i}" for i in range(100)] + [f"Z{i}" for i in range(100)]
    rounds = []
    for _ in range(7):
        start = time.process_time()
        for _ in range(50):
            found = online.registered(ids)
        rounds.append((time.process_time() - start) / 50 * 1e6)
    assert found == {f"Z{i}" for i in range(100)}
    print(
        f"registered(), 100 prospects + 100 registered: median {statistics.median(rounds):,.0f} "
        f"µs CPU per request (rounds {', '.join(f'{r:,.0f}' for r in sorted(rounds))})"
    )
    ingest_request(store, online, ids, found)
    for key in store.client.scan_iter(match="bench-registered:*"):
        store.client.delete(key)


def _gets(store: RedisOnlineStore) -> int:
    return int(store.client.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


def ingest_request(
    store: RedisOnlineStore, online: OnlineProfiles, ids: list[str], registered: set[str]
) -> None:
    """CPU and Redis reads of the registration check and the ops of one view per customer,
    as ``POST /v1/events`` makes them (a tree whose ``record_ops`` takes the prospects the
    check found is given them, as its ingestor does)."""
    at = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    records = [
        EventRecord(
            event_id=f"v-{c}",
            customer_id=c,
            timestamp=at,
            channel="web",
            event_type="product_view",
            product_id="P1",
        )
        for c in ids
    ]
    takes_prospects = "prospects" in inspect.signature(online.record_ops).parameters
    rounds, reads = [], []
    for _ in range(7):
        gets = _gets(store)
        start = time.process_time()
        for _ in range(50):
            found = online.registered(ids)
            if takes_prospects:
                online.record_ops(records, frozenset(ids) - found)  # type: ignore[call-arg]
            else:
                online.record_ops(records)
        rounds.append((time.process_time() - start) / 50 * 1e6)
        reads.append((_gets(store) - gets) / 50)
    assert found == registered
    print(
        f"registered() + record_ops(), 100 prospects + 100 registered: median "
        f"{statistics.median(rounds):,.0f} µs CPU per request (rounds "
        f"{', '.join(f'{r:,.0f}' for r in sorted(rounds))}); Redis GETs per request: "
        f"{statistics.median(reads):g}"
    )


if __name__ == "__main__":
    main()
