"""HTTP API load benchmark: ``/v1/decisions`` and ``/v1/events`` against a bare endpoint.

Setup (once): a simulated retailer (``--customers`` profiles materialised into
a Redis of its own, ``--products`` products, the example catalog on all
channels), a hybrid recommender trained and promoted in a fresh MLflow store,
then two servers, each ``uvicorn --workers 1 --no-access-log``:

* the API: ``serving.app:create_app``, configured through ``NBA_*`` variables;
* the baseline: ``benchmarks.bare_app:create_app``, one Redis read of the
  same profile keys per request, same framework, same Redis client.

Each repetition runs a load generator in its own process (aiohttp; see
:func:`loadgen_main` for why not httpx) through these phases, decisions first,
baseline second:

* open loop at ``--rate`` requests/s for ``--duration`` s: request *i* is due at
  ``t0 + i / rate`` and its latency is measured from that due time, so
  queueing in the client or the server is counted (no coordinated omission);
  requests unanswered ``--grace-seconds`` after the last due time are abandoned
  and count with the time they waited;
* closed loop, ``--connections`` concurrent connections for ``--closed-seconds``:
  completed requests per second (the maximum throughput);
* events: ``POST /v1/events`` in batches of ``--batch`` contract events,
  ``--event-connections`` concurrent connections: accepted events per second.

With ``--pin`` (the default on 2+ cores) the servers run on CPU 0 and the load
generator on CPU 1 (Redis is not pinned), so the client does not eat the
server's core. Medians over ``--repeats`` repetitions are reported beside the
issue's goals, with the machine and its load average (the machine may be
shared). ``--profile`` also profiles decisions in-process (cProfile, and time
per stage of the request) and prints where the time goes.

    .venv/bin/python benchmarks/bench_api.py --repeats 3 --profile \\
        --out benchmarks/results/api.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import json
import math
import os
import platform
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: The issue's goals for one worker.
GOAL_P99_MS = 10.0
GOAL_THROUGHPUT_RATIO = 0.5
GOAL_EVENTS_PER_S = 5_000.0


def _log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ============================================================== the world


@dataclass
class World:
    """What the servers and the load generator need to know about the data."""

    redis_url: str
    prefix: str
    products_path: str
    tracking_uri: str
    data_dir: str
    api_key: str
    api_keys_json: str
    as_of: str
    customer_ids: list[str]
    product_ids: list[str]
    prices: list[float]
    n_customers: int
    n_products: int
    n_events: int
    n_actions: int
    n_offers: int
    channels: list[str]
    model_version: str
    setup_seconds: dict[str, float]

    @classmethod
    def saved(cls, path: Path) -> World:
        """The world saved in ``path`` (``bench_decision_cpu.py --save-world``), once its
        Redis is seen to hold it: a world's keys live only in its server, and a world whose
        server has gone would be measured as thousands of unknown customers (cheap answers
        that look like a fast API). Exits naming the problem otherwise."""
        world = cls(**json.loads(path.read_text()))
        from features.online.connect import connect_redis
        from features.online.redis_store import RedisOnlineStore

        try:
            store = RedisOnlineStore(connect_redis(world.redis_url), prefix=world.prefix)
            known = sum(store.client.exists(store.state_key(c)) for c in world.customer_ids[:20])
        except Exception as error:  # the driver raises many kinds: say which world and why
            why = f"{path}: its Redis ({world.redis_url}) cannot be read: {error}"
            raise SystemExit(why) from None
        if known == 0:
            raise SystemExit(
                f"{path}: its Redis ({world.redis_url}) holds none of the world's customers "
                f"under prefix {world.prefix!r} (a new server?): build the world again"
            )
        return world


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Debian's ``redis-server`` on a free port, AOF fsynced every second (as deployed)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found: apt-get install redis-server, or --redis-url")
    port = _free_port()
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        client = redis.Redis.from_url(url)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.05)
        else:
            raise SystemExit(f"redis-server on port {port} did not answer")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def build(args: argparse.Namespace, redis_url: str, folder: Path) -> World:
    """Simulate, materialise profiles, train and promote the recommender."""
    import pandas as pd

    from cli.decide import load_catalog
    from features.batch import build_profiles
    from features.dataset import RetailDataset
    from features.online.connect import connect_redis
    from features.online.profiles import OnlineProfiles
    from features.online.redis_store import RedisOnlineStore
    from serving.auth import new_api_key
    from serving.settings import EXAMPLES
    from simulator import SimulatorConfig, simulate
    from training.api import RECOMMENDER_NAME, train_recommender
    from training.recommender import HybridConfig
    from training.registry import ModelRegistry

    timings: dict[str, float] = {}
    started = time.perf_counter()
    sim = simulate(
        SimulatorConfig(
            n_customers=args.customers, days=args.days, seed=args.seed, n_products=args.products
        )
    )
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    timings["simulate_s"] = time.perf_counter() - started
    _log(f"simulated {len(data.customers):,} customers, {len(data.events):,} events")

    last = pd.Timestamp(data.events["timestamp"].max()).to_pydatetime()
    as_of = (last + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    profiles = build_profiles(data, as_of=as_of)
    client = connect_redis(redis_url)
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    OnlineProfiles(RedisOnlineStore(client, prefix=prefix), data.products).materialise(profiles)
    timings["profiles_s"] = time.perf_counter() - started
    _log(f"materialised {len(profiles.states):,} profiles under {prefix}:")

    products_path = folder / "products.parquet"
    data.products.to_parquet(products_path)
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    registry = ModelRegistry(tracking_uri)
    started = time.perf_counter()
    config = HybridConfig(epochs=args.epochs, no_components=args.components, num_threads=2)
    run = train_recommender(data, registry=registry, config=config, evaluate_first=False)
    assert run.version is not None
    registry.promote(RECOMMENDER_NAME, run.version.version)
    timings["train_s"] = time.perf_counter() - started
    _log(f"trained and promoted {RECOMMENDER_NAME} v{run.version.version}")

    key, spec = new_api_key("bench", ["decide", "ingest", "admin"])  # admin: /readyz details
    catalog = load_catalog(EXAMPLES / "retailer_catalog.yaml")
    offers = {a.offer.id for a in catalog.actions if a.offer is not None}
    channels = sorted({c.value for a in catalog.actions for c in a.channels})
    client.close()
    return World(
        redis_url=redis_url,
        prefix=prefix,
        products_path=str(products_path),
        tracking_uri=tracking_uri,
        data_dir=str(folder),
        api_key=key,
        api_keys_json=json.dumps([spec.model_dump()]),
        as_of=as_of.isoformat(),
        customer_ids=[str(c) for c in data.customers["customer_id"]],
        product_ids=[str(p) for p in data.products["product_id"]],
        prices=[float(p) for p in data.products["price"]],
        n_customers=len(data.customers),
        n_products=len(data.products),
        n_events=len(data.events),
        n_actions=len(catalog.ids),
        n_offers=len(offers),
        channels=channels,
        model_version=f"{RECOMMENDER_NAME}:{run.version.version}",
        setup_seconds=timings,
    )


# ============================================================== servers


def _pinned(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


@contextlib.contextmanager
def server(
    target: str,
    env: dict[str, str],
    cpu: int | None,
    health: str,
    workers: int = 1,
    root: Path = ROOT,
) -> Iterator[tuple[str, int]]:
    """``uvicorn TARGET --factory --workers N --no-access-log`` on a free port, imported
    from the source tree ``root`` (this one by default)."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--factory",
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=root,
        env={**os.environ, **env, "PYTHONPATH": str(root)},
        preexec_fn=_pinned(cpu),  # sets the CPU affinity only
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{target} exited with status {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + health, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{target} did not become ready within 180 s")
            time.sleep(0.25)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ============================================================== load generator


def decision_bodies(spec: dict[str, Any], n: int, seed: int) -> list[bytes]:
    """Decision requests: customers drawn uniformly, the day after the data, varied channels
    (half ask for any channel, the others name one of the catalog's channels)."""
    rng = random.Random(seed)
    base = dt.datetime.fromisoformat(spec["as_of"]) + dt.timedelta(days=1, hours=8)
    channels = [None] * len(spec["channels"]) + list(spec["channels"])
    out = []
    for _ in range(n):
        context: dict[str, Any] = {
            "timestamp": (base + dt.timedelta(seconds=rng.randrange(12 * 3600))).isoformat()
        }
        channel = rng.choice(channels)
        if channel is not None:
            context["channel"] = channel
        out.append(
            json.dumps(
                {"customer_id": rng.choice(spec["customer_ids"]), "context": context}
            ).encode()
        )
    return out


def bare_bodies(spec: dict[str, Any], n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [
        json.dumps({"customer_id": rng.choice(spec["customer_ids"])}).encode() for _ in range(n)
    ]


def event_bodies(spec: dict[str, Any], batches: int, size: int, seed: int) -> list[bytes]:
    """Batches of contract events (70 % views, 20 % add-to-cart, 10 % purchases), each with a
    unique id, after the profiles' watermark."""
    rng = random.Random(seed)
    base = dt.datetime.fromisoformat(spec["as_of"]) + dt.timedelta(hours=1)
    run = uuid.uuid4().hex[:8]
    out = []
    for b in range(batches):
        events = []
        for i in range(size):
            p = rng.randrange(len(spec["product_ids"]))
            kind = rng.choices(["product_view", "add_to_cart", "purchase"], [7, 2, 1])[0]
            event: dict[str, Any] = {
                "event_id": f"bench-{run}-{b}-{i}",
                "customer_id": rng.choice(spec["customer_ids"]),
                "timestamp": (base + dt.timedelta(milliseconds=b * size + i)).isoformat(),
                "channel": rng.choice(["web", "app"]),
                "event_type": kind,
                "product_id": spec["product_ids"][p],
            }
            if kind == "purchase":
                event.update(quantity=1, revenue=spec["prices"][p])
            events.append(event)
        out.append(json.dumps({"events": events}).encode())
    return out


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)] * 1000

    return {"p50_ms": q(0.50), "p90_ms": q(0.90), "p99_ms": q(0.99), "max_ms": ordered[-1] * 1000}


