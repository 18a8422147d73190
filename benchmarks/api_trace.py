"""The API with a flight recorder, for finding where a slow decision's time goes.

``uvicorn benchmarks.api_trace:create_app --factory`` serves :func:`serving.app.create_app`
as deployed, and records, in ``time.monotonic`` seconds (the clock a load generator on the
same machine reads), spans of:

* ``request``: ``POST /v1/decisions`` from the ASGI call to the last body byte sent;
* ``call``: the route's hand-over to a decision thread (from the call on the event loop
  to its return there; none when it decides on the loop) and ``thread``: the decision
  (``DecisionService.answer``), so that the hand-over each way is told apart from the
  work;
* ``read``, ``profile``, ``route``, ``record``: the stages of the decision (``read``
  carries whether it read the statistics table too), ``season``: a seasonal verdict
  computed afresh, ``log``: the wait for the decision log's group commit, ``fsync``:
  each ``os.fsync`` of the process;
* ``batch``: a batch of the decider (``NBA_DECIDE_IN=batches``), with its size; a
  request's ``call`` is then its wait for its batch's answer;
* ``gc0``/``gc1``/``gc2``: the cyclic collector's pauses, by generation;
* ``lag``: the event loop late by more than 2 ms for a 5 ms sleep (a loop starved of the
  GIL, or blocked);
* ``cpu``: every 50 ms, the CPU seconds so far of each of the process's threads (by
  name), of the whole process, and the machine's busy and total jiffies (``/proc/stat``):
  whether a slow stretch is the server's own work growing or the server not given a core;
* ``stats``: a batch's reads of the whole statistics table (how many of its requests).

The spans are written as JSON to ``NBA_TRACE_PATH`` when the server stops. Methods are
wrapped on their classes: this process serves only this app. ``NBA_TRACE_GC`` sets the
collector's thresholds at the first decision (``"50000/20/100"``; ``"off"`` disables it) and
``NBA_TRACE_SWITCH`` the interpreter's switch interval (seconds), to measure what they
cost the tail.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Span = tuple[str, float, float, Any]
#: The request being served (its record: stage -> [start, end] or a list of spans).
_REQUEST: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "traced_request", default=None
)


class Recorder:
    """Per-request records (stages by name) and process-wide spans (collector, loop lag,
    fsync), appended from any thread."""

    def __init__(self) -> None:
        self.requests: list[str] = []  # each request's record, as JSON
        self.spans: list[Span] = []
        self._gc_start = (0.0, 0.0)

    def timed(
        self, kind: str, fn: Callable[..., Any], info: Callable[..., Any] | None = None
    ) -> Any:
        """``fn`` recording its span under ``kind`` in the current request (and, for
        ``fsync``, process-wide too: other requests wait for it)."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.monotonic()
                record = _REQUEST.get()
                if record is not None:
                    record.setdefault(kind, []).append((start, end))
                    if info is not None:
                        record[f"{kind}_info"] = info(*args, **kwargs)
                if kind == "fsync":
                    self.spans.append((kind, start, end, None))
                elif kind == "batch" and info is not None:
                    self.spans.append((kind, start, end, info(*args, **kwargs)))

        return wrapper

    def timed_async(self, kind: str, fn: Callable[..., Any]) -> Any:
        """The coroutine function ``fn`` recording its span under ``kind``."""

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            try:
                return await fn(*args, **kwargs)
            finally:
                record = _REQUEST.get()
                if record is not None:
                    record.setdefault(kind, []).append((start, time.monotonic()))

        return wrapper

    def on_gc(self, phase: str, details: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = (time.monotonic(), time.thread_time())
        else:
            start, cpu = self._gc_start
            # (collected, CPU seconds, objects in generation 2): a tuple of numbers, which
            # the collector stops tracking, so the record does not grow what it measures
            info = (
                details.get("collected"),
                time.thread_time() - cpu,
                len(gc.get_objects(2)) if details["generation"] == 2 else None,
            )
            self.spans.append((f"gc{details['generation']}", start, time.monotonic(), info))

    def sample_cpu(self, every: float = 0.05) -> None:
        """Append a ``cpu`` span every ``every`` seconds (runs in its own daemon thread)."""
        while True:
            threads: dict[str, float] = {}
            for thread in threading.enumerate():
                if thread.ident is None:
                    continue
                with contextlib.suppress(OSError, ProcessLookupError):
                    clock = time.pthread_getcpuclockid(thread.ident)
                    threads[thread.name] = time.clock_gettime(clock)
            fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            idle = fields[3] + fields[4]  # idle, iowait
            now = time.monotonic()
            info = {
                "threads": threads,
                "process": time.process_time(),
                "machine": (sum(fields) - idle, sum(fields)),
            }
            self.spans.append(("cpu", now, now, info))
            time.sleep(every)

    def write(self, path: Path) -> None:
        requests = [json.loads(r) for r in self.requests]
        path.write_text(json.dumps({"requests": requests, "spans": self.spans}))


def _instrument(recorder: Recorder) -> None:
    import features.seasonality as seasonality
    import serving.routes.decisions as routes
    from features.online.contact_state import RedisContactState
    from features.online.profiles import OnlineProfiles
    from nba.pipeline import DecisionPipeline
    from serving.decider import Decider
    from serving.decisions import DecisionService

    RedisContactState.read_for_decision = recorder.timed(  # type: ignore[method-assign]
        "read", RedisContactState.read_for_decision, lambda *a, **k: bool(k.get("with_stats"))
    )
    RedisContactState.record = recorder.timed("record", RedisContactState.record)  # type: ignore[method-assign]
    OnlineProfiles.from_stored = recorder.timed("profile", OnlineProfiles.from_stored)  # type: ignore[method-assign]
    DecisionPipeline.route = recorder.timed("route", DecisionPipeline.route)  # type: ignore[method-assign]
    DecisionService.answer = recorder.timed("thread", DecisionService.answer)  # type: ignore[method-assign]
    seasonality.season_probabilities = recorder.timed("season", seasonality.season_probabilities)
    os.fsync = recorder.timed("fsync", os.fsync)
    routes.run_in_threadpool = recorder.timed_async("call", routes.run_in_threadpool)
    # NBA_DECIDE_IN=batches: the request's wait for its batch is its "call"; the batches
    # themselves (read, decide, record for several requests) are process-wide spans
    Decider.answer = recorder.timed_async("call", Decider.answer)  # type: ignore[method-assign]
    DecisionService.answer_all = recorder.timed(  # type: ignore[method-assign]
        "batch", DecisionService.answer_all, lambda _self, asked: len(asked)
    )
    reads = RedisContactState.read_for_decisions

    def read_for_decisions(self: Any, asked: Any) -> Any:
        with_stats = sum(1 for r in asked if r.with_stats)
        if with_stats:
            now = time.monotonic()
            recorder.spans.append(("stats", now, now, with_stats))
        return reads(self, asked)

    RedisContactState.read_for_decisions = read_for_decisions  # type: ignore[method-assign,assignment]


class _Traced:
    """Outermost ASGI layer: each decision request's record, the sink's ``log`` stage,
    the loop's lag."""

    def __init__(self, app: Any, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder
        self._watching = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/decisions":
            await self.app(scope, receive, send)
            return
        if not self._watching:
            self._watching = True
            thresholds = os.environ.get("NBA_TRACE_GC")  # after the lifespan set its own
            if thresholds == "off":
                gc.disable()
            elif thresholds:
                gc.set_threshold(*(int(t) for t in thresholds.split("/")))
            runtime = self.app.state.runtime
            runtime.commit.append = self.recorder.timed_async("log", runtime.commit.append)
            asyncio.get_running_loop().create_task(self._watch_loop())
        record: dict[str, Any] = {"start": time.monotonic()}
        _REQUEST.set(record)

        async def sending(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                record["end"] = time.monotonic()
                # kept as text: no container the collector would walk (and time)
                self.recorder.requests.append(json.dumps(record))

        await self.app(scope, receive, sending)

    async def _watch_loop(self) -> None:
        while True:
            due = time.monotonic() + 0.005
            await asyncio.sleep(0.005)
            late = time.monotonic() - due
            if late > 0.002:
                self.recorder.spans.append(("lag", due, due + late, None))


def create_app() -> Any:
    from serving.app import create_app as api

    switch = os.environ.get("NBA_TRACE_SWITCH")
    if switch:
        sys.setswitchinterval(float(switch))
    recorder = Recorder()
    gc.callbacks.append(recorder.on_gc)
    _instrument(recorder)
    path = Path(os.environ.get("NBA_TRACE_PATH", "api-trace.json"))
    atexit.register(recorder.write, path)
    threading.Thread(target=recorder.sample_cpu, name="cpu-sampler", daemon=True).start()
    app = api()
    return _Traced(app, recorder)
