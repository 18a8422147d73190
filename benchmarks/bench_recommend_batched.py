"""The champion recommender asked once for many customers against once per customer.

What ``nba decide`` gains by asking the recommender once per chunk
(:func:`serving.products.recommendations`) instead of once per customer as the API
does: ms per customer of ``recommend(ids, k)`` for ``--customers`` ids at once and of
``recommend([id], k)`` for the first ``--single`` of them, alternated, ``--repeat``
times (medians; the same lists either way, checked).

    .venv/bin/python benchmarks/bench_recommend_batched.py --profiles data/profiles.parquet \\
        --tracking-uri sqlite:///data/mlflow.db
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pandas as pd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", required=True, help="profiles Parquet file (the ids)")
    parser.add_argument("--tracking-uri", required=True, help="MLflow registry with a champion")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200)
    parser.add_argument("--k", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from serving.models import champion_models
    from serving.startup import open_registry

    models = champion_models(open_registry(args.tracking_uri)).current
    recommender = models.recommender
    if recommender is None:
        raise SystemExit(f"{args.tracking_uri}: no champion recommender")
    ids = pd.read_parquet(args.profiles)["customer_id"].astype(str).tolist()[: args.customers]
    batched, single = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        together = recommender.recommend(ids, args.k).product_ids
        batched.append(1000 * (time.perf_counter() - started) / len(ids))
        started = time.perf_counter()
        alone = [recommender.recommend([c], args.k).product_ids[0] for c in ids[: args.single]]
        single.append(1000 * (time.perf_counter() - started) / args.single)
        same = all(list(a) == list(b) for a, b in zip(alone, together, strict=False))
        assert same, "one customer at a time recommends other products"
    print(f"model {models.label}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print("| call | ms per customer (median) | runs |")
    print("|---|---:|---|")
    for name, values in ((f"{len(ids):,} at once", batched), ("one at a time", single)):
        runs = ", ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {statistics.median(values):.3f} | {runs} |")
    print(f"ratio: {statistics.median(single) / statistics.median(batched):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
