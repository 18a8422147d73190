"""``nba experiments ope``: off-policy evaluation of candidate policies.

Two modes, the same estimators (IPS, SNIPS, doubly robust, direct method) with
95 % intervals and overlap diagnostics:

* ``--log DIR --events DATA``: the API's own decision log and the events it
  received (:func:`experiments.ope_api.evaluate_log`); rewards joined by
  attribution, each candidate re-scoring every logged context; the estimates
  are logged to MLflow.
* ``--simulate``: a simulated retailer logged by the exploring engine
  (:func:`experiments.ope_validation.validate_ope`), the estimates beside each
  candidate's true value at the logged contexts and its closed-loop value.

``cli/main.py`` registers it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import numpy as np
import typer
from rich.console import Console

from cli.decide import CatalogOption, ContactPolicyOption, load_catalog, load_contact_policy
from cli.support import console as _console
from cli.support import fail as _fail

if TYPE_CHECKING:
    from experiments.ope import IntervalMethod
    from experiments.ope_api import Attribution, LogEvaluation
    from experiments.ope_api import Reward as LogReward
    from experiments.ope_validation import Reward
    from nba.catalog import Catalog
    from nba.contact_policy import ContactPolicy

REWARDS = ("margin", "revenue")
INTERVALS = ("normal", "bootstrap")


def ope(
    log: Annotated[
        Path | None,
        typer.Option(
            "--log", help="The API's decision log (NBA_DECISION_LOG_DIR) to evaluate from."
        ),
    ] = None,
    events: Annotated[
        list[Path] | None,
        typer.Option(
            "--events",
            help="With --log: first the contract data set the API's profiles were "
            "materialised from, then the event archive (NBA_ARCHIVE_DIR) or exported data "
            "sets of what it received (repeat the option).",
        ),
    ] = None,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Log decisions on a simulated retailer and check the estimates against its "
            "ground truth.",
        ),
    ] = False,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="Candidate policy to evaluate (repeat the option for several): rules, random, "
            "nba-greedy, nba, and with --log also logged (the logging policy itself). "
            "Default: rules, random and nba-greedy (and logged with --log).",
        ),
    ] = None,
    attribution: Annotated[
        str,
        typer.Option(
            help="With --log: how outcomes earn a decision credit: direct (the event "
            "carries its decision_id), last_touch or position_based (direct, else the window)."
        ),
    ] = "last_touch",
    window_hours: Annotated[
        float, typer.Option(help="With --log: the attribution window after a send, in hours.")
    ] = 72.0,
    catalog: CatalogOption = None,
    contact_policy: ContactPolicyOption = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="With --log: MLflow tracking URI (default: the local store)."),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(envvar="NBA_DATA_DIR", help="Where the local MLflow store lives.")
    ] = Path("data"),
    customers: Annotated[int, typer.Option(help="Simulated customers.")] = 2000,
    days: Annotated[int, typer.Option(help="Days of logged decisions.")] = 7,
    history_days: Annotated[int, typer.Option(help="Days of history before them (>= 14).")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the simulation and the estimates.")] = 0,
    epsilon: Annotated[
        float, typer.Option(help="Share of logged decisions explored uniformly (0 to 1).")
    ] = 0.3,
    reward: Annotated[
        str | None,
        typer.Option(
            help="Reward per decision: margin or revenue (incremental; --simulate, default "
            "margin), revenue, conversions or clicks (attributed; --log, default revenue)."
        ),
    ] = None,
    interval: Annotated[str, typer.Option(help="Interval: normal or bootstrap.")] = "normal",
    closed_loop: Annotated[
        bool,
        typer.Option(help="Also run each candidate in closed loop to show its real value."),
    ] = True,
    out: Annotated[
        Path | None, typer.Option(help="Also write the table (Markdown) to this file.")
    ] = None,
) -> None:
    """Estimate candidate policies' value from logged decisions (IPS, SNIPS, DR, DM)."""
    if interval not in INTERVALS:
        raise _fail(f"--interval: {interval!r} is not one of: {', '.join(INTERVALS)}")
    if (log is None) == (not simulate):
        raise _fail("give either --log DIR --events DATA (the API's logs) or --simulate")
    if log is not None:
        _from_log(
            log,
            events or [],
            policy,
            reward=reward or "revenue",
            attribution=attribution,
            window_hours=window_hours,
            interval=interval,
            seed=seed,
            catalog=load_catalog(catalog),
            contact_policy=load_contact_policy(contact_policy),
            tracking_uri=tracking_uri,
            data_dir=data_dir,
            out=out,
        )
        return
    reward = reward or "margin"
    from experiments.ope_validation import CANDIDATES, DEFAULT_CANDIDATES, validate_ope
    from simulator.closed_loop import ClosedLoopConfig, build_world

    candidates = list(policy) if policy else list(DEFAULT_CANDIDATES)
    unknown = [p for p in candidates if p not in CANDIDATES]
    if unknown:
        raise _fail(
            f"--policy: unknown policy {unknown[0]!r} (expected one of: {', '.join(CANDIDATES)})"
        )
    if reward not in REWARDS:
        raise _fail(f"--reward: {reward!r} is not one of: {', '.join(REWARDS)}")
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