async def _post(session: Any, url: str, body: bytes) -> tuple[int, bytes]:
    """POST ``body``; the status (-1 for a failed connection or a timeout) and the answer."""
    import aiohttp

    try:
        async with session.post(url, data=body) as response:
            return response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return -1, b""


async def open_loop(
    session: Any,
    url: str,
    bodies: list[bytes],
    rate: float,
    duration: float,
    concurrency: int,
    grace: float,
    timeline: list[tuple[float, float, int]] | None = None,
    lags: list[float] | None = None,
) -> dict[str, Any]:
    """Requests due at a fixed rate; latency from each one's due time.

    Requests still unanswered ``grace`` seconds after the last one was due are
    abandoned: their latency counts as the time they had waited (a lower bound),
    so an overloaded server shows up in the percentiles instead of stretching the
    run without end. ``timeline``, when given, receives each request's due time, end
    (``time.monotonic``, comparable with a server's on this machine) and status; ``lags``
    how late (seconds) the generator started each request.
    """
    loop = asyncio.get_running_loop()
    n = int(rate * duration)
    latencies = [math.nan] * n
    statuses = [0] * n
    lag = [0.0] * n
    gate = asyncio.Semaphore(concurrency)
    start = loop.time() + 0.2

    async def one(i: int, due: float) -> None:
        async with gate:
            statuses[i], _ = await _post(session, url, bodies[i % len(bodies)])
        latencies[i] = loop.time() - due

    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lag[i] = loop.time() - due
        tasks.append(asyncio.create_task(one(i, due)))
    sending = loop.time() - start
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, start + duration + grace - loop.time()))
    cut = loop.time()
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    unfinished = 0
    for i in range(n):
        if statuses[i] == 0:
            unfinished += 1
            latencies[i] = cut - (start + i / rate)
    ok = sum(1 for s in statuses if s == 200)
    if lags is not None:
        lags += lag
    if timeline is not None:
        timeline += [
            (start + i / rate, start + i / rate + latencies[i], statuses[i]) for i in range(n)
        ]
    return {
        "rate": rate,
        "requests": n,
        "ok": ok,
        "errors": n - ok - unfinished,
        "unfinished": unfinished,
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "sent_per_s": n / sending,
        # how late the generator itself started requests: large values mean the client
        # (not the server) could not keep the schedule
        "generator_lag_p99_ms": _quantiles(lag)["p99_ms"],
        # percentiles over every request, answered or not
        **_quantiles(latencies),
    }


