"""Where the CPU of one ``POST /v1/decisions`` goes, stage by stage, in process.

The API (as deployed: champion recommender, statistics, decision log) and the bare
endpoint (:mod:`benchmarks.bare_app`) are called through their ASGI interface from this
process, one request at a time, with the thread-pool hop made inline so that every stage
runs in this thread and is timed by its CPU clock (``time.thread_time``). The stages are
timed by wrapping the methods of this app's own objects (the code is not changed); the
requests are those wrk sends in ``bench_api_wrk.py`` (a customer id, no context).

Variants, alternated in turns of ``--slice`` requests (whole requests only; the table
gives the median over the turns of each turn's median):

* ``api``: as deployed;
* ``api, through the stack``: without :class:`serving.lane.DecisionLane` (the decisions'
  path through the middleware stack and FastAPI's router, as before the lane);
* ``api, seasons cold``: the seasonal verdict computed afresh at each request, as at a
  customer's first decision of the day (most decisions of a large audience), unless the
  daily job stored it (``--verdicts``: run it first);
* ``api, seasons cold, none stored``: the same with the stored verdicts not read (the
  API before they were stored), with ``--verdicts`` only;
* ``bare``: the bare endpoint.

What the HTTP server adds (uvicorn's parsing, the thread hand-over, contention) is not
here: ``bench_api_wrk.py`` gives the server's CPU per request under wrk, to compare.

    .venv/bin/python benchmarks/bench_decision_cpu.py --customers 5000 --save-world W.json
    .venv/bin/python benchmarks/bench_api_stages.py --world W.json --requests 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_api import World, in_process_settings, loadavg, machine, timed_calls
from benchmarks.bench_api import _drive as drive

#: Stages in the order of a request; an indented name is part of the one above it.
STAGES = (
    "answer",
    "  read_for_decision",
    "    pipeline.execute (read, and write when any)",
    "    decode_customer",
    "  from_stored (build_profile)",
    "  route (nba core)",
    "  _response (JSON-ready dict, products)",
    "  record (history, usage, exposure)",
    "  _count (metrics)",
    "decision log append (through the group commit, made inline)",
)


def _drive(app: Any, bodies: list[bytes], key: str, path: str) -> list[float]:
    """Thread CPU seconds of each request, in a new event loop."""
    return asyncio.run(drive(app, path, bodies, key, clock=time.thread_time))


def _timed(stages: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    return timed_calls(stages, name, fn, time.thread_time)


def _instrument(app: Any, stages: dict[str, list[float]]) -> Callable[[bool], None]:
    """Wrap the stages of this app's decision service (this instance only); the function
    returned wraps (``True``) or restores (``False``) the module-level decoder, which every
    app shares."""
    import features.online.contact_state as contact_state

    service = app.state.runtime.decisions
    contacts = service.contacts
    contacts.read_for_decision = _timed(stages, STAGES[1], contacts.read_for_decision)
    decode = contact_state.decode_customer
    decode_timed = _timed(stages, STAGES[3], decode)

    def module_level(on: bool) -> None:
        contact_state.decode_customer = decode_timed if on else decode

    pipeline = contacts.client.pipeline

    def timed_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        pipe.execute = _timed(stages, STAGES[2], pipe.execute)
        return pipe

    contacts.client.pipeline = timed_pipeline
    service.profiles.from_stored = _timed(stages, STAGES[4], service.profiles.from_stored)
    policy = service.policy

    def timed_policy(models: Any, max_actions: int) -> Any:
        engine = policy(models, max_actions)
        return SimpleNamespace(route=_timed(stages, STAGES[5], engine.route))

    service.policy = timed_policy
    service._response = _timed(stages, STAGES[6], service._response)
    contacts.record = _timed(stages, STAGES[7], contacts.record)
    service._count = _timed(stages, STAGES[8], service._count)
    service.sink.append = _timed(stages, STAGES[9], service.sink.append)
    service.answer = _timed(stages, STAGES[0], service.answer)
    return module_level


class _InlineCommit:
    """The decision log's group commit made inline, as the thread-pool hop is: the log's
    write runs in this thread (its CPU counted by this thread's clock), not the writer's."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    async def append(self, decisions: Any) -> None:
        self.sink.append(decisions)

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, required=True, help="bench_decision_cpu --save-world")
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fsync", choices=["always", "never"], default="never")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--slice", type=int, default=50, help="requests per variant and turn")
    parser.add_argument(
        "--verdicts", action="store_true", help="store today's seasonal verdicts first"
    )
    args = parser.parse_args()

    import anyio.to_thread
    from fastapi.testclient import TestClient

    import features.online.contact_state as contact_state
    import features.seasonality as seasonality
    from benchmarks.bare_app import create_app as bare_app
    from benchmarks.bench_api_wrk import write_verdicts
    from serving.app import create_app

    world = World.saved(args.world)
    if args.verdicts:
        print(f"daily job: {write_verdicts(world)}", flush=True)
    rng = random.Random(args.seed)
    ids = rng.sample(world.customer_ids, min(500, len(world.customer_ids)))
    bodies = [json.dumps({"customer_id": rng.choice(ids)}).encode() for _ in range(args.requests)]

    async def inline(func: Callable[..., Any], *a: Any, **_: Any) -> Any:
        return func(*a)

    with tempfile.TemporaryDirectory(prefix="nba-bench-stages-") as tmp:
        settings = in_process_settings(
            world, decision_log_fsync=args.fsync, decision_log_dir=Path(tmp) / "log"
        )
        apps = {"api": create_app(settings), "bare": bare_app(), "staged": create_app(settings)}
        stacked = apps["api, through the stack"] = create_app(settings)
        stacked._plain = lambda: False  # type: ignore[method-assign]  # never the lane
        variants: dict[str, tuple[Any, str, bool]] = {
            "api": (apps["api"], "/v1/decisions", False),
            "api, through the stack": (apps["api, through the stack"], "/v1/decisions", False),
            "api, seasons cold": (apps["api"], "/v1/decisions", True),
            **(
                {"api, seasons cold, none stored": (apps["api"], "/v1/decisions", True)}
                if args.verdicts
                else {}
            ),
            "bare": (apps["bare"], "/bare", False),
        }
        cached = seasonality._verdict
        decode = contact_state.decode_customer

        def unstored(customer_id: str, raw: bytes | None, verdict: bytes | None = None) -> Any:
            return decode(customer_id, raw)

        whole: dict[str, list[float]] = {name: [] for name in variants}
        stages: dict[str, list[float]] = {}
        staged_whole: list[float] = []
        before = loadavg()
        clients = [TestClient(app) for app in apps.values()]
        for client in clients:
            client.__enter__()  # the lifespans
        for app in apps.values():
            runtime = getattr(app.state, "runtime", None)
            if runtime is not None:
                # every stage in this thread: no decider thread (its batches would be decided
                # and logged out of this thread's clock, and to the group commit closed here)
                if runtime.decider is not None:
                    runtime.decider.close()
                    runtime.decider = None
                runtime.commit.close()
                runtime.commit = _InlineCommit(runtime.sink)
        run_sync = anyio.to_thread.run_sync
        anyio.to_thread.run_sync = inline  # type: ignore[assignment]
        try:
            for app, path, _ in variants.values():  # warm-up: every customer's verdict
                _drive(app, bodies, world.api_key, path)
            _drive(apps["staged"], bodies, world.api_key, "/v1/decisions")
            staged = _instrument(apps["staged"], stages)  # its own app: the others run unwrapped
            for repeat in range(args.repeats):
                for start in range(0, len(bodies), args.slice):
                    chunk = bodies[start : start + args.slice]
                    for name, (app, path, cold) in variants.items():
                        if cold:  # the verdict computed afresh; the day's cache kept aside
                            seasonality._verdict = cached.__wrapped__  # type: ignore[assignment]
                        if name.endswith("none stored"):
                            contact_state.decode_customer = unstored
                        try:
                            times = _drive(app, chunk, world.api_key, path)
                        finally:
                            seasonality._verdict = cached
                            contact_state.decode_customer = decode
                        whole[name].append(statistics.median(times))
                    staged(True)
                    staged_whole += _drive(apps["staged"], chunk, world.api_key, "/v1/decisions")
                    staged(False)
                turns = len(bodies) // args.slice
                print(
                    f"#{repeat}: "
                    + ", ".join(
                        f"{k} {statistics.median(v[-turns:]) * 1e6:.0f} µs"
                        for k, v in whole.items()
                    ),
                    flush=True,
                )
        finally:
            anyio.to_thread.run_sync = run_sync
            for client in clients:
                client.__exit__(None, None, None)
    medians = {name: statistics.median(values) * 1e6 for name, values in whole.items()}
    print(json.dumps({"machine": machine(), "loadavg": [before, loadavg()]}))
    print(markdown(medians, stages, staged_whole))


