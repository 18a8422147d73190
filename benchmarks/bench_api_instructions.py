"""Instructions per ``POST /v1/decisions`` in process, under callgrind: a CPU measure that
the machine's load does not move.

On the shared two-core machine the CPU time of a request moves with the load (the same
run gave one tree 1.25 to 1.99 ms per request within three minutes), so a change of a few
per cent cannot be read from times. Here each tree's API (as deployed: the lane, the
decision service, the decision log without fsync, the decider and group commit made
inline, as ``bench_api_stages.py`` does) answers the same requests from the same Redis
state at the same moment, under valgrind's callgrind, and the instructions of a run that
answers ``--warm-up`` requests are subtracted from one that answers ``--requests`` more:
what the requests themselves cost, the same on an idle or a loaded machine.

Every run is deterministic: the world's keys are copied (``DUMP`` / ``RESTORE``) into a
fresh Redis server per run, every request carries the same ``context.timestamp``
(``--at``), and the unkeyed requests' seeds come from a seeded generator. Each run prints a
digest of its answers: the two trees must answer alike (the script fails otherwise).

The world is a ``bench_decision_cpu.py --save-world`` world decided by the rule-based
scorer and popularity (its MLflow store is replaced by an empty one): valgrind cannot run
the LightFM build of this venv (an AVX-512 instruction it does not know), so the
recommender's share of a request (a few per cent of requests) is left out.

    .venv/bin/python benchmarks/bench_decision_cpu.py --customers 5000 --save-world W.json
    git -C /work/main archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/bench_api_instructions.py --world W.json --baseline-src /tmp/base
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
sys.path.append(str(HERE))  # after PYTHONPATH: the measured tree's modules come first

from benchmarks.bench_api import World, loadavg, machine, redis_server  # noqa: E402

#: Seeds the requests' customers and the unkeyed requests' decision seeds.
SEED = 3


def _requests(world: World, n: int, at: str, skip: int = 0) -> list[bytes]:
    rng = random.Random(SEED)
    ids = rng.sample(world.customer_ids, min(500, len(world.customer_ids)))
    bodies = [
        json.dumps({"customer_id": rng.choice(ids), "context": {"timestamp": at}}).encode()
        for _ in range(skip + n)
    ]
    return bodies[skip:]


def child(world: World, warm_up: int, n: int, at: str) -> None:
    """Answer ``warm_up`` then ``n`` requests in this process; print the answers' digest."""
    import anyio.to_thread
    from fastapi.testclient import TestClient

    from benchmarks.bench_api import _drive, in_process_settings
    from benchmarks.bench_api_stages import _InlineCommit
    from serving.app import create_app

    async def inline(func: Any, *args: Any, **_: Any) -> Any:
        return func(*args)

    answers: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="nba-bench-instructions-") as tmp:
        settings = in_process_settings(
            world, decision_log_fsync="never", decision_log_dir=Path(tmp) / "log"
        )
        app = create_app(settings)

        async def keeping(scope: Any, receive: Any, send: Any) -> None:
            async def kept(message: Any) -> None:
                if message["type"] == "http.response.body":
                    answers.append(message.get("body", b""))
                await send(message)

            await app(scope, receive, kept)

        with TestClient(app):
            runtime = app.state.runtime
            if runtime.decider is not None:  # every request decided in this thread
                runtime.decider.close()
                runtime.decider = None
            runtime.commit.close()
            runtime.commit = _InlineCommit(runtime.sink)
            anyio.to_thread.run_sync = inline  # type: ignore[assignment]
            bodies = _requests(world, warm_up + n, at)
            random.seed(SEED)  # the unkeyed requests' seeds (random.getrandbits)
            asyncio.run(_drive(keeping, "/v1/decisions", bodies, world.api_key))
    digest = hashlib.sha256(b"\n".join(answers[warm_up:])).hexdigest()[:16]
    print(json.dumps({"answers": len(answers) - warm_up, "digest": digest}))


def snapshot(world: World) -> list[tuple[bytes, int, bytes]]:
    """Every key of the world's prefix as ``(key, ttl ms, DUMP)``."""
    import redis

    client = redis.Redis.from_url(world.redis_url)
    out = []
    for key in client.scan_iter(match=f"{world.prefix}*", count=1_000):
        dumped = client.dump(key)
        if dumped is not None:
            out.append((key, max(0, int(client.pttl(key))), dumped))
    client.close()
    return out


