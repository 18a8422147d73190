"""In-process cost of the response statistics: decision time and ingest throughput.

Builds a small simulated retailer in a real Redis (``NBA_TEST_REDIS_URL``), then,
in the same process and run, alternates two apps on it: with the response
statistics (``NBA_RESPONSE_STATS=true``, the default) and without. For each:

* decisions: ``DecisionService.decide`` called directly (no HTTP), median and p95
  per decision over ``--decisions`` customers (the one pipelined Redis read, the
  policy, the record);
* events: ``EventIngestor.ingest`` of batches of ``--batch`` events (product views,
  carts, and outcome events naming the decisions just made), events per second.

Run it on a branch without the statistics too (``PYTHONPATH=<other tree>``) for the
decision time before them: the setting is then not known and skipped.

    NBA_TEST_REDIS_URL=redis://127.0.0.1:6393/0 PYTHONPATH=. python benchmarks/bench_stats_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.schemas import DecisionContext
from serving.settings import Settings
from tests.api_support import build_world, event

OUTCOMES = ("message_opened", "message_clicked", "purchase")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=600)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    world = build_world(Path(tempfile.mkdtemp()), customers=400)
    customers = [str(c) for c in world.data.customers["customer_id"]]
    products = [str(p) for p in world.data.products["product_id"].head(50)]
    learns = [True, False] if "response_stats" in Settings.model_fields else [None]
    results: dict[object, dict[str, list[float]]] = {
        k: {"ms": [], "p95": [], "eps": []} for k in learns
    }
    for round_ in range(args.rounds + 1):  # round 0 warms up (imports, caches): not counted
        for learn in learns:
            # the decision log without fsync: its disk wait (~4 ms here) would hide the rest
            overrides: dict[str, object] = {"decision_log_fsync": "never"}
            if learn is not None:
                overrides["response_stats"] = learn
            app = create_app(
                world.settings(**overrides), client=world.client, registry=world.registry
            )
            with TestClient(app) as api:
                runtime = api.app.state.runtime  # type: ignore[attr-defined]
                times = []
                decided = []
                for i in range(args.decisions):
                    cid = customers[i % len(customers)]
                    context = DecisionContext(timestamp=world.at(2 + i / 100))
                    started = time.perf_counter()
                    answer = runtime.decisions.decide(cid, context)
                    times.append(time.perf_counter() - started)
                    decided.append((cid, answer.decision_id))
                batches = []
                for b in range(args.batches):
                    items = []
                    for j in range(args.batch):
                        cid, did = decided[(b * args.batch + j) % len(decided)]
                        at = world.at(30 + b / 10)
                        if j % 3 == 0:
                            ev = event(world, cid, OUTCOMES[j % 2], at, channel="email")
                            ev["decision_id"] = did
                        else:
                            kind = "product_view" if j % 2 else "add_to_cart"
                            ev = event(world, cid, kind, at, product_id=products[j % 50])
                        ev["event_id"] = f"{uuid.uuid4().hex}"
                        items.append(ev)
                    batches.append(items)
                started = time.perf_counter()
                for items in batches:
                    runtime.ingestor.ingest(items)
                seconds = time.perf_counter() - started
            if round_ == 0:
                continue
            results[learn]["ms"].append(1000 * statistics.median(times))
            results[learn]["p95"].append(1000 * sorted(times)[int(0.95 * len(times))])
            results[learn]["eps"].append(args.batches * args.batch / seconds)
            print(
                f"round {round_} stats={learn}: decision median "
                f"{results[learn]['ms'][-1]:.2f} ms, "
                f"ingest {results[learn]['eps'][-1]:.0f} events/s",
                flush=True,
            )
    for learn, r in results.items():
        print(
            f"stats={learn}: decision median {statistics.median(r['ms']):.2f} ms "
            f"(p95 {statistics.median(r['p95']):.2f} ms), "
            f"ingest {statistics.median(r['eps']):.0f} events/s (median of {args.rounds})"
        )
    if len(learns) == 2:
        on, off = (statistics.median(results[k]["eps"]) for k in (True, False))
        print(f"ingest cost of the statistics: {100 * (1 - on / off):.1f} % of throughput")


if __name__ == "__main__":
    main()
