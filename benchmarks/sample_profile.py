"""Where batch decisions spend their CPU, by sampling: the share of samples in each
function (inclusive: anywhere on the stack; self: at the top) and in each line of the
decision's main functions.

cProfile charges its own cost to every call, and the decision core makes many small ones
(~1,900 a customer): under it, the eligibility rules (24 actions a customer) looked like
a third of screening. A timer signal (``ITIMER_PROF``, every ``--interval`` ms of CPU)
that records the Python stack costs nothing between samples, so the shares are those of
the uninstrumented run (BENCHMARKS.md, "Issue 15, item 4 (fast12)").

    .venv/bin/python benchmarks/sample_profile.py --profiles /tmp/champ10_data/profiles.parquet \\
        --tracking-uri sqlite:////tmp/champ10_data/mlflow.db --customers 5000 --passes 3
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parents[1]
sys.path.append(str(HERE))  # after PYTHONPATH: the measured tree's nba comes first

from benchmarks.bench_batch_decisions import _champions, audience  # noqa: E402

#: Functions whose lines are counted too (file suffix, function name).
LINES = (
    ("nba/policy.py", "decide"),
    ("nba/screening.py", "screen"),
    ("nba/screening.py", "rejection"),
    ("nba/screening.py", "_slot"),
    ("nba/engine.py", "_assess"),
    ("training/model_scorer.py", "score"),
    ("serving/batch_decisions.py", "decide"),
)


class Sampler:
    """Counts the Python stack at each ``SIGPROF`` (one thread: the main one)."""

    def __init__(self, root: Path) -> None:
        self.root = f"{root}/"
        self.samples = 0
        self.inclusive: collections.Counter[str] = collections.Counter()
        self.own: collections.Counter[str] = collections.Counter()
        self.lines: collections.Counter[str] = collections.Counter()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.samples += 1
        seen: set[str] = set()
        top = True
        while frame is not None:
            code = frame.f_code
            where = code.co_filename.removeprefix(self.root)
            key = f"{where}:{code.co_name}"
            if top:
                self.own[key] += 1
                top = False
            if key not in seen:
                seen.add(key)
                self.inclusive[key] += 1
                if (where, code.co_name) in _LINES_SET:
                    self.lines[f"{key}:{frame.f_lineno}"] += 1
            frame = frame.f_back

    def report(self, top: int, floor: float) -> str:
        n = max(1, self.samples)
        out = [f"{self.samples:,} samples", "", "| inclusive | function |", "|---:|---|"]
        out += [f"| {100 * v / n:.1f} % | {k} |" for k, v in self.inclusive.most_common(top)]
        out += ["", "| self | function |", "|---:|---|"]
        out += [f"| {100 * v / n:.1f} % | {k} |" for k, v in self.own.most_common(top // 2)]
        out += ["", "| inclusive | line |", "|---:|---|"]
        out += [
            f"| {100 * v / n:.1f} % | {k} |"
            for k, v in sorted(self.lines.items())
            if v / n >= floor
        ]
        return "\n".join(out)


_LINES_SET = frozenset(LINES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, required=True, help="profiles Parquet file")
    parser.add_argument("--tracking-uri", help="MLflow registry with champions [default: rules]")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--passes", type=int, default=3, help="sampled passes after a warm-up")
    parser.add_argument("--interval", type=float, default=0.5, help="ms of CPU between samples")
    parser.add_argument("--top", type=int, default=60, help="functions listed")
    args = parser.parse_args(argv)

    import pandas as pd

    from cli.decide import load_catalog, load_contact_policy
    from nba.pipeline import build_pipeline
    from serving.batch_decisions import decide_audience

    frame = audience(args.profiles, args.customers)
    catalog, contacts = load_catalog(None), load_contact_policy(None)
    pipeline = build_pipeline(catalog, contacts, scorer=_champions(args.tracking_uri).scorer)
    now = pd.Timestamp(frame["as_of"].max()).tz_convert("UTC").to_pydatetime()

    def run() -> None:  # one worker: the calling process decides every chunk
        decide_audience(frame, catalog, contacts, now, policy=pipeline, workers=1)

    run()  # warm-up
    sampler = Sampler(HERE)
    previous = signal.signal(signal.SIGPROF, sampler)
    seconds = args.interval / 1000.0
    signal.setitimer(signal.ITIMER_PROF, seconds, seconds)
    try:
        for _ in range(args.passes):
            run()
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0.0, 0.0)
        signal.signal(signal.SIGPROF, previous)
    print(sampler.report(args.top, 0.003))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
