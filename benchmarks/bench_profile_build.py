"""CPU per :func:`features.finalise.build_profile` on stored states, two trees alternated.

The profile build is shared by ``POST /v1/decisions``, batch decisions and the closed
loop. This reads ``--customers`` stored states of a world saved by
``bench_decision_cpu.py --save-world`` (its Redis must run), then, in ``--repeats``
rounds, runs one fresh process per tree in turn (this one, then ``--baseline-src``):
each builds every profile at four moments (the world's day, three days on, twenty days
back, 45 days on) ``--passes`` times and reports the median thread-CPU µs per profile.
Each process also writes its profiles: the two trees' must be equal, field for field
(``repr`` for ``repr``: the same numbers of the same types), or the run stops.

    .venv/bin/python benchmarks/bench_profile_build.py --world W.json --baseline-src BASE
"""

from __future__ import annotations

import argparse
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import datetime as dt, json, pickle, random, statistics, sys, time
sys.path.insert(0, {root!r})
from benchmarks.bench_api import World
from features.finalise import build_profile
from features.online.connect import connect_redis
from features.online.redis_store import RedisOnlineStore
world = World(**json.loads(open({world!r}).read()))
store = RedisOnlineStore(connect_redis(world.redis_url), prefix=world.prefix)
ids = random.Random(3).sample(world.customer_ids, min({customers}, len(world.customer_ids)))
stored = [s for s in store.read(ids) if s is not None]
priors = store.read_priors()
day = dt.datetime(2026, 12, 6, 15, 30, tzinfo=dt.UTC)
moments = [day + dt.timedelta(days=d) for d in (0, 3, -20, 45)]
def build():
    return [build_profile(s.customer_id, s.state, t, s.static, priors, s.season)
            for t in moments for s in stored]
profiles = build()
times = []
for _ in range({passes}):
    start = time.thread_time()
    build()
    times.append((time.thread_time() - start) / len(profiles) * 1e6)
pickle.dump([repr(p) for p in profiles], open({out!r}, "wb"))
print(statistics.median(times))
"""


def one(root: Path, world: Path, args: argparse.Namespace, out: Path) -> float:
    script = CHILD.format(
        root=str(root), world=str(world), customers=args.customers, passes=args.passes, out=str(out)
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, required=True, help="bench_decision_cpu --save-world")
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trees = {"this": ROOT, "baseline": args.baseline_src.resolve()}
    times: dict[str, list[float]] = {name: [] for name in trees}
    started = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory(prefix="nba-bench-profile-") as tmp:
        for repeat in range(args.repeats):
            order = list(trees.items())
            random.Random(repeat).shuffle(order)
            for name, root in order:
                times[name].append(one(root, args.world.resolve(), args, Path(tmp) / name))
            this, base = (pickle.loads((Path(tmp) / n).read_bytes()) for n in trees)
            if this != base:
                raise SystemExit("the two trees build different profiles")
            print(
                f"#{repeat}: this {times['this'][-1]:.1f} µs, baseline "
                f"{times['baseline'][-1]:.1f} µs",
                flush=True,
            )
    ended = Path("/proc/loadavg").read_text().split()[:3]
    this, base = (statistics.median(times[n]) for n in trees)
    print(f"load average {' '.join(started)} -> {' '.join(ended)}; profiles equal in every round")
    print("| tree | µs CPU per profile (median of rounds) | by round | vs baseline |")
    print("|---|---:|---|---:|")
    for name, value in (("this", this), ("baseline", base)):
        rounds = " / ".join(f"{t:.1f}" for t in times[name])
        print(f"| {name} | {value:.1f} | {rounds} | {value / base:.2f}x |")


if __name__ == "__main__":
    main()
