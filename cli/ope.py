"""``nba experiments ope``: off-policy evaluation of candidate policies, checked on the simulator.

A thin wrapper over :func:`experiments.ope_validation.validate_ope`: simulate a
retailer, log decisions with the exploring engine, estimate each candidate's
value per decision by IPS, SNIPS and doubly robust, and print the estimates
with their 95 % intervals and overlap diagnostics beside the candidate's true
value at the logged contexts and its value when run in closed loop.
``cli/main.py`` registers it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from cli.support import console as _console
from cli.support import fail as _fail

if TYPE_CHECKING:
    from experiments.ope import IntervalMethod
    from experiments.ope_validation import Reward

REWARDS = ("margin", "revenue")
INTERVALS = ("normal", "bootstrap")


def ope(
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Log decisions on a simulated retailer and check the estimates against its "
            "ground truth (the only mode so far).",
        ),
    ] = False,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="Candidate policy to evaluate (repeat the option for several): rules, random, "
            "nba-greedy, nba. Default: rules, random and nba-greedy.",
        ),
    ] = None,
    customers: Annotated[int, typer.Option(help="Simulated customers.")] = 2000,
    days: Annotated[int, typer.Option(help="Days of logged decisions.")] = 7,
    history_days: Annotated[int, typer.Option(help="Days of history before them (>= 14).")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the simulation and the estimates.")] = 0,
    epsilon: Annotated[
        float, typer.Option(help="Share of logged decisions explored uniformly (0 to 1).")
    ] = 0.3,
    reward: Annotated[
        str, typer.Option(help="Reward per decision: margin or revenue (incremental).")
    ] = "margin",
    interval: Annotated[str, typer.Option(help="Interval: normal or bootstrap.")] = "normal",
    closed_loop: Annotated[
        bool,
        typer.Option(help="Also run each candidate in closed loop to show its real value."),
    ] = True,
    out: Annotated[
        Path | None, typer.Option(help="Also write the table (Markdown) to this file.")
    ] = None,
) -> None:
    """Estimate candidate policies' value from logged decisions (IPS, SNIPS, doubly robust)."""
    from experiments.ope_validation import CANDIDATES, DEFAULT_CANDIDATES, validate_ope
    from simulator.closed_loop import ClosedLoopConfig, build_world

    if not simulate:
        raise _fail(
            "give --simulate: off-policy evaluation re-scores every candidate at each logged "
            "decision's context, which only the simulated loop records so far (a decision log "
            "holds the propensities but not the contexts)"
        )
    candidates = list(policy) if policy else list(DEFAULT_CANDIDATES)
    unknown = [p for p in candidates if p not in CANDIDATES]
    if unknown:
        raise _fail(
            f"--policy: unknown policy {unknown[0]!r} (expected one of: {', '.join(CANDIDATES)})"
        )
    if reward not in REWARDS:
        raise _fail(f"--reward: {reward!r} is not one of: {', '.join(REWARDS)}")
    if interval not in INTERVALS:
        raise _fail(f"--interval: {interval!r} is not one of: {', '.join(INTERVALS)}")
    if not 0.0 <= epsilon <= 1.0:
        raise _fail(f"--epsilon: must be between 0 and 1, got {epsilon}")
    for option, value, minimum in (
        ("--customers", customers, 1),
        ("--days", days, 1),
        ("--history-days", history_days, 14),
    ):
        if value < minimum:
            raise _fail(f"{option}: must be at least {minimum}, got {value}")
    config = ClosedLoopConfig(
        n_customers=customers, history_days=history_days, days=days, seed=seed
    )

    console = _console()
    started = time.perf_counter()
    with console.status("simulating the retailer") as status:
        world = build_world(config)
        result = validate_ope(
            world,
            candidates,
            epsilon=epsilon,
            reward=cast("Reward", reward),
            interval=cast("IntervalMethod", interval),
            closed_loop=closed_loop,
            seed=seed,
            progress=status.update,
        )
    n = len(result.logged.logged)
    console.print(
        f"{n:,} decisions logged over {days} days for {len(world.customer_ids):,} customers by "
        f"the engine with {epsilon:g} uniform exploration over actions and channels; "
        f"their own value: {result.logged_value:.4f} {reward} per decision "
        f"({time.perf_counter() - started:.0f} s)"
    )
    console.print(result.markdown(), soft_wrap=True, markup=False)
    console.print(
        "truth: the candidate's true expected value at the logged contexts (what single-step "
        "off-policy evaluation estimates); closed loop: its value per decision when it really "
        "runs, and so changes what comes next."
    )
    for candidate in result.candidates:
        if candidate.unsupported_mass > 0:
            console.print(
                f"[yellow]warning:[/] {candidate.candidate} puts "
                f"{candidate.unsupported_mass:.1%} of its choices on actions the logger never "
                "takes there; its estimates miss that part (raise --epsilon)"
            )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.markdown() + "\n")
        console.print(f"wrote {out}")
