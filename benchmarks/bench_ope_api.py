"""Off-policy evaluation from the real API's own logs, checked against the simulator's truth.

Starts the API (a ``uvicorn`` process on a real Redis; rule-based scorer, an
experiment whose champion arm explores with ``--explore-share``), drives a
simulated retailer through it for ``--days`` simulated days
(:class:`experiments.ope_api_simulation.ApiTraffic`: decisions from
``POST /v1/decisions/batch`` at the simulated clock, every behaviour and outcome
posted to ``POST /v1/events`` with its ``decision_id``), then runs the off-policy
evaluation of the candidates from the API's decision log and event archive
(:func:`experiments.ope_api.evaluate_log`, what ``nba experiments ope --log``
runs) and checks each 95 % interval against the candidate's true expected reward
at the logged contexts (:func:`experiments.ope_api_simulation.response_truth`).

    .venv/bin/python benchmarks/bench_ope_api.py --customers 2000 --days 14 \\
        --redis-url redis://127.0.0.1:6379/0

``--compare-stats`` serves the same world instead with the engine alone (no
experiment, no exploration share), with and without the API's adaptive response
statistics (``NBA_RESPONSE_STATS``), alternated over ``--repeats`` runs each,
and reports the true incremental margin of what each sent.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from experiments.ope_api import CANDIDATE_NAMES, evaluate_log, load_events
from experiments.ope_api_simulation import TRUTH_OF_REWARD, ApiTraffic, response_truth, serve_world
from nba.catalog import parse_catalog
from nba.contact_policy import parse_contact_policy
from simulator.closed_loop import ClosedLoopConfig, build_world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--explore-share", type=float, default=0.3)
    parser.add_argument(
        "--rewards", default="clicks,conversions", help=f"Some of {', '.join(TRUTH_OF_REWARD)}."
    )
    parser.add_argument("--candidates", default=",".join(CANDIDATE_NAMES))
    parser.add_argument(
        "--redis-url", help="A Redis to use (default: a redis-server started here)."
    )
    parser.add_argument("--out", type=Path, help="Also write the report (Markdown) here.")
    parser.add_argument("--compare-stats", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    if args.compare_stats:
        with _redis(args.redis_url) as redis_url:
            return compare_stats(args, redis_url, argv)
    candidates = [c.strip() for c in args.candidates.split(",") if c.strip()]
    rewards = [r.strip() for r in args.rewards.split(",") if r.strip()]
    if not rewards or any(r not in TRUTH_OF_REWARD for r in rewards):
        parser.error(f"--rewards: some of {', '.join(TRUTH_OF_REWARD)}")
    unknown = [c for c in candidates if c not in CANDIDATE_NAMES]
    if unknown:
        parser.error(f"unknown candidates {unknown} (expected some of: {CANDIDATE_NAMES})")

    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    root = Path(tempfile.mkdtemp(prefix="bench-ope-api-"))
    stack = contextlib.ExitStack()
    redis_url = stack.enter_context(_redis(args.redis_url))
    stack.callback(shutil.rmtree, root, ignore_errors=True)
    seconds: dict[str, float] = {}
    try:
        say("simulating the retailer")
        config = ClosedLoopConfig(
            n_customers=args.customers,
            history_days=args.history_days,
            days=args.days,
            seed=args.seed,
        )
        world = build_world(config)
        seconds["world"] = time.perf_counter() - started
        say("serving it with the API and driving it")
        mark = time.perf_counter()
        with (
            serve_world(world, root, redis_url, explore_share=args.explore_share) as served,
            httpx.Client(base_url=served.base_url, timeout=120) as client,
        ):
            traffic = ApiTraffic(world, client, seed=args.seed)
            traffic.run(progress=lambda t, n: say(f"tick {t}/{n}") if t % 8 == 0 else None)
        seconds["api"] = time.perf_counter() - mark
        events = load_events([served.base_data, served.archive])
        evaluations = {}
        for reward in rewards:
            say(f"off-policy evaluation from the API's log: {reward}")
            mark = time.perf_counter()
            evaluation = evaluate_log(
                served.decision_log,
                events,
                catalog=parse_catalog(served.catalog_path.read_text()),
                contact_policy=parse_contact_policy(served.contact_policy_path.read_text()),
                candidates=candidates,
                reward=reward,
                attribution="direct",
                seed=args.seed,
                progress=say,
            )
            seconds[f"ope:{reward}"] = time.perf_counter() - mark
            evaluations[reward] = (evaluation, response_truth(world, evaluation, traffic))
    finally:
        stack.close()

    evaluation = next(iter(evaluations.values()))[0]
    replay = evaluation.replay
    lines = [
        f"`{shlex.join(['benchmarks/bench_ope_api.py', *(argv or sys.argv[1:])])}`",
        "",
        f"{args.customers:,} customers, {args.history_days} days of history, {args.days} days "
        f"served by the API (uvicorn + Redis, explore share {args.explore_share:g}): "
        f"{traffic.decisions:,} decisions, {traffic.contacts:,} messages, "
        f"{traffic.events_posted:,} events posted; {evaluation.n_rounds:,} rounds in the "
        "decision log. The response model expected "
        + ", ".join(f"{v:,.1f} {k}s" for k, v in traffic.expected.items())
        + " of the messages sent.",
        "",
        f"Contexts rebuilt from the events: features equal to the logged ones in "
        f"{replay.features_agree:,} of {evaluation.n_rounds:,} rounds; "
        f"{replay.missing_options} logged options not screened again; "
        f"{replay.unknown_customers} unknown customers. Unsupported mass (a candidate's "
        "choices the logger never makes there): "
        + ", ".join(f"{c.candidate} {c.unsupported_mass:.2%}" for c in evaluation.candidates),
    ]
    for reward, (evaluation, truth) in evaluations.items():
        covered = sum(
            all(e.contains(truth[c.candidate]) for e in c.estimates) for c in evaluation.candidates
        )
        by_estimator: dict[str, int] = {}
        for c in evaluation.candidates:
            for e in c.estimates:
                hit = e.contains(truth[c.candidate])
                by_estimator[e.estimator] = by_estimator.get(e.estimator, 0) + hit
        lines += [
            "",
            f"Reward: directly attributed {reward} per decision "
            f"({int((evaluation.reward > 0).sum()):,} rounds rewarded).",
            "",
            evaluation.markdown(truth),
            "",
            "Intervals covering the truth, per estimator: "
            + ", ".join(f"{k} {v}/{len(evaluation.candidates)}" for k, v in by_estimator.items())
            + f"; candidates covered by all four: {covered}/{len(evaluation.candidates)}.",
        ]
    lines += [
        "",
        "Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()),
    ]
    return _report(lines, args.out)


def _report(lines: list[str], out: Path | None) -> int:
    """Print the report (and write it to ``out``) with the machine and its load."""
    load = os.getloadavg()
    lines = [
        *lines,
        f"Machine: {platform.processor() or platform.machine()}, nproc {os.cpu_count()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}.",
    ]
    report = "\n".join(lines)
    print(report)
    if out is not None:
        out.write_text(report + "\n")
    return 0


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    """``url``, or a ``redis-server`` started here for the run."""
    if url is not None:
        yield url
        return
    port = 6400 + os.getpid() % 500
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait()


def compare_stats(args: argparse.Namespace, redis_url: str, argv: list[str] | None) -> int:
    """The engine with and without adaptive statistics through the API, same world."""
    started = time.perf_counter()
    world = build_world(
        ClosedLoopConfig(
            n_customers=args.customers,
            history_days=args.history_days,
            days=args.days,
            seed=args.seed,
        )
    )
    runs: dict[bool, list[ApiTraffic]] = {True: [], False: []}
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for repeat in range(args.repeats):
        for stats in (True, False) if repeat % 2 == 0 else (False, True):
            mark = time.perf_counter()
            with (
                tempfile.TemporaryDirectory(prefix="bench-api-stats-") as folder,
                serve_world(
                    world, Path(folder), redis_url, explore_share=None, response_stats=stats
                ) as served,
                httpx.Client(base_url=served.base_url, timeout=120) as client,
            ):
                traffic = ApiTraffic(world, client, seed=args.seed + repeat)
                traffic.run()
            runs[stats].append(traffic)
            seconds[stats].append(time.perf_counter() - mark)
            print(
                f"[{time.perf_counter() - started:6.0f} s] stats={stats} repeat {repeat}: "
                f"margin {traffic.true_value['margin']:.1f}, {traffic.contacts} messages",
                file=sys.stderr,
                flush=True,
            )
    n = len(world.customer_ids)

    def median(values: list[float]) -> float:
        return (
            float(sorted(values)[len(values) // 2])
            if len(values) % 2
            else float(sum(sorted(values)[len(values) // 2 - 1 : len(values) // 2 + 1]) / 2)
        )

    margin = {k: [t.true_value["margin"] / n for t in v] for k, v in runs.items()}
    lines = [
        f"`{shlex.join(['benchmarks/bench_ope_api.py', *(argv or sys.argv[1:])])}`",
        "",
        f"{n:,} customers, {args.days} days through the API (uvicorn + Redis, the engine with "
        f"the rule-based scorer, no exploration share), {args.repeats} run(s) each, alternated.",
        "",
        "| engine | true incremental margin per customer (runs) | median | messages | decisions |",
        "|---|---|---:|---:|---:|",
    ]
    for stats, label in ((True, "with adaptive statistics"), (False, "without")):
        lines.append(
            f"| {label} | {', '.join(f'{m:.3f}' for m in margin[stats])} | "
            f"{median(margin[stats]):.3f} | "
            f"{median([float(t.contacts) for t in runs[stats]]):,.0f} | "
            f"{median([float(t.decisions) for t in runs[stats]]):,.0f} |"
        )
    without = median(margin[False])
    ratio = median(margin[True]) / without if without else float("nan")
    lines += [
        "",
        f"Ratio with / without: {ratio:.2f}x (goal >= 1.2x).",
        f"Seconds per run: with {median(seconds[True]):.0f}, without {median(seconds[False]):.0f}.",
    ]
    return _report(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