@contextmanager
def restored(keys: list[tuple[bytes, int, bytes]], folder: Path, db: int) -> Iterator[str]:
    """A fresh Redis server holding ``keys`` in database ``db``; its URL."""
    import redis

    with redis_server(folder) as url:
        client = redis.Redis.from_url(f"{url}/{db}")
        pipe = client.pipeline(transaction=False)
        for key, ttl, dumped in keys:
            pipe.restore(key, ttl, dumped, replace=True)
        pipe.execute()
        client.close()
        yield f"{url}/{db}"


def instructions(tree: Path, world: World, keys: Any, args: argparse.Namespace, n: int) -> dict:
    """Callgrind's instruction count, in its main thread, of a child answering
    ``--warm-up`` + ``n`` requests."""
    db = int(world.redis_url.rsplit("/", 1)[-1]) if re.search(r"/\d+$", world.redis_url) else 0
    with tempfile.TemporaryDirectory(prefix="nba-bench-instructions-") as tmp:
        folder = Path(tmp)
        with restored(keys, folder / "redis", db) as url:
            empty = f"sqlite:///{folder / 'mlflow.db'}"  # no champion: rules and popularity
            ran = dataclasses.replace(world, redis_url=url, tracking_uri=empty)
            (folder / "world.json").write_text(json.dumps(dataclasses.asdict(ran)))
            command = [
                *(
                    [
                        "valgrind",
                        "--tool=callgrind",
                        "--separate-threads=yes",
                        f"--callgrind-out-file={folder / 'callgrind.out'}",
                    ]
                    * args.valgrind
                ),
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                str(folder / "world.json"),
                str(args.warm_up),
                str(n),
                args.at,
            ]
            started = time.monotonic()
            done = subprocess.run(
                command,
                cwd=tree,
                env={**os.environ, "PYTHONPATH": str(tree)},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"the run in {tree} failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            # the main thread's count: the requests run there; the other threads (the
            # lifespan's portal, the client's) count with the run's wall time, which the
            # machine's load sets
            main = folder / "callgrind.out-01"
            text = main.read_text() if main.exists() else ""
            found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            result["instructions"] = int(found.group(1)) if found else None
            result["seconds"] = round(time.monotonic() - started, 1)
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        world = World(**json.loads(Path(sys.argv[2]).read_text()))
        child(world, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, required=True, help="bench_decision_cpu world")
    parser.add_argument("--baseline-src", type=Path, help="source tree of the baseline")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--warm-up", type=int, default=200)
    parser.add_argument("--at", default="2026-12-07T06:00:00Z", help="the requests' moment")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one core each)")
    parser.add_argument(
        "--no-valgrind", dest="valgrind", action="store_false", help="check the runs only"
    )
    args = parser.parse_args()
    if args.valgrind and shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: apt-get install valgrind")
    world = World.saved(args.world)
    keys = snapshot(world)
    trees = {
        "this": HERE,
        **({"baseline": args.baseline_src.resolve()} if args.baseline_src else {}),
    }
    before = loadavg()
    per_request: dict[str, float] = {}
    digests = {}
    plan = [(name, n) for name in trees for n in (0, args.requests)]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # each run in its own process
        done = dict(
            zip(
                plan,
                pool.map(lambda run: instructions(trees[run[0]], world, keys, args, run[1]), plan),
                strict=True,
            )
        )
    for name in trees:
        runs = [done[(name, 0)], done[(name, args.requests)]]
        print(f"{name}: {runs}", flush=True)
        digests[name] = runs[1]["digest"]
        if runs[0]["instructions"] is not None:
            spent = runs[1]["instructions"] - runs[0]["instructions"]
            per_request[name] = spent / args.requests
    print(json.dumps({"machine": machine(), "loadavg": [before, loadavg()], "keys": len(keys)}))
    print(f"| tree | instructions per request | answers ({args.requests}) |")
    print("|---|---:|---|")
    for name in trees:
        count = per_request.get(name)
        shown = "" if count is None else f"{count:,.0f}"
        print(f"| {name} | {shown} | {digests[name]} |")
    if "baseline" in per_request and "this" in per_request:
        print(f"this / baseline: {per_request['this'] / per_request['baseline']:.3f}x")
    if len(set(digests.values())) > 1:
        raise SystemExit("the trees answered differently")


if __name__ == "__main__":
    main()
