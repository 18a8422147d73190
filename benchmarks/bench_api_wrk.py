"""``POST /v1/decisions`` under ``wrk`` and an open loop, against bare endpoints, same run.

Targets, each started in turn under the same uvicorn with ``--workers N``:

* the API (``serving.app:create_app``: decisions with the champion models, the
  decision log fsynced before each answer (the default), the event archive, as
  deployed);
* ``/bare`` (:mod:`benchmarks.bare_app`): one ``GET`` of the same customer state
  through FastAPI, the same request model, Redis client and JSON encoder (orjson);
* ``/bare-raw``: the floor, the same read with the body parsed by orjson;
* with ``--baseline-src DIR``, ``api-base``: the API imported from another source tree
  (e.g. ``git archive`` of the branch point), to compare two versions in one run.

Two loads per target and round:

* closed loop: wrk (Debian's ``wrk``, C) with ``--connections`` connections for
  ``--seconds``; requests/s, p50 and p99 from wrk's ``--latency``;
* open loop: ``--rate`` requests a second for ``--open-seconds`` from an aiohttp
  generator in this process (:func:`benchmarks.bench_api.open_loop`), latency
  counted from each request's due time (no coordinated omission), every request
  that is not a 200 counted as failed. wrk2 is not packaged here; the same
  generator against the bare endpoints shows what it adds by itself.

During the wrk run the server's user + system CPU is read from ``/proc`` (the process and
its workers): CPU per request and the share of a core the server got. On a shared machine
the rates follow the share the scheduler gives each server (a thread pool's server gets
more than a server whose work runs on its event loop), the CPU per request much less.

Each request names a random customer of ``--audience`` (500) drawn from the materialised
audience; ``--verdicts`` first runs the daily job that stores today's seasonal verdicts.
The targets alternate within each of ``--repeats`` rounds; the tables give medians.

    .venv/bin/python benchmarks/bench_api_wrk.py --customers 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_api import (
    ROOT,
    World,
    build,
    loadavg,
    machine,
    open_loop,
    redis_server,
    server,
)

TARGETS = ("api", "bare", "bare-raw")
PATHS = {
    "api": "/v1/decisions",
    "api-base": "/v1/decisions",
    "bare": "/bare",
    "bare-raw": "/bare-raw",
}

LUA = """
local ids = {%(ids)s}
local path = "%(path)s"
local auth = "%(auth)s"
math.randomseed(%(seed)d)
request = function()
  local body = '{"customer_id": "' .. ids[math.random(#ids)] .. '"}'
  local headers = {["Content-Type"] = "application/json"}
  if auth ~= "" then headers["Authorization"] = "Bearer " .. auth end
  return wrk.format("POST", path, headers, body)
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk latency: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its descendants (uvicorn's workers),
    from ``/proc``: what the server spent, whatever share of the machine it was given."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = task / "children"
                pending += [int(c) for c in children.read_text().split()]
    return total


def run_wrk(
    base: str, script: Path, args: argparse.Namespace, pid: int | None = None
) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 in ms, the non-2xx answers and, given the
    server's ``pid``, its CPU per request (µs) and the share of a core it got (%)."""
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency"]
    cpu_before, started = (server_cpu_seconds(pid), time.monotonic()) if pid else (0.0, 0.0)
    out = subprocess.run(
        [*command, "-s", str(script), base], capture_output=True, text=True, check=True
    ).stdout
    cpu = server_cpu_seconds(pid) - cpu_before if pid else 0.0
    elapsed = time.monotonic() - started
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rate,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "cpu_us": cpu / max(requests, 1) * 1e6,
        "cpu_share": 100 * cpu / elapsed if pid else 0.0,
    }


async def run_open_loop(
    base: str,
    path: str,
    ids: list[str],
    key: str,
    args: argparse.Namespace,
    timeline: list[tuple[float, float, int]] | None = None,
    lags: list[float] | None = None,
) -> dict[str, Any]:
    """``args.rate`` requests a second for ``args.open_seconds``; latency from due time
    (each request's due time, end and status into ``timeline`` when given, how late the
    generator started each into ``lags``)."""
    import aiohttp

    rng = random.Random(args.seed)
    n = int(args.rate * args.open_seconds)
    bodies = [json.dumps({"customer_id": rng.choice(ids)}).encode() for _ in range(n)]
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    async with aiohttp.ClientSession(
        base_url=base,
        headers=headers,
        connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=3),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:
        return await open_loop(
            session, path, bodies, args.rate, args.open_seconds, 256, 5.0, timeline, lags
        )


def write_verdicts(world: World) -> dict[str, float]:
    """The daily job (``nba features verdicts``): today's seasonal verdict of every
    customer of ``world`` stored in its Redis; how many and the seconds it took."""
    import datetime as dt

    from features.online.connect import connect_redis
    from features.online.profiles import write_season_verdicts
    from features.online.redis_store import RedisOnlineStore

    store = RedisOnlineStore(connect_redis(world.redis_url), prefix=world.prefix)
    started = time.perf_counter()
    n = write_season_verdicts(store, store.read_priors(), dt.datetime.now(dt.UTC))
    return {"verdicts": n, "seconds": time.perf_counter() - started}


def serving_env(world: World) -> dict[str, str]:
    """The API's settings for ``world`` as a server's environment (no model polling)."""
    return {
        "NBA_REDIS_URL": world.redis_url,
        "NBA_REDIS_PREFIX": world.prefix,
        "NBA_PRODUCTS_PATH": world.products_path,
        "NBA_MLFLOW_TRACKING_URI": world.tracking_uri,
        "NBA_DATA_DIR": world.data_dir,
        "NBA_API_KEYS": world.api_keys_json,
        "NBA_MODEL_POLL_SECONDS": "0",
    }


def world_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options of the simulated world the API benchmarks build (:func:`build`)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--components", type=int, default=16)
    return parser


def main() -> None:
    parser = world_parser(__doc__)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests/s")
    parser.add_argument("--open-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument(
        "--baseline-src", type=Path, default=None, help="also serve the API from this tree"
    )
    parser.add_argument(
        "--world",
        type=Path,
        default=None,
        help="reuse a world saved by bench_decision_cpu.py --save-world (its Redis must run)",
    )
    parser.add_argument(
        "--targets", nargs="+", choices=[*TARGETS, "api-base"], default=None, help="a subset"
    )
    parser.add_argument(
        "--audience",
        type=int,
        default=500,
        help="customers the requests name (drawn from the world; all of them: most requests "
        "are then a customer's first of the day, as with a real audience)",
    )
    parser.add_argument(
        "--verdicts",
        action="store_true",
        help="first run the daily job that stores today's seasonal verdicts (an API that "
        "reads them skips the seasonal test; an older API ignores them)",
    )
    parser.add_argument(
        "--api-variant",
        nargs="*",
        default=[],
        metavar="NAME:VAR=VALUE,...",
        help="also serve this tree's API as target api-NAME with these settings "
        "(e.g. threads:NBA_DECIDE_IN=threads)",
    )
    args = parser.parse_args()
    targets = TARGETS if args.baseline_src is None else ("api", "api-base", *TARGETS[1:])
    if args.targets:
        targets = tuple(t for t in targets if t in args.targets)
    variants = {}
    for text in args.api_variant:
        name, _, assignments = text.partition(":")
        variants[f"api-{name}"] = dict(a.split("=", 1) for a in assignments.split(",") if a)
    targets = (*targets[:1], *variants, *targets[1:])
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")

    results: dict[str, Any] = {"machine": machine(), "loadavg_before": loadavg(), "runs": []}
    with (
        tempfile.TemporaryDirectory(prefix="nba-bench-wrk-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        folder = Path(tmp)
        if args.world is not None:
            world = World.saved(args.world)
        else:
            world = build(args, stack.enter_context(redis_server(folder / "redis")), folder)
        if args.verdicts:
            results["verdicts"] = write_verdicts(world)
            print(f"daily job: {results['verdicts']}", flush=True)
        audience = min(args.audience, len(world.customer_ids))
        ids = random.Random(args.seed).sample(world.customer_ids, audience)
        scripts = {}
        for name in targets:
            script = folder / f"{name}.lua"
            script.write_text(
                LUA
                % {
                    "ids": ", ".join(json.dumps(i) for i in ids),
                    "path": PATHS.get(name, PATHS["api"]),
                    "auth": world.api_key if name.startswith("api") else "",
                    "seed": args.seed,
                }
            )
            scripts[name] = script
        api_env = serving_env(world)
        bare_env = {"BARE_REDIS_URL": world.redis_url, "BARE_PREFIX": world.prefix}
        for workers in args.workers:
            for repeat in range(args.repeats):
                for name in targets:
                    api = name.startswith("api")
                    target = "serving.app:create_app" if api else "benchmarks.bare_app:create_app"
                    root = args.baseline_src.resolve() if name == "api-base" else ROOT
                    env = {**api_env, **variants.get(name, {})} if api else bare_env
                    with server(target, env, None, "/healthz", workers, root) as (base, pid):
                        run_wrk(
                            base, scripts[name], argparse.Namespace(connections=4, seconds=2)
                        )  # warm-up
                        measured = run_wrk(base, scripts[name], args, pid)
                        key = world.api_key if api else ""
                        path = PATHS.get(name, PATHS["api"])
                        opened = asyncio.run(run_open_loop(base, path, ids, key, args))
                    results["runs"].append(
                        {
                            "target": name,
                            "workers": workers,
                            "repeat": repeat,
                            **measured,
                            "open": opened,
                        }
                    )
                    print(
                        f"{name:8} workers={workers} #{repeat}: {measured} open: "
                        f"p50 {opened['p50_ms']:.1f} p99 {opened['p99_ms']:.1f} ms, "
                        f"{opened['requests'] - opened['ok']} failed",
                        flush=True,
                    )
    results["loadavg_after"] = loadavg()
    print(markdown(results, args, targets))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


def markdown(
    results: dict[str, Any], args: argparse.Namespace, targets: tuple[str, ...] = TARGETS
) -> str:
    """The medians per workers and target. ``CPU µs/req`` is the server's user + system CPU
    per request under wrk and ``CPU %`` the share of a core it got: on a shared machine a
    server's rate follows the share the scheduler gives it, its CPU per request does not."""
    lines = [
        f"wrk -t1 -c{args.connections} -d{args.seconds}s and an open loop of {args.rate:g} "
        f"requests/s for {args.open_seconds:g} s, {args.audience:,} customers asked, medians of "
        f"{args.repeats}; load average {results['loadavg_before']} -> {results['loadavg_after']}",
        "",
        "| workers | target | req/s | p50 ms | p99 ms | non-2xx | API / target req/s | "
        "CPU µs/req | CPU % | target / API CPU per req | "
        f"open {args.rate:g}/s p50 ms | p99 ms | max ms | failed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workers in args.workers:
        medians = {}
        for name in targets:
            runs = [r for r in results["runs"] if r["target"] == name and r["workers"] == workers]
            medians[name] = {
                **{
                    k: statistics.median(r.get(k, 0.0) for r in runs)
                    for k in ("rps", "p50_ms", "p99_ms", "non_2xx", "cpu_us", "cpu_share")
                },
                **{
                    f"open_{k}": statistics.median(r["open"][k] for r in runs)
                    for k in ("p50_ms", "p99_ms", "max_ms")
                },
                "open_failed": sum(r["open"]["requests"] - r["open"]["ok"] for r in runs),
            }
        api = medians.get("api")
        for name, m in medians.items():
            rate = cpu = ""
            if name != "api" and api is not None:
                rate = f"{api['rps'] / m['rps']:.2f}"
                cpu = f"{m['cpu_us'] / api['cpu_us']:.2f}" if api["cpu_us"] else ""
            lines.append(
                f"| {workers} | {name} | {m['rps']:,.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | "
                f"{m['non_2xx']:.0f} | {rate} | {m['cpu_us']:,.0f} | {m['cpu_share']:.0f} | "
                f"{cpu} | "
                f"{m['open_p50_ms']:.1f} | {m['open_p99_ms']:.1f} | {m['open_max_ms']:.1f} | "
                f"{m['open_failed']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
