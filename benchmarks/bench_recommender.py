"""Recommender benchmark: every family (popularity, EASE, ALS, BPR, plain and hybrid
LightFM) in the same run, on the protocol ``nba train`` uses.

Runs on MovieLens-100k (the recbole wheel, cached in ~/.cache/nba; ratings >= 4
are positives) and on the simulator: each customer's last 20 % of positives by
time is held out, each family is tuned (budgeted search) on a validation split
inside the training part and chosen there, then every family is measured once
on the test, over several seeds (median and range). Also measures top-10
scoring throughput over 5,000 products: matrix products over LightFM
representations vs one ``predict`` call per customer.

    .venv/bin/python benchmarks/bench_recommender.py [--customers 5000] [--days 90] [--seeds 3]

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
from training.comparison import scoring_throughput
from training.data import training_data
from training.evaluation import EvaluationProtocol
from training.recommender import HybridConfig, HybridRecommender
from training.selection import RecommenderSelection, select_recommender


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


def compare(
    data: RetailDataset, name: str, base: HybridConfig, seeds: int, budget: int
) -> RecommenderSelection:
    protocol = EvaluationProtocol(seeds=seeds)
    return select_recommender(
        data,
        name,
        protocol=protocol,
        base=base,
        tune=True,
        budget=budget,
        test_all=True,
        report=_log,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--throughput-customers", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-movielens", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=8, help="fits per LightFM family")
    args = parser.parse_args()
    base = HybridConfig(num_threads=args.threads)
    sections = []
    if not args.skip_movielens:
        print("MovieLens-100k", flush=True)
        ml = load_movielens_100k(fetch_wheel(default_cache_dir()))
        chosen = compare(ml, "MovieLens-100k", base, args.seeds, args.budget)
        sections.append(chosen.markdown())
    print(f"simulator {args.customers} x {args.days} days", flush=True)
    sim = simulated(args.customers, args.days)
    name = f"simulator {args.customers:,} x {args.days} d"
    sections.append(compare(sim, name, base, args.seeds, args.budget).markdown())
    print("throughput", flush=True)
    sections.append(throughput(base, args.throughput_customers))
    print("\n## Recommender (`benchmarks/bench_recommender.py`)\n")
    print(
        f"Command: `.venv/bin/python benchmarks/bench_recommender.py --customers {args.customers} "
        f"--days {args.days}`; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, LightFM threads {args.threads}, {args.seeds} seeds, "
        f"search budget {args.budget} fits per LightFM family. Relevant = products bought "
        "(simulator) or rated >= 4 (MovieLens) in the held-out part and not owned before; "
        "warm = customers with training interactions.\n"
    )
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
