"""Batch decisions with the registry's champions: a chunk scored at once against each
customer scored alone, CPU seconds of one process, same run.

``decide_audience(workers=1)`` over the profiles, with
:meth:`training.model_scorer.ModelScorer.chunk` (the learned engagement of a
whole chunk in one design matrix per channel) and with it switched off (each
decision builds its own small matrix, as the API does), alternated, medians of
``--repeat``; the two tables must be equal. CPU time (``time.process_time``)
rather than wall time, since the machine is shared:

    PYTHONPATH=. .venv/bin/python benchmarks/bench_batch_scoring.py \\
        --profiles data/profiles.parquet --tracking-uri sqlite:///data/mlflow.db
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cli.decide import load_catalog, load_contact_policy, load_scorer
from nba.pipeline import build_pipeline
from serving.batch_decisions import decide_audience
from training.model_scorer import ModelScorer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, required=True, help="profiles Parquet file")
    parser.add_argument("--tracking-uri", required=True, help="MLflow registry with champions")
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    frame = pd.read_parquet(args.profiles).iloc[: args.customers]
    catalog, contacts = load_catalog(None), load_contact_policy(None)
    scorer, label = load_scorer(args.tracking_uri)
    if not isinstance(scorer, ModelScorer) or scorer.propensity is None:
        raise SystemExit(f"{args.tracking_uri}: no champion channel propensity model")
    pipeline = build_pipeline(catalog, contacts, scorer=scorer)
    now = pd.Timestamp(frame["as_of"].max()).tz_convert("UTC").to_pydatetime()
    chunk = ModelScorer.chunk

    @contextlib.contextmanager
    def each_alone(self: ModelScorer, profiles: object) -> Iterator[None]:
        yield

    seconds: dict[str, list[float]] = {"chunk": [], "alone": []}
    tables = {}
    for _ in range(args.repeat):
        for name, method in (("chunk", chunk), ("alone", each_alone)):
            ModelScorer.chunk = method  # type: ignore[method-assign]
            started = time.process_time()
            tables[name] = decide_audience(frame, catalog, contacts, now, policy=pipeline)
            seconds[name].append(time.process_time() - started)
    ModelScorer.chunk = chunk  # type: ignore[method-assign]
    pd.testing.assert_frame_equal(tables["chunk"], tables["alone"], check_exact=True)
    base = statistics.median(seconds["alone"])
    print(
        f"{len(frame):,} customers, models: {label}; {os.cpu_count()} CPUs, load average ", end=""
    )
    print(f"{os.getloadavg()[0]:.1f} at the end; the two tables are equal")
    print("| scoring | CPU s (median) | runs | customers per CPU s | vs alone |")
    print("|---|---:|---|---:|---:|")
    for name, values in seconds.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.2f}" for v in values)
        rate = len(frame) / median
        print(f"| {name} | {median:.2f} | {runs} | {rate:,.0f} | {base / median:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
