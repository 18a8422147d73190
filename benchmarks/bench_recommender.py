"""Recommender benchmark: hybrid LightFM vs popularity, EASE and plain LightFM, same run.

Runs on MovieLens-100k (the recbole wheel, cached in ~/.cache/nba) and on the
simulator, tunes each family on a validation cut inside the training period,
then evaluates once on the test window (time split: the last 20% of product
events). Also measures training time and top-10 scoring throughput over 5,000
products: matrix products over LightFM representations vs one ``predict``
call per customer.

    .venv/bin/python benchmarks/bench_recommender.py [--customers 5000] [--days 90]

Prints Markdown to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import replace

from features.dataset import RetailDataset
from features.datasets.movielens import default_cache_dir, fetch_wheel, load_movielens_100k
from simulator import SimulatorConfig, simulate
from training.comparison import compare_recommenders, scoring_throughput
from training.data import training_data
from training.recommender import HybridConfig, HybridRecommender


def _log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def simulated(customers: int, days: int, products: int = 2000, seed: int = 7) -> RetailDataset:
    sim = simulate(
        SimulatorConfig(n_customers=customers, days=days, seed=seed, n_products=products)
    )
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


def throughput(base: HybridConfig, customers: int, repeats: int = 3) -> str:
    data = simulated(customers, 60, products=5000, seed=3)
    started = time.perf_counter()
    model = HybridRecommender(replace(base, epochs=10)).fit(training_data(data))
    fit = time.perf_counter() - started
    ids = data.customers["customer_id"].tolist()
    runs = [scoring_throughput(model, ids, k=10, naive_sample=200) for _ in range(repeats)]
    fast = statistics.median(r["matrix_customers_per_s"] for r in runs)
    naive = statistics.median(r["naive_customers_per_s"] for r in runs)
    n_inter = len(training_data(data).interactions)
    return (
        f"| scoring, top-10 over {len(model.catalogue):,} products | customers/s (median of "
        f"{repeats}) |\n|---|---|\n"
        f"| matrix product over representations | {fast:,.0f} |\n"
        f"| naive per-customer `predict` loop | {naive:,.0f} |\n"
        f"| speed-up | {fast / naive:,.0f}x |\n\n"
        f"Training the hybrid for 10 epochs on {customers:,} simulated customers x 60 days "
        f"({n_inter:,} customer-product pairs): {fit:.1f} s."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--throughput-customers", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-movielens", action="store_true")
    args = parser.parse_args()
    base = HybridConfig(num_threads=args.threads)
    sections = []
    if not args.skip_movielens:
        print("MovieLens-100k", flush=True)
        ml = load_movielens_100k(fetch_wheel(default_cache_dir()))
        comparison, _, _ = compare_recommenders(ml, "MovieLens-100k", base=base, report=_log)
        sections.append(comparison.markdown())
    print(f"simulator {args.customers} x {args.days} days", flush=True)
    sim = simulated(args.customers, args.days)
    comparison, _, _ = compare_recommenders(
        sim, f"simulator {args.customers:,} x {args.days} d", base=base, report=_log
    )
    sections.append(comparison.markdown())
    print("throughput", flush=True)
    sections.append(throughput(base, args.throughput_customers))
    print("\n## Recommender (`benchmarks/bench_recommender.py`)\n")
    print(
        f"Command: `.venv/bin/python benchmarks/bench_recommender.py --customers {args.customers} "
        f"--days {args.days}`; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, LightFM threads {args.threads}. Time split: the last 20% of "
        "product events are the test window; hyper-parameters tuned on a validation cut before "
        "it (the previous 20%). Relevant = products bought (simulator) or rated (MovieLens) in "
        "the test window and not owned before; warm = customers with training interactions.\n"
    )
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