async def closed_loop(
    session: Any,
    url: str,
    bodies: list[bytes],
    connections: int,
    duration: float,
    count: Callable[[bytes], int] = lambda answer: 1,
) -> dict[str, Any]:
    """``connections`` workers each send the next request when the last one is answered."""
    loop = asyncio.get_running_loop()
    done = errors = units = 0
    end = loop.time() + duration
    latencies: list[float] = []

    async def worker(w: int) -> None:
        nonlocal done, errors, units
        i = w
        while loop.time() < end:
            sent = loop.time()
            status, answer = await _post(session, url, bodies[i % len(bodies)])
            i += connections
            if status == 200:
                done += 1
                units += count(answer)
                latencies.append(loop.time() - sent)
            else:
                errors += 1

    started = loop.time()
    await asyncio.gather(*(worker(w) for w in range(connections)))
    elapsed = loop.time() - started
    return {
        "connections": connections,
        "seconds": elapsed,
        "ok": done,
        "errors": errors,
        "per_s": done / elapsed,
        "units_per_s": units / elapsed,
        **(_quantiles(latencies) if latencies else {}),
    }


async def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Every phase against both servers, in one event loop (aiohttp: see ``loadgen_main``)."""
    import aiohttp

    headers = {"Authorization": f"Bearer {spec['api_key']}", "Content-Type": "application/json"}
    seed = spec["seed"]
    decisions = decision_bodies(spec, 20_000, seed)
    bare = bare_bodies(spec, 20_000, seed)
    batches = int(spec["closed_seconds"] * 200) + 50  # more than can be sent
    events = event_bodies(spec, batches, spec["batch"], seed)
    out: dict[str, Any] = {}

    def session(base: str) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=base,
            headers=headers,
            # drop idle connections before uvicorn does (its keep-alive is 5 s), so that a
            # phase never starts on a connection the server is closing
            connector=aiohttp.TCPConnector(limit=spec["max_connections"], keepalive_timeout=3),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async with session(spec["api"]) as api, session(spec["bare"]) as baseline:
        for name, client, path, bodies in (
            ("decisions", api, "/v1/decisions", decisions),
            ("bare", baseline, "/bare", bare),
        ):
            await closed_loop(client, path, bodies[-500:], 8, spec["warmup_seconds"])  # warm-up
            out[f"{name}_open"] = await open_loop(
                client,
                path,
                bodies,
                spec["rate"],
                spec["duration"],
                spec["max_connections"],
                spec["grace_seconds"],
            )
            if spec["low_rate"]:
                out[f"{name}_low"] = await open_loop(
                    client,
                    path,
                    bodies[::-1],
                    spec["low_rate"],
                    spec["duration"],
                    spec["max_connections"],
                    spec["grace_seconds"],
                )
            out[f"{name}_closed"] = await closed_loop(
                client, path, bodies, spec["connections"], spec["closed_seconds"]
            )
        out["events"] = await closed_loop(
            api,
            "/v1/events",
            events,
            spec["event_connections"],
            spec["closed_seconds"],
            count=lambda answer: int(json.loads(answer)["accepted"]),
        )
        out["events"]["batch"] = spec["batch"]
        out["events"]["events_per_s"] = out["events"].pop("units_per_s")
    return out


def loadgen_main(spec_path: Path) -> None:
    """Entry point of the load generator process: spec JSON in, results JSON on stdout.

    The client is aiohttp (installed with MLflow): measured on this machine against
    the bare endpoint, ``httpx.AsyncClient`` spent 3-8 ms of CPU per request (more
    with more connections) against 0.3-0.5 ms for aiohttp, so an httpx generator
    saturated its own core long before the server's.
    """
    spec = json.loads(spec_path.read_text())
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    print(json.dumps(asyncio.run(run_load(spec))))


# ============================================================== in-process profile


def in_process_settings(world: World, redis_url: str | None = None, **overrides: Any) -> Any:
    """The API's settings for ``world`` served in this process (no model polling), with
    the bare endpoint pointed at the same Redis and prefix; ``overrides`` are more fields."""
    from serving.settings import Settings

    url = redis_url or world.redis_url
    os.environ.update(BARE_REDIS_URL=url, BARE_PREFIX=world.prefix)
    return Settings(
        redis_url=url,
        redis_prefix=world.prefix,
        products_path=Path(world.products_path),
        data_dir=Path(world.data_dir),
        mlflow_tracking_uri=world.tracking_uri,
        api_keys=json.loads(world.api_keys_json),
        model_poll_seconds=0,
        **overrides,
    )


def profile_decisions(world: World, requests: int, env: dict[str, str]) -> dict[str, Any]:
    """Where one decision's time goes, in-process, on the benchmark's data and Redis.

    cProfile sees only the thread it runs in, and FastAPI runs a sync endpoint in a
    worker thread; so here the ASGI app is called directly from this thread's event
    loop with the thread-pool hop made inline, and the whole request (middleware,
    authentication, validation, decision, serialisation) is profiled. Stages are
    timed by wrapping the decision service's methods on this instance only (the code
    is not changed). The bare endpoint goes through the same harness for comparison.
    """
    import anyio.to_thread
    from fastapi.testclient import TestClient

    from serving.app import create_app

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.bare_app import create_app as bare_app

    os.environ.update(env)  # the API server's extra settings (--api-env) apply here too
    settings = in_process_settings(world)
    spec = asdict(world)
    decisions = decision_bodies(spec, 2 * requests + 200, seed=99)
    bare = bare_bodies(spec, requests, seed=99)
    stages: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return timed_calls(stages, name, fn)

    async def inline(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
        return func(*args)

    app, baseline = create_app(settings), bare_app()
    profiler = cProfile.Profile()
    run_sync = anyio.to_thread.run_sync
    with TestClient(app), TestClient(baseline):  # their lifespans (start-up)
        anyio.to_thread.run_sync = inline  # type: ignore[assignment]
        try:
            asyncio.run(_drive(app, "/v1/decisions", decisions[:200], world.api_key))  # warm-up
            service = app.state.runtime.decisions
            contacts = service.contacts
            contacts.read_for_decision = timed("redis read", contacts.read_for_decision)
            service.contacts.record = timed("redis write", service.contacts.record)
            service.profiles.from_stored = timed("profile build", service.profiles.from_stored)
            service._response = timed("response objects (incl. products)", service._response)
            service._products = timed("products (recommender or profile)", service._products)
            service.answer = timed("DecisionService.answer", service.answer)
            policy_of = service.policy

            def policy(models: Any, max_actions: int) -> Any:
                # the pipeline is frozen: the service gets a stand-in whose route is timed
                engine = policy_of(models, max_actions)
                return SimpleNamespace(route=timed("policy route (nba core)", engine.route))

            service.policy = policy
            whole = asyncio.run(
                _drive(app, "/v1/decisions", decisions[200 : 200 + requests], world.api_key)
            )
            unprofiled = {k: list(v) for k, v in stages.items()}
            asyncio.run(_drive(baseline, "/bare", bare[: requests // 4], world.api_key))
            baseline_times = asyncio.run(_drive(baseline, "/bare", bare, world.api_key))
            profiler.enable()
            asyncio.run(_drive(app, "/v1/decisions", decisions[200 + requests :], world.api_key))
            profiler.disable()
        finally:
            anyio.to_thread.run_sync = run_sync
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(50)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = [
        {
            "function": f"{_short(file)}:{line}({name})",
            "calls_per_request": ncalls / requests,
            "cumulative_ms_per_request": cumtime / requests * 1000,
            "own_ms_per_request": tottime / requests * 1000,
        }
        for (file, line, name), (_, ncalls, tottime, cumtime, _) in raw.items()
    ]
    below = [r for r in rows if not any(p in r["function"] for p in PLUMBING)]
    request_ms = statistics.median(whole) * 1000
    decide_ms = statistics.median(unprofiled["DecisionService.answer"]) * 1000
    return {
        "requests": requests,
        "request_ms_median": request_ms,
        "bare_request_ms_median": statistics.median(baseline_times) * 1000,
        "framework_ms_median": request_ms - decide_ms,
        "stages_ms_median": {k: statistics.median(v) * 1000 for k, v in unprofiled.items()},
        "stages_ms_mean": {k: statistics.fmean(v) * 1000 for k, v in unprofiled.items()},
        "top_cumulative": sorted(
            below, key=lambda row: row["cumulative_ms_per_request"], reverse=True
        )[:60],
        "top_own": sorted(rows, key=lambda row: row["own_ms_per_request"], reverse=True)[:40],
        "pstats": text.getvalue(),
    }


#: Dispatch layers left out of the profile's table (each one's cumulative time is the
#: whole request): the event loop, anyio, Starlette's and FastAPI's wrappers, this script.
PLUMBING = (
    "asyncio/",
    "_contextvars",
    "anyio/",
    "starlette/",
    "fastapi/middleware/",
    "fastapi/applications.py",
    "fastapi/telemetry/",
    "fastapi/_body_limit.py",
    "fastapi/routing.py",
    "benchmarks/bench_api.py",
    "serving/app.py",
)


def timed_calls(
    stages: dict[str, list[float]],
    name: str,
    fn: Callable[..., Any],
    clock: Callable[[], float] = time.perf_counter,
) -> Callable[..., Any]:
    """``fn``, each call's duration (of ``clock``) appended to ``stages[name]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            stages.setdefault(name, []).append(clock() - started)

    return wrapper


