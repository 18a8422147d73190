"""``nba experiments ...``: run, analyse and report experiments.

* ``simulate``: an A/B test of the engine against the rule-based journeys and a
  control group on the simulated retailer (closed loop); writes the decision
  log, the outcome events, the segments, the configuration and the truth;
* ``analyse``: per arm conversion, revenue per customer, uplift vs control with
  95 % intervals, sample-ratio check, guardrails, breakdowns;
* ``report NAME``: the same, logged to MLflow (experiment ``campaign:NAME``)
  with plots and a readable report;
* ``screenshot NAME``: a PNG of the report as the MLflow UI shows it.

An experiment folder holds ``experiment.json`` (or ``.yaml``), ``decisions/``
(the decision log), ``events.parquet`` (or ``.csv``: contract events) and,
optionally, ``segments.csv`` (``customer_id,segment``) and ``consents.csv``
(``customer_id,consent_<channel>...``: opted in at the start, for revenue per fan).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cli.support import EXIT_BAD_INPUT, EXIT_UNAVAILABLE, console, fail

if TYPE_CHECKING:
    import pandas as pd

    from experiments.analysis import ExperimentAnalysis
    from nba.experiment import ExperimentConfig

experiments_app = typer.Typer(
    help="Experiments: simulate an A/B test, analyse it, report it in MLflow.",
    no_args_is_help=True,
)

Folder = Annotated[
    Path,
    typer.Option(
        "--results", help="Experiment folder: experiment.json, decisions/, events.parquet."
    ),
]
DataDir = Annotated[
    Path,
    typer.Option(
        envvar="NBA_DATA_DIR", help="Where the local MLflow store lives (data/mlflow.db)."
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or the local store)."),
]
Attribution = Annotated[
    str, typer.Option(help="Channel credit: last_touch or position_based (40/20/40).")
]


@experiments_app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the experiment to.")] = Path(
        "data/experiment"
    ),
    customers: Annotated[int, typer.Option(min=50, help="Simulated customers.")] = 2000,
    days: Annotated[int, typer.Option(min=1, max=120, help="Days the experiment runs.")] = 30,
    history_days: Annotated[int, typer.Option(min=14, help="Simulated days before it.")] = 45,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 0,
    experiment: Annotated[
        Path | None,
        typer.Option(
            help="Experiment YAML (arms, allocation, salt, guardrails); its start "
            "and end are replaced by the simulated days."
        ),
    ] = None,
    trigger_every_hours: Annotated[
        int, typer.Option(help="Hours between decision rounds for active customers.")
    ] = 6,
) -> None:
    """Simulate an A/B test of the engine against rule-based journeys and a control group."""
    from experiments.ab_simulation import run_simulated_experiment

    config = _config(experiment) if experiment else None
    if 24 % trigger_every_hours:
        raise fail("--trigger-every-hours must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)")
    out_console = console()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=out_console,
    ) as progress:
        task = progress.add_task(f"simulating {days} days of the experiment", total=None)
        try:
            result = run_simulated_experiment(
                out,
                customers=customers,
                days=days,
                seed=seed,
                history_days=history_days,
                trigger_every_hours=trigger_every_hours,
                config=config,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except ValueError as error:
            raise fail(str(error)) from None
    decisions = len(result.run.decisions)
    out_console.print(
        f"[bold]{result.config.name}[/]: {len(result.world.customer_ids):,} customers, "
        f"{decisions:,} decisions, {len(result.run.contacts):,} contacts, "
        f"{result.run.seconds:.0f} s; written to {out}"
    )
    table = Table(title="True uplift vs control (known only to the simulator)")
    for column in ("arm", "customers", "contacts", "revenue / customer", "margin / customer"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, truth in result.truth.items():
        table.add_row(
            arm,
            f"{truth['customers']:,.0f}",
            f"{truth['contacts']:,.0f}",
            f"{truth['revenue_per_customer']:.3f}",
            f"{truth['margin_per_customer']:.3f}",
        )
    out_console.print(table)
    out_console.print(f"next: nba experiments analyse --results {out}")


@experiments_app.command()
def analyse(
    results: Folder = Path("data/experiment"),
    attribution: Attribution = "last_touch",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the summary as JSON here.")
    ] = None,
) -> None:
    """Per arm: conversion, revenue per customer, uplift vs control with 95 % CIs, checks,
    and what won, in words."""
    from experiments.report import conclusion

    analysis = _analyse(results, attribution)
    _print_analysis(analysis)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        summary = analysis.summary() | {"conclusion": conclusion(analysis)}
        json_out.write_text(json.dumps(summary, indent=2, default=str))
        console().print(f"summary written to {json_out}")


@experiments_app.command()
def report(
    name: Annotated[str, typer.Argument(help="Campaign name: MLflow experiment campaign:NAME.")],
    results: Folder = Path("data/experiment"),
    data_dir: DataDir = Path("data"),
    tracking_uri: TrackingUri = None,
    attribution: Attribution = "last_touch",
) -> None:
    """Analyse the experiment and log the report to MLflow (experiment ``campaign:NAME``)."""
    from experiments.report import report_experiment
    from training.registry import default_tracking_uri

    analysis = _analyse(results, attribution)
    uri = tracking_uri or default_tracking_uri(data_dir)
    out = console()
    with out.status("logging the report to MLflow"):
        run = report_experiment(name, analysis, uri)
    _print_analysis(analysis)
    out.print(
        f"\nlogged run [bold]{run.run_name}[/] to MLflow experiment [bold]{run.experiment_name}[/]"
    )
    out.print("see it in the MLflow UI:")
    out.print(f"  mlflow ui --backend-store-uri {uri} --port 5000", soft_wrap=True)
    out.print(f"  then open http://127.0.0.1:5000{run.ui_path}", soft_wrap=True)
    out.print("  (Overview: the outcome; Artifacts: report.html, plots, tables)")


@experiments_app.command()
def screenshot(
    name: Annotated[str, typer.Argument(help="Campaign name: MLflow experiment campaign:NAME.")],
    out: Annotated[Path, typer.Option(help="PNG of the run page (report: NAME-report.png).")] = (
        Path("data/experiment-report.png")
    ),
    data_dir: DataDir = Path("data"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Screenshot the latest report of campaign NAME in the MLflow UI (headless Chromium)."""
    from experiments.report import latest_report
    from experiments.screenshot import ScreenshotError, find_chromium, screenshot_report
    from training.registry import default_tracking_uri

    binary = find_chromium()
    if binary is None:
        raise fail(
            "no Chromium found; on Debian or Ubuntu: apt-get install -y chromium", EXIT_UNAVAILABLE
        )
    uri = tracking_uri or default_tracking_uri(data_dir)
    run = latest_report(name, uri)
    if run is None:
        raise fail(f"no report for campaign {name!r} in {uri}; run: nba experiments report {name}")
    with console().status("starting mlflow server and Chromium"):
        try:
            shots = screenshot_report(
                uri,
                run.experiment_id,
                run.run_id,
                run.run_name,
                out,
                chromium=binary,
            )
        except ScreenshotError as error:
            raise fail(str(error), EXIT_UNAVAILABLE) from None
    console().print(f"run page: {shots.run_page}\nreport:   {shots.report}")


