"""Ingest cost of the erasure tombstones (``POST /v1/events``' screen), tree against tree.

Since erasure, a batch of events first reads the prefix-wide ``<prefix>:x`` key (one
``GET``), and, while an erasure's tombstone lives, one ``GET`` per customer of the batch.
Each run is a fresh process on a source tree (``--tree``): it materialises a small
simulated retailer into the Redis at ``NBA_TEST_REDIS_URL`` under its own prefix, opens
the app, and calls ``EventIngestor.ingest`` on ``--batches`` batches of ``--batch``
product views and carts of the retailer's customers; with ``--erased`` it first erases
one customer (so a tombstone lives while it ingests). CPU per event is this process's
CPU plus the Redis server's (``INFO``: the server should serve only this benchmark).
Runs alternate (first tree, second tree, second tree with ``--erased``, repeated), and
medians and ratios to the first tree are printed.

    NBA_TEST_REDIS_URL=redis://127.0.0.1:6395/0 PYTHONPATH=. python \\
        benchmarks/bench_erasure_ingest.py --tree /path/to/main --tree . --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = """
import json, sys, tempfile, time, uuid
from pathlib import Path
from fastapi.testclient import TestClient
from serving.app import create_app
from tests.api_support import build_world, event

batches, size, erased = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
world = build_world(Path(tempfile.mkdtemp()), customers=400)
customers = [str(c) for c in world.data.customers["customer_id"]]
products = [str(p) for p in world.data.products["product_id"].head(50)]
settings = world.settings(response_stats=False, decision_log_fsync="never",
                          archive_fsync="never")
with TestClient(create_app(settings, client=world.client, registry=world.registry)) as api:
    runtime = api.app.state.runtime
    if erased:
        from serving.erasure import erase_customer
        erase_customer(runtime, customers[-1], "bench")
    def traffic(b):
        return [dict(event(world, customers[(b * size + j) % (len(customers) - 1)],
                           "product_view" if j % 2 else "add_to_cart",
                           world.at(30 + b / 10), product_id=products[j % 50]),
                     event_id=uuid.uuid4().hex) for j in range(size)]
    for b in range(5):  # warm-up
        runtime.ingestor.ingest(traffic(b))
    work = [traffic(5 + b) for b in range(batches)]
    def server_cpu():
        info = world.client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    server, mine, wall = server_cpu(), time.process_time(), time.perf_counter()
    accepted = 0
    for items in work:
        accepted += runtime.ingestor.ingest(items).accepted
    wall = time.perf_counter() - wall
    cpu = time.process_time() - mine + server_cpu() - server
n = batches * size
print(json.dumps({"cpu_us": 1e6 * cpu / n, "events_s": n / wall, "accepted": accepted}))
"""


def run(tree: str, batches: int, size: int, erased: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(batches), str(size), "1" if erased else "0"],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="two source trees")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if len(args.tree) != 2:
        parser.error("give --tree twice: the baseline, then the tree under test")
    base, tree = (str(Path(t).resolve()) for t in args.tree)
    settings = [("base", base, False), ("tree", tree, False), ("tree+erasure", tree, True)]
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in settings}
    rate: dict[str, list[float]] = {name: [] for name, _, _ in settings}
    for repeat in range(args.repeats):
        for name, path, erased in settings if repeat % 2 == 0 else settings[::-1]:
            got = run(path, args.batches, args.batch, erased)
            assert got["accepted"] == args.batches * args.batch, got
            cpu[name].append(got["cpu_us"])
            rate[name].append(got["events_s"])
            load = os.getloadavg()[0]
            print(
                f"repeat {repeat} {name}: {got['cpu_us']:.1f} us CPU/event, "
                f"{got['events_s']:.0f} events/s (load {load:.1f})",
                flush=True,
            )
    for name, _, _ in settings:
        c, r = statistics.median(cpu[name]), statistics.median(rate[name])
        ratios = [x / b for x, b in zip(cpu[name], cpu["base"], strict=True)]
        print(
            f"{name}: median {c:.1f} us CPU/event, {r:.0f} events/s; CPU ratio to base "
            f"(median of the repeats' ratios) {statistics.median(ratios):.3f}"
        )


if __name__ == "__main__":
    main()
