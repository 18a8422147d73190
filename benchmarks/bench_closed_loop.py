"""Closed-loop benchmark: can it tell a good engine from random? (issue 12, item 4)

For each seed: simulates history, cuts it, runs every policy in closed loop over
the same customers and days (same background, same seeds, same truth), checks
every delivered contact with the independent checker and prints

* the headline: true incremental margin per customer over the horizon (net of
  contact costs and of the value lost to unsubscribes; do-nothing earns 0), with
  95 % intervals, and the engine's ratios to random at its contact volume
  (``random~nba``), to the lookahead oracle at its volume (``oracle~nba``) and
  unmatched, with paired bootstrap intervals;
* the per-scenario table (cart, browse, birthday, ...) of rules, engine and oracle,
  the same by action and channel, and what the engine's exploratory picks earned;
* the detailed table (conversions, revenue per contact...) and the contact mix;
* the scale: customer-days per minute of each policy, and the sum over policies.

With several seeds, the medians of the ratios close the report. Finally, with
``--batch-customers``, it measures batch decisions
(``serving.batch_decisions.decide_audience``) on the world's profiles repeated
under new ids.

    .venv/bin/python benchmarks/bench_closed_loop.py --customers 3000 --days 30 --seeds 0
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from serving.batch_decisions import decide_audience
from simulator.closed_loop import ClosedLoopConfig, Message, build_world, compare_policies
from simulator.closed_loop.comparison import ClosedLoopResult
from simulator.closed_loop.metrics import ratio_of_totals_interval
from simulator.closed_loop.policies import split_matched
from simulator.closed_loop.runner import loop_start
from simulator.closed_loop.truth import as_ns
from simulator.closed_loop.world import ClosedLoopWorld, example_contact_policy

DEFAULT_POLICIES = "nothing,random~nba,rules,nba,oracle,oracle~nba"
#: Policies of the by-action table, when they ran.
ACTION_POLICIES = ("rules", "nba", "nba-greedy", "oracle~nba")
#: (policy, baseline, goal): the issue's goals on true incremental margin.
GOALS: tuple[tuple[str, str, float], ...] = (
    ("nba", "random~nba", 2.0),
    ("nba", "oracle~nba", 0.9),
    ("nba", "oracle", 0.9),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--history-days", type=int, default=60)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seeds", default="0", help="Comma-separated seeds, one world each.")
    parser.add_argument("--policies", default=DEFAULT_POLICIES)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Policy processes at a time (default 0: one per policy, sharing the cores; "
        "fewer to save memory).",
    )
    parser.add_argument("--batch-customers", type=int, default=0)
    parser.add_argument("--batch-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--truth-calls",
        type=int,
        default=0,
        help="Also time this many one-decision truth calls, by customer row vs by id.",
    )
    parser.add_argument("--out", type=Path, help="Also write the report (Markdown) here.")
    parser.add_argument(
        "--simulator-defaults",
        action="store_true",
        help="The simulator's default world instead of the playbook world (sign-ups, a "
        "launch in the horizon, the cut on 2026-03-06, the sourced relevance cap).",
    )
    parser.add_argument(
        "--supersede-lead-minutes",
        type=float,
        default=None,
        help="Let a policy replace a message it scheduled and has not sent, at least this "
        "many minutes before its send time (the contact policy's supersede_lead_minutes; "
        "default: the example policy's, off).",
    )
    parser.add_argument(
        "--offer-trial-share",
        type=float,
        default=None,
        help="Let the engine try incentives its offer-pays test refuses on priors on this "
        "share of the customers (the contact policy's offer_trial_share, nba.offer_trial; "
        "default: the example policy's).",
    )
    args = parser.parse_args(argv)

    load = os.getloadavg()
    lines = [
        "## Closed loop",
        "",
        "```",
        "$ " + shlex.join([".venv/bin/python", "benchmarks/bench_closed_loop.py", *sys.argv[1:]]),
        "```",
        "",
        f"Hardware: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()}; load average at the "
        f"start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.",
        "",
    ]
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    ratios: dict[tuple[str, str], list[float]] = {}
    ok = True
    printed = 0
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        config = ClosedLoopConfig(
            n_customers=args.customers,
            history_days=args.history_days,
            days=args.days,
            seed=seed,
            playbook=not args.simulator_defaults,
        )
        started = time.perf_counter()
        contact_policy = None
        overrides: dict[str, float] = {}
        if args.supersede_lead_minutes is not None:
            overrides["supersede_lead_minutes"] = args.supersede_lead_minutes
        if args.offer_trial_share is not None:
            overrides["offer_trial_share"] = args.offer_trial_share
        if overrides:
            contact_policy = ContactPolicy.from_dict(overrides, base=example_contact_policy())
        world = build_world(config, contact_policy=contact_policy)
        built = time.perf_counter() - started
        workers = args.workers or len(policies)
        started, cpu = time.perf_counter(), _cpu_seconds()
        start = loop_start(world, workers=workers) if workers > 1 else None
        begun, begun_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        begun_peak = _max_rss_mb(resource.RUSAGE_SELF)
        started, cpu = time.perf_counter(), _cpu_seconds()
        result = compare_policies(world, policies, workers=workers, start=start)
        ran, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        del start  # the runs changed their copies only; the parent's is not needed now
        lines += seed_report(result, seed, built, ran, workers, cpu)
        lines.append(
            f"- the runs' start (profiles at the cut in a store, the background's ops; once "
            f"for every policy): {begun:.0f} s, {begun_cpu:.0f} CPU-s; peak memory of this "
            f"process (max RSS) once the world and the start were built {begun_peak:,.0f} MB"
        )
        for a, b, _ in GOALS:
            if a in result.runs and b in result.runs:
                ratio, _, _ = ratio_of_totals_interval(
                    result.runs[a], result.runs[b], world.customer_ids
                )
                ratios.setdefault((a, b), []).append(ratio)
        ok = ok and all(m.violations == 0 for m in result.metrics)
        if args.batch_customers > 0:
            lines += ["", *batch_report(world, args.batch_customers, args.batch_workers)]
        if args.truth_calls > 0:
            lines += ["", *truth_call_report(world, args.truth_calls)]
        print("\n".join(lines[printed:]), flush=True)  # each world as it completes
        printed = len(lines)
    lines += ["", "### Goals (median over seeds)", ""]
    for a, b, goal in GOALS:
        values = ratios.get((a, b))
        if values:
            median = statistics.median(values)
            verdict = "met" if median >= goal else "not met"
            shown = ", ".join(f"{v:.2f}" for v in values)
            lines.append(
                f"- {a} / {b}: {median:.2f}x (seeds: {shown}); goal >= {goal:g}x: {verdict}"
            )
    print("\n".join(lines[printed:]))
    report = "\n".join(lines)
    if args.out is not None:
        args.out.write_text(report + "\n")
    return 0 if ok else 1


def seed_report(
    result: ClosedLoopResult, seed: int, built: float, ran: float, workers: int, cpu: float
) -> list[str]:
    """The headline, the scenarios, the details and the scale of one world (``ran``
    seconds of wall time and ``cpu`` seconds of CPU, all processes, for the policies)."""
    world = result.world
    config = world.config
    customer_days = len(world.customer_ids) * config.days
    lines = [
        f"### Seed {seed}",
        "",
        f"{len(world.customer_ids) - len(world.arrivals):,} customers known at the cut "
        f"({world.cut:%Y-%m-%d}, after {config.history_days} days of history) and "
        f"{len(world.arrivals):,} who sign up during the horizon, "
        f"{config.days} days in closed loop, decisions every {config.trigger_every_hours} h "
        f"for active customers and daily at {config.decision_hour_utc:02d}:00 UTC for everyone; "
        f"{len(world.background):,} background events. World built in {built:.0f} s, "
        f"policies run in {ran:.0f} s ({workers} workers).",
        "",
        "True incremental margin per customer over the horizon:",
        "",
        result.headline(),
        "",
        "True incremental margin per 1,000 customers, by scenario (the action's trigger):",
        "",
        result.scenarios(),
        "",
        "By action and channel, per 1,000 customers (where a gap comes from):",
        "",
        result.actions(ACTION_POLICIES),
        "",
        "Exploration (Thompson sampling's picks other than the highest expected priority):",
        "",
        *(result.exploration() or ["- no policy explored"]),
        "",
        "Details:",
        "",
        result.table(),
        "",
        "Contacts by channel, and the scale (customer-days per minute of one process):",
        "",
    ]
    total = 0.0
    for metrics in result.metrics:
        mix = ", ".join(f"{k} {v:,}" for k, v in sorted(metrics.contacts_by_channel.items()))
        total += metrics.seconds
        rate = customer_days / metrics.seconds * 60 if metrics.seconds else float("nan")
        cpu_seconds = result.runs[metrics.policy].cpu_seconds
        per_cpu = customer_days / cpu_seconds * 60 if cpu_seconds else float("nan")
        lines.append(
            f"- {metrics.policy}: {mix or 'none'}; {metrics.seconds:.0f} s, "
            f"{rate:,.0f} customer-days/min; CPU {cpu_seconds:.1f} s, "
            f"{per_cpu:,.0f} customer-days per CPU-minute"
        )
    rate = customer_days * len(result.metrics) / total * 60 if total else float("nan")
    lines.append(
        f"- all {len(result.metrics)} policies: {total:.0f} process-seconds for "
        f"{customer_days:,} customer-days each ({rate:,.0f} customer-days/min per process)"
    )
    wall = customer_days * len(result.metrics) / ran * 60 if ran else float("nan")
    lines.append(
        f"- wall: {ran:.0f} s for {len(result.metrics)} x {customer_days:,} customer-days "
        f"({wall:,.0f} customer-days/min on {workers} workers); peak memory (max RSS) "
        f"{_max_rss_mb(resource.RUSAGE_SELF):,.0f} MB in this process, "
        f"{_max_rss_mb(resource.RUSAGE_CHILDREN):,.0f} MB in the largest policy process"
    )
    per_cpu = customer_days * len(result.metrics) / cpu * 60 if cpu else float("nan")
    lines.append(
        f"- CPU: {cpu:.0f} s in all processes ({per_cpu:,.0f} customer-days per CPU-minute; "
        "on a loaded machine this, not the wall time, says what two idle cores would do)"
    )
    cpu_of = {name: run.cpu_seconds for name, run in result.runs.items()}
    after, alongside = two_idle_cores(cpu_of, after_reference=True), two_idle_cores(cpu_of)
    lines.append(
        f"- two idle cores, a model from the policies' CPU seconds: {alongside:.1f} s with "
        f"every policy in its own process at once (matched ones alongside their reference), "
        f"{after:.1f} s with two processes and matched policies after their reference"
    )
    return lines


def two_idle_cores(cpu: dict[str, float], *, after_reference: bool = False) -> float:
    """Seconds the policies of ``cpu`` (name -> CPU seconds) take on two idle cores.

    ``after_reference``: two processes at a time, references first, a matched policy
    (``oracle~nba``) started only once its reference is done. Otherwise every policy
    starts at once and the running ones share the two cores equally (a matched policy
    is assumed never to wait for its reference's ticks).

    >>> two_idle_cores({"nba": 10, "rules": 4, "oracle~nba": 10})
    12.0
    >>> two_idle_cores({"nba": 10, "rules": 4, "oracle~nba": 10}, after_reference=True)
    20.0
    """
    remaining = dict(cpu)
    referenced = {split_matched(name)[1] for name in cpu}
    order = sorted(cpu, key=lambda name: name not in referenced)
    running: list[str] = []
    clock = 0.0
    while remaining:
        for name in order:
            reference = split_matched(name)[1]
            if name in running or name not in remaining:
                continue
            if after_reference and (
                len(running) >= 2 or (reference is not None and reference in remaining)
            ):
                continue
            running.append(name)
        rate = min(1.0, 2.0 / len(running))
        step = min(remaining[name] for name in running) / rate
        clock += step
        for name in list(running):
            remaining[name] -= step * rate
            if remaining[name] <= 1e-9:
                del remaining[name]
                running.remove(name)
    return clock


def _cpu_seconds() -> float:
    """User and system CPU of this process and of its finished children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _max_rss_mb(who: int) -> float:
    """Peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(who).ru_maxrss / 1024


def truth_call_report(world: ClosedLoopWorld, calls: int, repeats: int = 5) -> list[str]:
    """The oracle's per-decision truth call (5 to 11 slots of one customer, 8 on average),
    as :class:`~simulator.closed_loop.truth.TrueValue` makes it (customer rows resolved
    once), against the same calls by customer id (the model's pandas lookup, as before)
    and against all their slots valued in one call (what a tick's decisions would cost
    valued together), with how many of those margins differ from the per-call ones (to
    the bit); alternated, ``repeats`` times, medians of CPU seconds."""
    truth, response = world.truth, world.response
    ids = world.customer_ids
    message = Message("promo", "shoes")
    # (customer, send times): one customer per call, a varying number of slots
    made = [
        (ids[i % len(ids)], [world.cut + dt.timedelta(hours=9 + h) for h in range(5 + i % 7)])
        for i in range(calls)
    ]
    n = sum(len(at) for _, at in made)
    margins: dict[str, np.ndarray] = {}

    def by_row() -> None:
        margins["rows"] = np.concatenate(
            [
                truth.incremental(
                    [c] * len(at), [Channel.EMAIL] * len(at), at, [message] * len(at), [1] * len(at)
                ).margin
                for c, at in made
            ]
        )

    def by_id() -> None:
        for c, at in made:
            customers = np.asarray([c] * len(at), dtype=object)
            response.expected_value(
                customers, "email", as_ns(at), kind="promo", category="shoes", recent_contacts=1.0
            )
            response.baseline(customers, as_ns(at))

    def batched() -> None:
        margins["batched"] = truth.incremental(
            [c for c, at in made for _ in at],
            [Channel.EMAIL] * n,
            [t for _, at in made for t in at],
            [message] * n,
            [1] * n,
        ).margin

    timings: dict[str, list[float]] = {"rows": [], "ids": [], "batched": []}
    for _ in range(repeats):
        for name, run in (("rows", by_row), ("ids", by_id), ("batched", batched)):
            started = time.process_time()
            run()
            timings[name].append(time.process_time() - started)
    rows, by_ids, together = (statistics.median(timings[k]) for k in ("rows", "ids", "batched"))
    differ = margins["rows"] != margins["batched"]
    largest = float(np.abs(margins["rows"] - margins["batched"]).max())
    return [
        "Truth calls (the oracle's per-decision valuation), "
        f"{calls:,} calls of 5-11 slots ({n:,} in all), CPU medians of {repeats} alternated "
        f"runs: by customer row {rows / calls * 1e3:.3f} ms/call, by customer id (before) "
        f"{by_ids / calls * 1e3:.3f} ms/call ({by_ids / rows:.2f}x the rows'); all in one "
        f"call {together / calls * 1e3:.3f} ms per call's slots ({rows / together:.0f}x "
        f"cheaper), where {int(differ.sum()):,} of the {n:,} margins differ from the "
        f"per-call ones (largest difference {largest:.1e}: the last bits).",
    ]


def batch_report(world: ClosedLoopWorld, n: int, workers: int) -> list[str]:
    """Batch decisions for ``n`` customers: the world's profiles repeated under new ids."""
    base = world.build.profiles
    audience = [dataclasses.replace(base[i % len(base)], customer_id=f"B{i:07d}") for i in range(n)]
    now = world.cut + dt.timedelta(hours=9)
    started = time.perf_counter()
    table = decide_audience(audience, world.catalog, world.contact_policy, now, workers=workers)
    decided = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        table.to_parquet(Path(folder) / "decisions.parquet", index=False)
        written = time.perf_counter() - started
    contacts = int(table["channel"].notna().sum())
    return [
        "## Batch decisions",
        "",
        f"{n:,} customers ({len(base):,} simulated profiles repeated under new ids), "
        f"engine with the example catalog, {workers} workers: decided in {decided:.0f} s "
        f"({n / decided:,.0f} customers/s), {contacts:,} contacts, "
        f"Parquet written in {written:.1f} s.",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