def _config(path: Path) -> ExperimentConfig:
    from experiments.config import load_experiment
    from nba.experiment import ExperimentError

    try:
        return load_experiment(path)
    except ExperimentError as error:
        raise fail(str(error)) from None


def _analyse(results: Path, attribution: str) -> ExperimentAnalysis:
    import pandas as pd

    from experiments.analysis import analyse_experiment
    from experiments.attribution import MODELS
    from experiments.decision_log import DecisionLogError, read_decision_log

    model = next((m for m in MODELS if m == attribution), None)
    if model is None:
        raise fail(f"--attribution: {attribution!r} is not one of: {', '.join(MODELS)}")
    if not results.is_dir():
        raise fail(f"{results}: no such experiment folder (run: nba experiments simulate)")
    config_path = next(
        (
            results / f
            for f in ("experiment.json", "experiment.yaml", "experiment.yml")
            if (results / f).exists()
        ),
        None,
    )
    if config_path is None:
        raise fail(f"{results}: no experiment.json or experiment.yaml")
    config = _config(config_path)
    try:
        decisions = read_decision_log(results / "decisions")
    except DecisionLogError as error:
        raise fail(str(error)) from None
    if decisions.empty:
        raise fail(f"{results / 'decisions'}: the decision log is empty or missing")
    events = _events(results)
    segments = _segments(results / "segments.csv")
    consents_path = results / "consents.csv"
    consents = pd.read_csv(consents_path) if consents_path.exists() else None
    try:
        return analyse_experiment(
            config,
            decisions,
            events,
            segments=segments,
            attribution_model=model,
            consents=consents,
        )
    except ValueError as error:
        raise fail(f"{results}: {error}") from None


