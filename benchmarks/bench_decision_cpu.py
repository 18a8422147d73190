"""CPU per request of ``POST /v1/decisions`` against the bare endpoints, in process.

The API and :mod:`benchmarks.bare_app` are called through their ASGI interface from
this process, one request at a time (no HTTP server, no load generator), and the
process's CPU time is divided by the requests: what a decision costs in CPU,
whatever the machine's other load does to wall times. The targets alternate within
each of ``--repeats`` rounds (medians). The API runs as deployed (champion
recommender, statistics, decision log fsynced per decision through its group
commit, thread-pool hop); the customers are ``--sample`` of the audience.

    .venv/bin/python benchmarks/bench_decision_cpu.py --customers 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_api import _asgi_post, build, loadavg, machine, redis_server

PATHS = {"api": "/v1/decisions", "bare": "/bare", "bare-raw": "/bare-raw"}


async def _drive(app: Any, path: str, bodies: list[bytes], key: str) -> float:
    """CPU seconds of this process per request over ``bodies``."""
    started = time.process_time()
    for body in bodies:
        status = await _asgi_post(app, path, body, key)
        if status != 200:
            raise SystemExit(f"{path} answered {status}")
    return (time.process_time() - started) / len(bodies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from benchmarks.bare_app import create_app as bare_app
    from serving.app import create_app
    from serving.settings import Settings

    with tempfile.TemporaryDirectory(prefix="nba-bench-cpu-") as tmp:
        folder = Path(tmp)
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(redis_server(folder / "redis"))
            world = build(args, url, folder)
            os.environ.update(BARE_REDIS_URL=url, BARE_PREFIX=world.prefix)
            settings = Settings(
                redis_url=url,
                redis_prefix=world.prefix,
                products_path=Path(world.products_path),
                data_dir=Path(world.data_dir),
                mlflow_tracking_uri=world.tracking_uri,
                api_keys=json.loads(world.api_keys_json),
                model_poll_seconds=0,
            )
            rng = random.Random(args.seed)
            ids = rng.sample(world.customer_ids, min(500, len(world.customer_ids)))
            bodies = [
                json.dumps({"customer_id": rng.choice(ids)}).encode() for _ in range(args.requests)
            ]
            api, bare = create_app(settings), bare_app()
            apps = {"api": api, "bare": bare, "bare-raw": bare}
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
    print(json.dumps({"machine": machine(), "loadavg": [before, loadavg()]}))
    print("| target | CPU ms per request | API / target |")
    print("|---|---:|---:|")
    for name, ms in medians.items():
        ratio = "" if name == "api" else f"{medians['api'] / ms:.1f}x"
        print(f"| {name} | {ms:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