def markdown(
    medians: dict[str, float], stages: dict[str, list[float]], staged_whole: list[float]
) -> str:
    """The whole requests per variant, then the stages of ``api`` (µs of thread CPU)."""
    requests = len(staged_whole)
    api = medians["api"]
    lines = [
        "| request (median of the turns' medians) | µs CPU | vs api |",
        "|---|---:|---:|",
        *(f"| {name} | {us:,.0f} | {us - api:+,.0f} |" for name, us in medians.items()),
        "",
        "| stage of `api` (per request: mean over the calls) | calls per request | µs CPU "
        "(mean) | µs (median of calls) |",
        "|---|---:|---:|---:|",
    ]
    lines.append(
        f"| whole request (staged app) | 1.00 | {statistics.fmean(staged_whole) * 1e6:,.0f} "
        f"| {statistics.median(staged_whole) * 1e6:,.0f} |"
    )
    total = 0.0
    for name in STAGES:
        values = stages.get(name, [])
        if not values:
            continue
        per_request = sum(values) / requests * 1e6
        total += per_request if not name.startswith(" ") else 0.0
        depth = (len(name) - len(name.lstrip())) // 2
        lines.append(
            f"| {'· ' * depth}{name.strip()} | {len(values) / requests:.2f} | {per_request:,.0f} | "
            f"{statistics.median(values) * 1e6:,.0f} |"
        )
    outside = statistics.fmean(staged_whole) * 1e6 - total
    lines.append(
        f"| outside `answer` and the log (ASGI, middleware, routing, body, key) | | "
        f"{outside:,.0f} | |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
