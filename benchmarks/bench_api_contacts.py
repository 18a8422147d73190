"""What counting the API's own contacts and listing every reason costs a decision.

``POST /v1/decisions`` now also reads the contacts it decided that no ``message_sent``
reported yet (one more command in the decision's read pipeline), writes each chosen
contact (three more in the record pipeline) and answers with the reason of every
action not chosen (not the 10 best). This script times decisions in process (the app
called through FastAPI's TestClient, one request at a time, real Redis) on the code of
two source trees, alternated run by run in fresh processes, so that the same machine
load falls on both:

    .venv/bin/python benchmarks/bench_api_contacts.py --redis redis://127.0.0.1:6411/0 \\
        --tree /work/wt-apiscen --baseline /work/main --customers 300 --repeats 3

Each run signs ``--customers`` customers up (e-mail and push), gives each a product view
and a cart, and asks four decisions per customer 13 hours apart (contacts pile up); it
reports the mean CPU time of this process per decision (the app's thread and the
client's: wall time swings with the machine's load; Redis's own CPU is not in it) and
the mean answer size. The summary gives the median over the runs of each tree and the
ratio to the baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROUNDS = 4
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def one_run(redis_url: str, customers: int) -> dict[str, Any]:
    """Time the decisions of one run on the code this process imports."""
    import pandas as pd
    from fastapi.testclient import TestClient

    from features.online.connect import connect_redis
    from serving.app import create_app
    from serving.auth import new_api_key
    from serving.settings import Settings
    from training.registry import ModelRegistry

    root = Path(tempfile.mkdtemp(prefix="bench-contacts-"))
    products = pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(1, 21)],
            "name": [f"item {i}" for i in range(1, 21)],
            "category": ["trousers", "shirts", "shoes", "bags"] * 5,
            "brand": ["Atelier"] * 20,
            "price": [39.9 + i for i in range(20)],
            "margin": [15.0] * 20,
            "stock": [10] * 20,
            "launch_date": pd.Timestamp("2025-09-01", tz="UTC"),
        }
    )
    products.to_parquet(root / "products.parquet")
    key, spec = new_api_key("bench", ("decide", "ingest"))
    settings = Settings(
        api_keys=[spec],
        data_dir=root,
        products_path=root / "products.parquet",
        redis_prefix=f"bc{uuid.uuid4().hex[:8]}",
        model_poll_seconds=0,
        archive_fsync="never",
        decision_log_fsync="never",
    )
    registry = ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
    app = create_app(settings, client=connect_redis(redis_url), registry=registry)
    headers = {"Authorization": f"Bearer {key}"}
    ids = [f"B{i:05d}" for i in range(customers)]
    with TestClient(app) as api:
        for n, cid in enumerate(ids):
            at = START - dt.timedelta(days=10)
            events: list[dict[str, Any]] = [
                {
                    "type": "identify",
                    "messageId": f"{cid}-id",
                    "userId": cid,
                    "timestamp": at.isoformat(),
                    "traits": {
                        "timezone": "Europe/Paris",
                        "consent_email": True,
                        "consent_push": True,
                    },
                }
            ]
            for j, kind in enumerate(("product_view", "add_to_cart")):
                events.append(
                    {
                        "event_id": f"{cid}-{j}",
                        "customer_id": cid,
                        "timestamp": (START - dt.timedelta(hours=2, minutes=10 - j)).isoformat(),
                        "channel": "web",
                        "event_type": kind,
                        "product_id": f"P{1 + n % 20}",
                    }
                )
            assert (
                api.post("/v1/events", json={"events": events}, headers=headers).status_code == 200
            )
        times: list[float] = []
        sizes: list[int] = []
        for r in range(ROUNDS):
            moment = (START + dt.timedelta(hours=13 * r)).isoformat()
            for cid in ids:
                body = {"customer_id": cid, "context": {"timestamp": moment}}
                t0 = time.process_time()
                response = api.post("/v1/decisions", json=body, headers=headers)
                times.append(time.process_time() - t0)
                assert response.status_code == 200, response.text
                sizes.append(len(response.content))
    return {
        "us_per_decision": statistics.fmean(times) * 1e6,
        "bytes_per_answer": statistics.fmean(sizes),
        "decisions": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True, help="redis:// URL (a scratch Redis)")
    parser.add_argument("--tree", type=Path, required=True, help="the source tree measured")
    parser.add_argument("--baseline", type=Path, required=True, help="the baseline's tree")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(one_run(args.redis, args.customers)))
        return
    runs: dict[str, list[dict[str, Any]]] = {"tree": [], "baseline": []}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for name, tree in (("baseline", args.baseline), ("tree", args.tree)):
            env = {**os.environ, "PYTHONPATH": str(tree)}
            command = [sys.executable, __file__, "--run", "--redis", args.redis]
            command += ["--tree", str(tree), "--baseline", str(args.baseline)]
            command += ["--customers", str(args.customers)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            load.append(os.getloadavg()[0])
    summary = {
        name: {
            key: statistics.median(r[key] for r in rs)
            for key in ("us_per_decision", "bytes_per_answer")
        }
        for name, rs in runs.items()
    }
    ratio = summary["tree"]["us_per_decision"] / summary["baseline"]["us_per_decision"]
    print(json.dumps({"runs": runs, "summary": summary, "ratio": ratio, "load_1min": load}))
    tree, base = summary["tree"], summary["baseline"]
    print(
        f"tree {tree['us_per_decision']:.0f} us/decision ({tree['bytes_per_answer']:.0f} B), "
        f"baseline {base['us_per_decision']:.0f} us ({base['bytes_per_answer']:.0f} B): "
        f"{ratio:.2f}x; nproc {os.cpu_count()}, load {min(load):.1f}-{max(load):.1f}"
    )


if __name__ == "__main__":
    main()