def _events(results: Path) -> pd.DataFrame:
    import pandas as pd

    for name in ("events.parquet", "events.csv"):
        path = results / name
        if path.exists():
            frame = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
            missing = {"event_id", "customer_id", "timestamp", "event_type"} - set(frame.columns)
            if missing:
                raise fail(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            return frame
    raise fail(f"{results}: no events.parquet or events.csv", EXIT_BAD_INPUT)


def _segments(path: Path) -> dict[str, str] | None:
    import pandas as pd

    if not path.exists():
        return None
    frame = pd.read_csv(path, dtype=str)
    if not {"customer_id", "segment"} <= set(frame.columns):
        raise fail(f"{path}: expected columns customer_id,segment")
    return dict(zip(frame["customer_id"], frame["segment"], strict=True))


def _fmt(x: float, percent: bool = False) -> str:
    if math.isnan(x):
        return "n/a"
    return f"{x:.2%}" if percent else f"{x:,.2f}"


def _difference(x: float, points: bool) -> str:
    if math.isnan(x):
        return "n/a"
    return f"{x * 100:+.2f} pp" if points else f"{x:+,.2f}"


def _print_analysis(analysis: ExperimentAnalysis) -> None:
    from rich.markup import escape

    from experiments.analysis import SRM_P_VALUE
    from experiments.report import conclusion

    out = console()
    arms = Table(title=f"Experiment {analysis.config.name}")
    for column in ("arm", "kind", "customers", "contacts", "conversion", "revenue / customer"):
        arms.add_column(column, justify="left" if column in ("arm", "kind") else "right")
    for a in analysis.arms:
        arms.add_row(
            a.arm,
            a.kind,
            f"{a.customers:,}",
            f"{a.contacts:,}",
            f"{_fmt(a.conversion_rate, True)} ({_fmt(a.conversion_ci[0], True)}-"
            f"{_fmt(a.conversion_ci[1], True)})",
            f"{_fmt(a.revenue_per_customer)} ({_fmt(a.revenue_ci[0])}-{_fmt(a.revenue_ci[1])})",
        )
    out.print(arms)
    uplifts = Table(title="Uplift vs control (95% CI)")
    for column in ("arm", "metric", "difference", "95% CI", "relative", "p-value"):
        uplifts.add_column(column, justify="left" if column in ("arm", "metric") else "right")
    for u in analysis.uplifts:
        points = u.metric != "revenue_per_customer"  # a difference of rates: points
        uplifts.add_row(
            u.arm,
            u.metric,
            _difference(u.difference, points),
            f"{_difference(u.ci[0], points)} to {_difference(u.ci[1], points)}",
            _fmt(u.relative, True),
            f"{u.p_value:.3g}",
        )
    out.print(uplifts)
    srm = analysis.sample_ratio
    out.print(
        f"sample ratio: {'[bold red]MISMATCH[/]' if srm.mismatch else 'ok'} (p = {srm.p_value:.2g}"
        f"; a mismatch below p = {SRM_P_VALUE:g})"
    )
    for g in analysis.guardrails:
        status = "[bold red]BREACHED[/]" if g.breached else "ok"
        out.print(
            f"guardrail {g.metric} {g.arm}: {status} ({g.value:.2%} vs {g.control:.2%} in control)"
        )
    out.print("\n[bold]Outcome[/]")
    for sentence in conclusion(analysis):
        out.print(re.sub(r"\*\*(.+?)\*\*", r"[bold]\1[/]", escape(sentence)))
