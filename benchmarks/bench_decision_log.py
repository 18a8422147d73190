"""Decision log appends per second, with and without an fsync per append, 1 and 4 threads.

.venv/bin/python benchmarks/bench_decision_log.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.test_decision_log

from experiments.decision_log import JsonlDecisionLog
from tests.test_decision_log import record

CASES = [  # fsync, batch, decisions, threads
    ("always", 1, 2_000, 1),
    ("always", 1, 2_000, 4),
    ("always", 100, 20_000, 1),
    ("never", 1, 20_000, 1),
    ("never", 1, 20_000, 4),
]


def main() -> None:
    records = [record(i) for i in range(5_000)]
    print("| fsync | threads | batch | decisions/s | appends/s |")
    print("|---|---:|---:|---:|---:|")
    for mode, batch, n, threads in CASES:
        log = JsonlDecisionLog(tempfile.mkdtemp(), fsync=mode)  # type: ignore[arg-type]
        per = n // threads

        def work(log: JsonlDecisionLog, per: int, batch: int) -> None:
            for k in range(0, per, batch):
                log.append(records[k % 4_000 : k % 4_000 + batch])

        start = time.perf_counter()
        workers = [threading.Thread(target=work, args=(log, per, batch)) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        seconds = time.perf_counter() - start
        log.close()
        print(f"| {mode} | {threads} | {batch} | {n / seconds:,.0f} | {n / batch / seconds:,.0f} |")


if __name__ == "__main__":
    main()