async def _drive(
    app: Any,
    path: str,
    bodies: list[bytes],
    key: str,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """POST each body through the ASGI app in this event loop; seconds per request (of
    ``clock``: wall time by default, ``time.thread_time`` for this thread's CPU)."""
    times = []
    for body in bodies:
        started = clock()
        status = await _asgi_post(app, path, body, key)
        times.append(clock() - started)
        if status != 200:
            raise SystemExit(f"{path} answered {status} in the profile run")
    return times


async def _asgi_post(app: Any, path: str, body: bytes, key: str) -> int:
    """One POST through the ASGI interface, as a server would send it; the status."""
    done = asyncio.Event()
    status = 0
    first = True
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    return status


def _short(file: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# ============================================================== report


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(Exception):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    import importlib.util

    have = {m: importlib.util.find_spec(m) is not None for m in ("httptools", "uvloop")}
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "uvicorn_http": "httptools" if have["httptools"] else "h11 (httptools not installed)",
        "uvicorn_loop": "uvloop" if have["uvloop"] else "asyncio (uvloop not installed)",
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(phase: str, key: str) -> float:
        return statistics.median(float(r[phase][key]) for r in runs)

    out: dict[str, Any] = {}
    for name in ("decisions", "bare"):
        out[f"{name}_open"] = {
            k: med(f"{name}_open", k)
            for k in (
                "p50_ms",
                "p90_ms",
                "p99_ms",
                "max_ms",
                "sent_per_s",
                "generator_lag_p99_ms",
                "errors",
                "unfinished",
            )
        }
        if f"{name}_low" in runs[0]:
            out[f"{name}_low"] = {
                k: med(f"{name}_low", k)
                for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "unfinished")
            }
        out[f"{name}_closed"] = {k: med(f"{name}_closed", k) for k in ("per_s", "p50_ms", "p99_ms")}
    out["events"] = {k: med("events", k) for k in ("events_per_s", "per_s", "errors")}
    ratio = out["decisions_closed"]["per_s"] / out["bare_closed"]["per_s"]
    out["throughput_ratio"] = ratio
    out["goals"] = {
        f"p99 <= {GOAL_P99_MS:g} ms at the open-loop rate, no request failed": (
            out["decisions_open"]["p99_ms"] <= GOAL_P99_MS
            and out["decisions_open"]["errors"] + out["decisions_open"]["unfinished"] == 0
        ),
        f"max throughput >= {GOAL_THROUGHPUT_RATIO:.0%} of the bare endpoint": ratio
        >= GOAL_THROUGHPUT_RATIO,
        f"events >= {GOAL_EVENTS_PER_S:,.0f}/s in batches": out["events"]["events_per_s"]
        >= GOAL_EVENTS_PER_S,
    }
    return out


def markdown(result: dict[str, Any]) -> str:
    s, a = result["summary"], result["args"]
    rate = a["rate"]
    lines = [
        f"Medians of {a['repeats']} repetitions; one uvicorn worker per server; "
        f"{result['machine']['nproc']} cores ({result['machine']['cpu']}), shared; "
        f"load average before/after: {result['load_before']} / {result['load_after']}; "
        f"uvicorn HTTP {result['machine']['uvicorn_http']}, loop "
        f"{result['machine']['uvicorn_loop']}.",
        "",
        f"| at {rate:g} req/s (open loop, {a['duration']:g} s) | p50 ms | p90 ms | p99 ms "
        "| max ms | errors | unfinished | sent/s | client lag p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label in (("decisions", "`POST /v1/decisions`"), ("bare", "bare one-read endpoint")):
        o = s[f"{name}_open"]
        lines.append(
            f"| {label} | {o['p50_ms']:.1f} | {o['p90_ms']:.1f} | {o['p99_ms']:.1f} "
            f"| {o['max_ms']:.1f} | {o['errors']:.0f} | {o['unfinished']:.0f} "
            f"| {o['sent_per_s']:.0f} "
            f"| {o['generator_lag_p99_ms']:.1f} |"
        )
    if "decisions_low" in s:
        lines += [
            "",
            f"| at {a['low_rate']:g} req/s (open loop) | p50 ms | p90 ms | p99 ms | max ms "
            "| errors | unfinished |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, label in (
            ("decisions", "`POST /v1/decisions`"),
            ("bare", "bare one-read endpoint"),
        ):
            o = s[f"{name}_low"]
            lines.append(
                f"| {label} | {o['p50_ms']:.1f} | {o['p90_ms']:.1f} | {o['p99_ms']:.1f} "
                f"| {o['max_ms']:.1f} | {o['errors']:.0f} | {o['unfinished']:.0f} |"
            )
    lines += [
        "",
        "Latency counts from each request's due time. 'unfinished': abandoned "
        f"{a['grace_seconds']:g} s after the last due time (counted with the time they "
        "waited, a lower bound). 'client lag' is how late the load generator itself started "
        "requests: when it is large, the client could not keep the schedule (a busy "
        "machine) and latencies include that.",
    ]
    lines += [
        "",
        f"| max throughput ({a['connections']} connections, closed loop) | req/s |",
        "|---|---|",
        f"| `POST /v1/decisions` | {s['decisions_closed']['per_s']:,.0f} |",
        f"| bare one-read endpoint | {s['bare_closed']['per_s']:,.0f} |",
        f"| ratio | {s['throughput_ratio']:.0%} |",
        "",
        f"`POST /v1/events`, batches of {a['batch']}, {a['event_connections']} connections: "
        f"{s['events']['events_per_s']:,.0f} events/s.",
        "",
        "| goal | met |",
        "|---|---|",
        *(f"| {goal} | {'met' if ok else 'NOT met'} |" for goal, ok in s["goals"].items()),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="recommender epochs (setup time)")
    parser.add_argument("--components", type=int, default=16, help="recommender factors")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests/s")
    parser.add_argument("--duration", type=float, default=20.0, help="open-loop seconds")
    parser.add_argument(
        "--low-rate",
        type=float,
        default=50.0,
        help="a second open-loop rate, one worker can sustain (0: skip)",
    )
    parser.add_argument(
        "--api-env",
        action="append",
        default=[],
        metavar="NBA_X=VALUE",
        help="extra setting for the API server (repeatable), e.g. NBA_DECISION_LOG_FSYNC=never",
    )
    parser.add_argument("--closed-seconds", type=float, default=10.0)
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=5.0,
        help="open loop: wait this long after the last due time, then abandon what is left",
    )
    parser.add_argument("--connections", type=int, default=32, help="closed-loop connections")
    parser.add_argument("--max-connections", type=int, default=256, help="open-loop bound")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--event-connections", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=(os.cpu_count() or 1) >= 2,
        help="servers on CPU 0, load generator on CPU 1",
    )
    parser.add_argument("--redis-url", default=os.environ.get("NBA_REDIS_URL"))
    parser.add_argument("--profile", action="store_true", help="also profile in-process")
    parser.add_argument("--profile-requests", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "api.json")
    parser.add_argument("--loadgen", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args.loadgen)
        return

    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with tempfile.TemporaryDirectory(prefix="nba-bench-api-") as tmp:
        folder = Path(tmp)
        with contextlib.ExitStack() as stack:
            url = args.redis_url or stack.enter_context(redis_server(folder / "redis"))
            world = build(args, url, folder)
            result["world"] = {
                k: v
                for k, v in asdict(world).items()
                if k not in ("customer_ids", "product_ids", "prices", "api_key", "api_keys_json")
            }
            server_cpu = 0 if args.pin else None
            api_env = {
                "NBA_REDIS_URL": world.redis_url,
                "NBA_REDIS_PREFIX": world.prefix,
                "NBA_DATA_DIR": world.data_dir,
                "NBA_PRODUCTS_PATH": world.products_path,
                "NBA_MLFLOW_TRACKING_URI": world.tracking_uri,
                "NBA_API_KEYS": world.api_keys_json,
                **dict(item.split("=", 1) for item in args.api_env),
            }
            result["api_env"] = {k: v for k, v in api_env.items() if k != "NBA_API_KEYS"}
            api, _ = stack.enter_context(
                server("serving.app:create_app", api_env, server_cpu, "/readyz")
            )
            bare_env = {"BARE_REDIS_URL": world.redis_url, "BARE_PREFIX": world.prefix}
            bare, _ = stack.enter_context(
                server("benchmarks.bare_app:create_app", bare_env, server_cpu, "/healthz")
            )
            _check_model(api, world)
            spec = {
                **asdict(world),
                "api": api,
                "bare": bare,
                "cpu": 1 if args.pin else None,
                **{
                    k: getattr(args, k)
                    for k in (
                        "rate",
                        "duration",
                        "closed_seconds",
                        "warmup_seconds",
                        "grace_seconds",
                        "low_rate",
                        "connections",
                        "max_connections",
                        "batch",
                        "event_connections",
                    )
                },
            }
            runs = []
            result["load_before"] = loadavg()
            for r in range(args.repeats):
                spec["seed"] = 1000 + r
                spec_path = folder / f"load-{r}.json"
                spec_path.write_text(json.dumps(spec))
                _log(f"repetition {r + 1}/{args.repeats} (load average {loadavg()})")
                done = subprocess.run(
                    [sys.executable, __file__, "--loadgen", str(spec_path)],
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    raise SystemExit(f"load generator failed:\n{done.stderr}")
                run = json.loads(done.stdout.strip().splitlines()[-1])
                run["load_average"] = loadavg()
                runs.append(run)
                _log(
                    "decisions p99 {:.1f} ms, {:,.0f}/s max; bare p99 {:.1f} ms, {:,.0f}/s max; "
                    "events {:,.0f}/s".format(
                        run["decisions_open"]["p99_ms"],
                        run["decisions_closed"]["per_s"],
                        run["bare_open"]["p99_ms"],
                        run["bare_closed"]["per_s"],
                        run["events"]["events_per_s"],
                    )
                )
            result["load_after"] = loadavg()
            result["runs"] = runs
            result["summary"] = summarise(runs)
            result["markdown"] = markdown(result)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))  # kept if the profile fails
            if args.profile:
                _log("profiling decisions in-process")
                extra = dict(item.split("=", 1) for item in args.api_env)
                result["profile"] = profile_decisions(world, args.profile_requests, extra)
    result["markdown"] = markdown(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(result["markdown"])
    if args.profile:
        p = result["profile"]
        print(
            f"\nin-process, one thread: decision request {p['request_ms_median']:.2f} ms "
            f"(of which outside DecisionService.decide: {p['framework_ms_median']:.2f} ms), "
            f"bare request {p['bare_request_ms_median']:.2f} ms (medians)"
        )
        for stage, ms in p["stages_ms_median"].items():
            print(f"  {stage}: {ms:.2f} ms")
        print(
            "\n| function (dispatch layers left out) | calls/request | cumulative ms/request "
            "| own ms/request |\n|---|---|---|---|"
        )
        for row in p["top_cumulative"][:15]:
            print(
                f"| `{row['function']}` | {row['calls_per_request']:.1f} "
                f"| {row['cumulative_ms_per_request']:.2f} | {row['own_ms_per_request']:.2f} |"
            )
    print(f"\nresults: {args.out}")


def _check_model(api: str, world: World) -> None:
    """The served decisions use the promoted recommender, not the rules fallback."""
    import httpx

    auth = {"Authorization": f"Bearer {world.api_key}"}
    ready = httpx.get(api + "/readyz", headers=auth, timeout=10).json()
    versions = {m["name"]: m["version"] for m in ready["models"]}
    _log(f"API ready: redis {ready['redis']}, models {versions}, {ready['durability']}")
    body = decision_bodies(asdict(world), 1, seed=0)[0]
    answer = httpx.post(
        api + "/v1/decisions",
        content=body,
        headers={"Authorization": f"Bearer {world.api_key}", "Content-Type": "application/json"},
        timeout=30,
    ).json()
    if answer.get("model_version") != world.model_version:
        raise SystemExit(f"the API does not serve {world.model_version}: {answer}")


if __name__ == "__main__":
    main()
