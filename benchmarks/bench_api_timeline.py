"""A slow open-loop round, bin by bin: what the server and the load generator did.

Reads one trace kept by ``bench_api_tail.py --keep-traces DIR`` (the flight recorder of
:mod:`benchmarks.api_trace` and the generator's own record) and prints, per ``--bin``
seconds of the measured window:

* ``due`` / ``arr`` / ``ans`` / ``infl``: requests due by the schedule, arrived at the
  server, answered, and in flight in the server at the bin's end (the queue);
* ``lat50`` / ``latmax``: client latency (from the due time) of the requests due in the
  bin; ``glag``: how late the generator started the latest of them (its own lag);
* ``tot`` / ``call`` / ``log``: mean server-side ms of the requests answered in the bin,
  of which the wait for the decider (its batch, and with the decider's own logging, the
  group commit) and the wait for the group commit from the loop (thread-pool mode);
* ``nb`` / ``size`` / ``busy``: decider batches started, their mean size, and the ms
  they took (summed over the threads);
* ``fsync`` (longest, ms), ``gc`` (pause ms, with the collector's own CPU ms), ``lag``
  (the event loop's longest lag, ms), ``stats`` (statistics-table reads);
* CPU ms in the bin of the server process and of its threads (the event loop, the two
  deciders, the log writer), the machine's busy share (all cores, ``/proc/stat``), and
  the generator process's CPU ms.

A round whose server CPU drops while the machine stays busy was not given a core; one
whose CPU per answer grows did more work per request.

    .venv/bin/python benchmarks/bench_api_tail.py --world W.json --keep-traces T
    .venv/bin/python benchmarks/bench_api_timeline.py T/as-deployed-1.json --bin 0.25
"""

from __future__ import annotations

import argparse
import bisect
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

THREADS = ("MainThread", "decider-0", "decider-1", "decision-log")


def _at(samples: list[tuple[float, Any]], times: list[float], t: float) -> Any:
    """The last sample at or before ``t`` (the first one before any)."""
    return samples[max(bisect.bisect(times, t) - 1, 0)][1]


def timeline(kept: dict[str, Any], width: float) -> list[dict[str, float]]:
    """One row per bin of ``width`` seconds (see the module doc for the columns)."""
    trace, schedule = kept["trace"], kept["timeline"]
    lags = kept.get("lags") or [0.0] * len(schedule)
    t0 = min(due for due, _, _ in schedule)
    t1 = max(end for _, end, _ in schedule)

    def bin_of(t: float) -> int:
        return int((t - t0) // width)

    rows: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    latencies: dict[int, list[float]] = defaultdict(list)
    for (due, end, _), lag in zip(schedule, lags, strict=True):
        row = rows[bin_of(due)]
        row["due"] += 1
        row["glag"] = max(row["glag"], 1000 * lag)
        latencies[bin_of(due)].append(1000 * (end - due))
    requests = [r for r in trace["requests"] if r["start"] >= t0 - width]
    for r in requests:
        rows[bin_of(r["start"])]["arr"] += 1
        row = rows[bin_of(r["end"])]
        row["ans"] += 1
        call = r.get("call", [[r["start"], r["start"]]])[0]
        row["call"] += 1000 * (call[1] - call[0])
        row["log"] += 1000 * sum(end - start for start, end in r.get("log", []))
        row["tot"] += 1000 * (r["end"] - r["start"])
    starts = sorted(r["start"] for r in requests)
    ends = sorted(r["end"] for r in requests)
    cpu: list[tuple[float, Any]] = []
    for kind, start, end, info in trace["spans"]:
        if kind == "cpu":
            cpu.append((start, info))
            continue
        if end < t0:
            continue
        row = rows[bin_of(start)]
        if kind == "batch":
            row["nb"] += 1
            row["size"] += info
            row["busy"] += 1000 * (end - start)
        elif kind.startswith("gc"):
            row["gc"] += 1000 * (end - start)
            row["gc_cpu"] += 1000 * info[1]
        elif kind in ("lag", "fsync"):
            row[kind] = max(row[kind], 1000 * (end - start))
        elif kind == "stats":
            row["stats"] += info
    cpu_times = [t for t, _ in cpu]
    client = [(t, c) for t, c in kept.get("client_cpu") or []]
    client_times = [t for t, _ in client]
    out = []
    for b in range(bin_of(t1) + 1):
        row = dict(rows[b])
        start, stop = t0 + b * width, t0 + (b + 1) * width
        answered = row.get("ans", 0.0) or 1.0
        for key in ("tot", "call", "log"):
            row[key] = row.get(key, 0.0) / answered
        row["size"] = row.get("size", 0.0) / max(row.get("nb", 0.0), 1.0)
        row["infl"] = bisect.bisect(starts, stop) - bisect.bisect(ends, stop)
        lat = sorted(latencies.get(b, [0.0]))
        row["lat50"], row["latmax"] = lat[len(lat) // 2], lat[-1]
        row["t"] = b * width
        if cpu:
            before, after = _at(cpu, cpu_times, start), _at(cpu, cpu_times, stop)
            row["proc"] = 1000 * (after["process"] - before["process"])
            for name in THREADS:  # a thread gone by the bin's end (the server stopping): none
                if name in before["threads"] and name in after["threads"]:
                    row[name] = 1000 * (after["threads"][name] - before["threads"][name])
            busy = after["machine"][0] - before["machine"][0]
            row["machine"] = 100 * busy / max(after["machine"][1] - before["machine"][1], 1)
        if client:
            row["client"] = 1000 * (
                _at(client, client_times, stop) - _at(client, client_times, start)
            )
        out.append(row)
    return out


COLUMNS = (
    ("t", "5.2f"),
    ("due", "4.0f"),
    ("arr", "4.0f"),
    ("ans", "4.0f"),
    ("infl", "4.0f"),
    ("lat50", "6.1f"),
    ("latmax", "6.1f"),
    ("glag", "5.1f"),
    ("tot", "6.1f"),
    ("call", "6.1f"),
    ("log", "5.1f"),
    ("nb", "3.0f"),
    ("size", "4.1f"),
    ("busy", "4.0f"),
    ("fsync", "5.1f"),
    ("gc", "5.1f"),
    ("gc_cpu", "4.1f"),
    ("lag", "5.1f"),
    ("stats", "3.0f"),
    ("proc", "4.0f"),
    *((name, "4.0f") for name in THREADS),
    ("machine", "4.0f"),
    ("client", "4.0f"),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trace", type=Path, help="a trace kept by bench_api_tail --keep-traces")
    parser.add_argument("--bin", type=float, default=0.1, help="seconds per row")
    args = parser.parse_args()
    rows = timeline(json.loads(args.trace.read_text()), args.bin)
    print(" ".join(name for name, _ in COLUMNS))
    for row in rows:
        print(" ".join(format(row.get(name, 0.0), spec) for name, spec in COLUMNS))


if __name__ == "__main__":
    main()
