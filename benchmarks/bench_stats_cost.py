"""In-process cost of the response statistics: decision time and ingest throughput.

Builds a small simulated retailer in a real Redis (``NBA_TEST_REDIS_URL``) and opens
two apps on it at once: with the response statistics (``NBA_RESPONSE_STATS=true``,
the default) and without. Each makes ``--decisions`` decisions
(``DecisionService.decide`` called directly, no HTTP: the one pipelined Redis read,
the policy, the record); then, round after round, the two ingest the same kind of
traffic in alternation (the order swapped every round, so that a slow spell of the
shared machine hits both): ``--batches`` calls of ``EventIngestor.ingest`` with
``--batch`` events each (product views, carts, and a share ``--outcome-share`` of
outcome events naming a decision just made: opens, clicks and purchases in turn, a
purchase with its product and revenue). The share is 1/3 by default, several times
what a retailer sends: ``--outcome-share world`` takes the simulated retailer's own
share of opens, clicks and purchases among its events (about 7 %), still each naming
a decision (so still pessimistic: most real outcomes follow no decision and are not
joined). Per round and setting it records:

* events per second, wall clock;
* CPU per event: this process's CPU time plus the Redis server's (``INFO`` CPU of
  the server, which serves only this benchmark when it is your own), which the
  other engineers' load on the machine disturbs much less than the wall clock.

The archive and the decision log are written without fsync: their disk wait (a few
ms per call on this machine, the same with and without statistics) would hide the rest.

    NBA_TEST_REDIS_URL=redis://127.0.0.1:6406/0 PYTHONPATH=. python benchmarks/bench_stats_cost.py
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.schemas import DecisionContext, DecisionResponse
from tests.api_support import ApiWorld, build_world, event

OUTCOMES = ("message_opened", "message_clicked", "purchase")


def redis_cpu(client: Any) -> float:
    """CPU seconds (system + user) the Redis server has used so far."""
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def traffic(
    world: ApiWorld,
    decided: list[tuple[str, str]],
    products: list[str],
    batches: int,
    size: int,
    share: float,
) -> list[list[dict[str, Any]]]:
    """``batches`` batches of ``size`` fresh events, a ``share`` of them (spread evenly)
    outcomes of ``decided``."""
    out = []
    outcomes = 0
    for b in range(batches):
        items = []
        for j in range(size):
            n = b * size + j
            cid, did = decided[n % len(decided)]
            at = world.at(30 + b / 10)
            if int((n + 1) * share) > int(n * share):
                kind = OUTCOMES[outcomes % len(OUTCOMES)]
                outcomes += 1
                if kind == "purchase":
                    ev = event(world, cid, kind, at, product_id=products[j % 50])
                    ev.update(quantity=1, revenue=40.0)
                else:
                    ev = event(world, cid, kind, at, channel="email")
                ev["decision_id"] = did
            else:
                kind = "product_view" if j % 2 else "add_to_cart"
                ev = event(world, cid, kind, at, product_id=products[j % 50])
            ev["event_id"] = uuid.uuid4().hex
            items.append(ev)
        out.append(items)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--outcome-share",
        default="0.3333",
        help="share of the events that are outcomes naming a decision: a number in (0, 1], "
        "or 'world' (the simulated retailer's own share of opens, clicks and purchases)",
    )
    args = parser.parse_args()
    world = build_world(Path(tempfile.mkdtemp()), customers=400)
    if args.outcome_share == "world":
        share = float(world.data.events["event_type"].isin(OUTCOMES).mean())
    else:
        share = float(args.outcome_share)
        if not 0.0 < share <= 1.0:
            parser.error(f"--outcome-share must be in (0, 1] or 'world', got {share}")
    print(f"outcome events naming a decision: {100 * share:.1f} % of the traffic", flush=True)
    customers = [str(c) for c in world.data.customers["customer_id"]]
    products = [str(p) for p in world.data.products["product_id"].head(50)]
    settings = (True, False)
    with contextlib.ExitStack() as stack:
        runtimes, decided, ms = {}, {}, {}
        for learn in settings:
            app = create_app(
                world.settings(
                    response_stats=learn,
                    decision_log_fsync="never",
                    archive_fsync="never",
                    archive_dir=world.root / f"archive-{learn}",
                ),
                client=world.client,
                registry=world.registry,
            )
            api = stack.enter_context(TestClient(app))
            runtime = api.app.state.runtime  # type: ignore[attr-defined]
            runtimes[learn] = runtime
            times, made = [], []
            for i in range(args.decisions):
                cid = customers[i % len(customers)]
                started = time.perf_counter()
                answer = DecisionResponse.model_validate_json(
                    runtime.decisions.answer_logged(
                        cid, DecisionContext(timestamp=world.at(2 + i / 100))
                    )
                )
                times.append(time.perf_counter() - started)
                made.append((cid, answer.decision_id))
            decided[learn], ms[learn] = made, 1000 * statistics.median(times)
        eps: dict[bool, list[float]] = {k: [] for k in settings}
        cpu: dict[bool, list[float]] = {k: [] for k in settings}
        for round_ in range(args.rounds + 1):  # round 0 warms up: not counted
            for learn in settings if round_ % 2 else settings[::-1]:
                batches = traffic(world, decided[learn], products, args.batches, args.batch, share)
                n = args.batches * args.batch
                server, mine = redis_cpu(world.client), time.process_time()
                started = time.perf_counter()
                for items in batches:
                    runtimes[learn].ingestor.ingest(items)
                wall = time.perf_counter() - started
                used = time.process_time() - mine + redis_cpu(world.client) - server
                if round_:
                    eps[learn].append(n / wall)
                    cpu[learn].append(1e6 * used / n)
                    print(
                        f"round {round_} stats={learn}: {n / wall:.0f} events/s, "
                        f"{1e6 * used / n:.0f} us CPU/event",
                        flush=True,
                    )
    for learn in settings:
        print(
            f"stats={learn}: decision median {ms[learn]:.2f} ms; ingest "
            f"{statistics.median(eps[learn]):.0f} events/s, "
            f"{statistics.median(cpu[learn]):.0f} us CPU/event (medians of {args.rounds})"
        )
    wall_ratio = [on / off for on, off in zip(eps[True], eps[False], strict=True)]
    cpu_ratio = [on / off for on, off in zip(cpu[True], cpu[False], strict=True)]
    print(
        f"ingest cost of the statistics: {100 * (1 - statistics.median(wall_ratio)):.1f} % of "
        f"throughput (median of the per-round ratios), "
        f"{100 * (statistics.median(cpu_ratio) - 1):.1f} % more CPU per event"
    )


if __name__ == "__main__":
    main()
