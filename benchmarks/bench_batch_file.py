"""The decisions file: CPU of deciding an audience and of writing it (Parquet, then CSV)
against a baseline tree, alternated in fresh processes (BENCHMARKS.md, fixes8).

The audience is simulated once (``--customers`` x 30 days, ``--seed``) with this tree's
feature code and written to ``--work``; each run imports ``serving.batch_decisions`` and
``cli.decide`` from its tree (``PYTHONPATH``), decides the audience on one worker after a
warm-up and writes both files, and reports its CPU time (``time.process_time``) for
each step. Medians and ratios to the baseline are printed with the load average.

    git -C /work/main archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/bench_batch_file.py --baseline-src /tmp/base --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

MAKE = """
import datetime as dt, sys
from features.batch import build_profiles
from features.dataset import RetailDataset
from features.profile_table import profiles_frame
from simulator import SimulatorConfig, simulate
sim = simulate(SimulatorConfig(n_customers=int(sys.argv[1]), days=30, seed=int(sys.argv[2]),
                               n_products=300))
data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
cut = sim.config.start + dt.timedelta(days=30, hours=-15)
frame = profiles_frame(build_profiles(data, as_of=cut, workers=1).profiles)
frame.to_parquet(sys.argv[3], index=False)
"""

RUN = """
import json, sys, time
from pathlib import Path
import pandas as pd
from cli.decide import load_catalog, load_contact_policy, write_table
from serving.batch_decisions import decide_audience
frame = pd.read_parquet(sys.argv[1])
now = pd.Timestamp(frame["as_of"].max()).tz_convert("UTC").to_pydatetime()
catalog, policy = load_catalog(None), load_contact_policy(None)
decide_audience(frame.iloc[:200], catalog, policy, now, workers=1)  # warm-up
t0 = time.process_time()
table = decide_audience(frame, catalog, policy, now, workers=1)
t1 = time.process_time()
write_table(table, Path(sys.argv[2] + ".parquet"))
write_table(table, Path(sys.argv[2] + ".csv"))
t2 = time.process_time()
print(json.dumps({"decide": t1 - t0, "write": t2 - t1, "rows": len(table)}))
"""


def _python(src: Path, code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=src, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{src}: {done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_batch_file"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    audience = args.work / "audience.parquet"
    _python(HERE, MAKE, str(args.customers), str(args.seed), str(audience))
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "branch": []}
    for i in range(args.repeat):
        for name, src in (("baseline", args.baseline_src), ("branch", HERE)):
            load = os.getloadavg()[0]
            out = json.loads(_python(src, RUN, str(audience), str(args.work / f"{name}{i}")))
            runs[name].append(out)
            print(
                f"{name} {i}: decide {out['decide']:.3f} s, write {out['write']:.3f} s "
                f"CPU, {out['rows']} rows (load {load:.1f})"
            )
    for step in ("decide", "write"):
        base = statistics.median(r[step] for r in runs["baseline"])
        mine = statistics.median(r[step] for r in runs["branch"])
        print(f"{step}: median {mine:.3f} s against {base:.3f} s: {mine / base:.3f}x")


if __name__ == "__main__":
    main()