def _from_log(
    log: Path,
    events: list[Path],
    policy: list[str] | None,
    *,
    reward: str,
    attribution: str,
    window_hours: float,
    interval: str,
    seed: int,
    catalog: Catalog,
    contact_policy: ContactPolicy,
    tracking_uri: str | None,
    data_dir: Path,
    out: Path | None,
) -> None:
    """``--log``: estimate candidates from the API's decision log and events."""
    import datetime as dt

    from experiments.ope_api import (
        ATTRIBUTIONS,
        CANDIDATE_NAMES,
        LOGGED,
        REWARDS,
        OPEInputError,
        evaluate_log,
        load_events,
        log_to_mlflow,
    )
    from features.validation import DataContractError
    from training.registry import default_tracking_uri

    candidates = list(policy) if policy else [LOGGED, "rules", "random", "nba-greedy"]
    unknown = [p for p in candidates if p not in CANDIDATE_NAMES]
    if unknown:
        raise _fail(
            f"--policy: unknown policy {unknown[0]!r} (expected one of: "
            f"{', '.join(CANDIDATE_NAMES)})"
        )
    if reward not in REWARDS:
        raise _fail(f"--reward: {reward!r} is not one of: {', '.join(REWARDS)}")
    if attribution not in ATTRIBUTIONS:
        raise _fail(f"--attribution: {attribution!r} is not one of: {', '.join(ATTRIBUTIONS)}")
    if not window_hours > 0:
        raise _fail(f"--window-hours: must be positive, got {window_hours:g}")
    if not events:
        raise _fail("--events: give the contract data set the API's profiles came from")
    console = _console()
    started = time.perf_counter()
    try:
        with console.status("loading the events") as status:
            data = load_events(events)
            result = evaluate_log(
                log,
                data,
                catalog=catalog,
                contact_policy=contact_policy,
                candidates=candidates,
                reward=cast("LogReward", reward),
                attribution=cast("Attribution", attribution),
                window=dt.timedelta(hours=window_hours),
                interval=cast("IntervalMethod", interval),
                seed=seed,
                progress=status.update,
            )
    except (OPEInputError, DataContractError) as error:
        raise _fail(str(error)) from None
    _print_log_evaluation(console, result, time.perf_counter() - started)
    uri = tracking_uri or default_tracking_uri(data_dir)
    run_id = log_to_mlflow(result, uri, run_name=f"ope {log.name}")
    console.print(f"logged to MLflow ({uri}), experiment 'ope', run {run_id}", soft_wrap=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.markdown() + "\n")
        console.print(f"wrote {out}")


def _print_log_evaluation(console: Console, result: LogEvaluation, seconds: float) -> None:
    replay = result.replay
    n = result.n_rounds
    console.print(
        f"{n:,} logged decisions, {int(np.count_nonzero(result.reward)):,} with a credited "
        f"outcome; logged policy's own value {float(np.mean(result.reward)):.4f} "
        f"{result.reward_name} per decision ({seconds:.0f} s)"
    )
    logged = n + (result.withdrawn if result.withdrawn_as == "dropped" else 0)
    if result.withdrawn:
        console.print(
            f"{result.withdrawn:,} logged decisions whose messages a later decision withdrew "
            + (
                "left out (their actions never went)"
                if result.withdrawn_as == "dropped"
                else f"counted as {result.withdrawn_as.replace('_', ' ')}"
            )
        )
    console.print(
        f"contexts rebuilt from the events: features equal to the logged ones in "
        f"{replay.features_agree:,} of {logged:,} decisions; {replay.missing_options:,} logged "
        f"options not screened again; {replay.unknown_customers:,} customers unknown",
        soft_wrap=True,
    )
    console.print(result.markdown(), soft_wrap=True, markup=False)
    for candidate in result.candidates:
        if candidate.unsupported_mass > 0:
            console.print(
                f"[yellow]warning:[/] {candidate.candidate} puts "
                f"{candidate.unsupported_mass:.1%} of its choices on actions the logger never "
                "takes there; its estimates miss that part (raise the exploration share)"
            )
