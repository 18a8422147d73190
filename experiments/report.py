"""Experiment reports in MLflow, for marketers.

:func:`report_experiment` logs one run per report to the MLflow experiment
``campaign:<name>`` (one MLflow experiment per campaign):

* parameters: arms and allocation, salt, start and end, primary metric,
  attribution window;
* metrics per arm (``arm.<arm>.customers``, ``.conversion_rate``,
  ``.revenue_per_customer``, ``.unsubscribe_rate``, ``.complaint_rate``,
  ``.contacts``), uplifts vs control (``uplift.<arm>.<metric>`` with ``.low``,
  ``.high``, ``.relative``, ``.p_value``), the sample-ratio check, guardrail
  breaches, and the daily difference with its always-valid bounds as metric
  histories (``daily.<arm>.difference``, one step per day: MLflow draws them);
* artifacts: ``uplift.png`` (uplift with intervals), ``cumulative.png`` (the
  difference day by day with the fixed and always-valid bands),
  ``channels.csv`` and ``channels.png``, ``segments.csv``, ``daily.csv``,
  ``summary.json``, and the readable report as ``report.md`` and
  ``report.html`` (self-contained, pictures inlined);
* the report's headline as the run's description (``mlflow.note.content``),
  shown on the run page.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from experiments.analysis import ExperimentAnalysis, Uplift

EXPERIMENT_PREFIX = "campaign:"
_METRIC_LABELS = {
    "conversion_rate": "conversion rate",
    "revenue_per_customer": "revenue per customer",
    "unsubscribe_rate": "unsubscribe rate",
    "complaint_rate": "complaint rate",
}


@dataclass(frozen=True)
class ReportRun:
    """Where a report went: the MLflow experiment and run, and the UI path of the run."""

    experiment_name: str
    experiment_id: str
    run_id: str
    run_name: str
    tracking_uri: str

    @property
    def ui_path(self) -> str:
        """The run page, relative to the MLflow UI's address."""
        return f"/#/experiments/{self.experiment_id}/runs/{self.run_id}"


def _key(text: str) -> str:
    """A metric-name-safe version of an arm name."""
    return re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", text)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2%}"


def _num(x: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(x) else f"{x:,.{digits}f}"


def _format(metric: str, x: float) -> str:
    return _num(x) if metric == "revenue_per_customer" else _pct(x)


def _points(x: float) -> str:
    """A difference of two rates, in percentage points (not a relative change)."""
    return "n/a" if math.isnan(x) else f"{x * 100:+.2f} pp"


def _difference(metric: str, x: float) -> str:
    return _num(x) if metric == "revenue_per_customer" else _points(x)


def verdict(u: Uplift) -> str:
    """One sentence a marketer can read about an uplift."""
    label = _METRIC_LABELS.get(u.metric, u.metric)
    unit = "" if u.metric == "revenue_per_customer" else " points"
    scale = 1.0 if u.metric == "revenue_per_customer" else 100.0
    direction = "more" if u.difference >= 0 else "less"
    low, high = u.ci
    sentence = (
        f"**{u.arm}**: {label} {_format(u.metric, u.value)} vs {_format(u.metric, u.control)} "
        f"in control, {abs(u.difference) * scale:,.2f}{unit} {direction} "
        f"(95% CI {low * scale:,.2f} to {high * scale:,.2f}{unit}"
    )
    if not math.isnan(u.relative):
        sentence += f"; {u.relative:+.1%} relative"
    sentence += f"; p = {u.p_value:.3g}). "
    if u.significant:
        sentence += "The difference is statistically significant."
    else:
        sentence += "Not significant: the interval includes no difference."
    return sentence


def _amount(metric: str, x: float, signed: bool = True) -> str:
    """A difference in the metric's unit: currency (per customer), or percentage points."""
    if math.isnan(x):
        return "n/a"
    if metric == "revenue_per_customer":
        return f"{x:+,.2f}" if signed else f"{x:,.2f}"
    return f"{x * 100:+.2f} points" if signed else f"{x * 100:.2f} points"


def _interval(metric: str, u: Uplift) -> str:
    low, high = u.ci
    if metric == "revenue_per_customer":
        return f"95% CI {low:+,.2f} to {high:+,.2f}"
    return f"95% CI {low * 100:+.2f} to {high * 100:+.2f} points"


def conclusion(analysis: ExperimentAnalysis) -> list[str]:
    """What won, by how much and how sure, in sentences a marketer can act on: the
    winner against control on the primary metric (a significant gain, no breached
    guardrail), else why there is none; then the leading arm against the others."""
    config = analysis.config
    metric = config.primary_metric.value
    label = _METRIC_LABELS.get(metric, metric)
    if analysis.sample_ratio.mismatch:
        return [
            f"**Do not act on this result**: customers per arm do not match the allocation "
            f"(p = {analysis.sample_ratio.p_value:.2g}), so assignment or logging is broken "
            "and no difference below can be trusted."
        ]
    out: list[str] = []
    control = config.control
    primary = [u for u in analysis.uplifts if u.metric == metric and not math.isnan(u.ci[0])]
    breached = {g.arm for g in analysis.guardrails if g.breached}
    if control is None or not primary:
        out.append(
            "No control group (or too few customers in it): gains against doing nothing "
            "cannot be measured."
        )
    else:
        gains = sorted(
            (u for u in primary if u.ci[0] > 0 and u.arm not in breached),
            key=lambda u: -u.difference,
        )
        if gains:
            best = gains[0]
            relative = "" if math.isnan(best.relative) else f", {best.relative:+.1%}"
            out.append(
                f"**{best.arm} won**: {label} {_format(metric, best.value)} against "
                f"{_format(metric, best.control)} in {control.name}, "
                f"{_amount(metric, best.difference)} ({_interval(metric, best)}{relative}; "
                f"p = {best.p_value:.2g})."
            )
        else:
            lead = max(primary, key=lambda u: u.difference)
            out.append(
                f"**No winner**: no arm's {label} beat {control.name}'s at 95% confidence "
                f"without breaking a guardrail. The best, {lead.arm}: {label} "
                f"{_amount(metric, lead.difference)} ({_interval(metric, lead)}): "
                + (
                    "it breached a guardrail."
                    if lead.arm in breached and lead.ci[0] > 0
                    else "the interval includes no difference; more customers or a longer "
                    "run are needed to tell."
                )
            )
        for u in primary:
            if u.ci[1] < 0:
                out.append(
                    f"{u.arm} did worse than {control.name}: {label} "
                    f"{_amount(metric, u.difference)} ({_interval(metric, u)})."
                )
    for arm in sorted(breached):
        names = ", ".join(
            _METRIC_LABELS.get(g.metric, g.metric)
            for g in analysis.guardrails
            if g.arm == arm and g.breached
        )
        out.append(f"{arm} breached its guardrail ({names}): it cannot be declared a winner.")
    for c in analysis.comparisons:
        u = c.uplift
        if math.isnan(u.ci[0]):
            continue
        if u.ci[0] > 0:
            said = f"{c.leader} beat {c.other}"
        else:
            said = f"{c.leader} and {c.other} cannot be told apart"
        out.append(
            f"{said}: {label} {_amount(metric, u.difference)} ({_interval(metric, u)}; "
            f"p = {u.p_value:.2g})."
        )
    return out


def _sections(analysis: ExperimentAnalysis) -> list[tuple[str, list[str], pd.DataFrame | None]]:
    """The report as (heading, paragraphs, table) sections, rendered to Markdown and HTML."""
    config = analysis.config
    primary = config.primary_metric.value
    headline = conclusion(analysis) + [verdict(u) for u in analysis.uplifts if u.metric == primary]
    srm = analysis.sample_ratio
    checks = [
        (
            f"Sample ratio: **mismatch** (p = {srm.p_value:.2g}); customers per arm do not match "
            "the allocation, so assignment or logging is broken and uplifts cannot be trusted."
            if srm.mismatch
            else f"Sample ratio: OK (p = {srm.p_value:.2g}): customers per arm match the plan."
        )
    ]
    for g in analysis.guardrails:
        label = _METRIC_LABELS.get(g.metric, g.metric)
        status = "**BREACHED**" if g.breached else "ok"
        checks.append(
            f"Guardrail {label}, {g.arm}: {status} ({_pct(g.value)} vs {_pct(g.control)} in "
            f"control, increase {g.difference * 100:+.2f} points, 95% CI "
            f"{g.ci[0] * 100:.2f} to {g.ci[1] * 100:.2f} points; allowed increase "
            f"{g.max_increase * 100:.2f} points)."
        )
    arms = pd.DataFrame(
        [
            {
                "arm": a.arm,
                "kind": a.kind,
                "allocation": f"{a.allocation:.0%}",
                "customers": f"{a.customers:,}",
                "contacts": f"{a.contacts:,}",
                "conversion rate (95% CI)": f"{_pct(a.conversion_rate)} "
                f"({_pct(a.conversion_ci[0])} to {_pct(a.conversion_ci[1])})",
                "revenue / customer (95% CI)": f"{_num(a.revenue_per_customer)} "
                f"({_num(a.revenue_ci[0])} to {_num(a.revenue_ci[1])})",
                "unsubscribe rate": _pct(a.unsubscribe_rate),
                "complaint rate": _pct(a.complaint_rate),
            }
            for a in analysis.arms
        ]
    )
    uplifts = pd.DataFrame(
        [
            {
                "arm": u.arm,
                "metric": _METRIC_LABELS.get(u.metric, u.metric),
                "arm value": _format(u.metric, u.value),
                "control": _format(u.metric, u.control),
                "difference (95% CI)": f"{_difference(u.metric, u.difference)} "
                f"({_difference(u.metric, u.ci[0])} to {_difference(u.metric, u.ci[1])})",
                "relative (95% CI)": f"{_pct(u.relative)} "
                f"({_pct(u.relative_ci[0])} to {_pct(u.relative_ci[1])})",
                "p-value": f"{u.p_value:.3g}",
                "bootstrap 95% CI": "-"
                if u.bootstrap_ci is None
                else f"{_num(u.bootstrap_ci[0])} to {_num(u.bootstrap_ci[1])}",
            }
            for u in analysis.uplifts
        ]
    )
    channels = analysis.channels.copy()
    for column in ("conversions", "revenue", "clicks", "unsubscribes", "revenue_per_contact"):
        if column in channels:
            channels[column] = channels[column].map(lambda x: f"{x:,.2f}")
    segments = analysis.segments.copy()
    for column in segments.columns:
        if column in ("conversion_rate",):
            segments[column] = segments[column].map(_pct)
        elif segments[column].dtype.kind == "f":
            segments[column] = segments[column].map(_num)
    daily = analysis.daily
    monitoring = [
        "The always-valid interval may be checked every day: the chance that it ever "
        "excludes the true difference is at most 5%, however often you look. The usual "
        "(fixed) interval is only valid at the planned end; stopping the first day it looks "
        "significant declares false winners far more often than 5% of the time."
    ]
    if not daily.empty:
        for arm, part in daily.groupby("arm", sort=False):
            last = part.iloc[-1]
            monitoring.append(
                f"{arm}, on {last['day']}: difference {_num(last['difference'])}, always-valid "
                f"95% interval {_num(last['always_valid_low'])} to "
                f"{_num(last['always_valid_high'])}."
            )
    window = config.attribution_window.total_seconds() / 86400
    about = [
        config.description or f"Experiment {config.name}.",
        f"From {config.start:%Y-%m-%d %H:%M} to {config.end:%Y-%m-%d %H:%M} UTC; outcomes "
        f"observed until {analysis.observed_until:%Y-%m-%d %H:%M} UTC; attribution window "
        f"{window:g} days; primary metric: {_METRIC_LABELS.get(primary, primary)}.",
        "Customers count in the arm they were assigned to from their first decision on "
        "(control customers received nothing). Uplift = arm minus control, per customer.",
    ]
    return [
        (f"Experiment {config.name}", about, None),
        ("Outcome", headline + checks, None),
        ("Arms", [], arms),
        ("Uplift against control", ["![uplift](uplift.png)"], uplifts),
        ("Day by day", ["![cumulative](cumulative.png)", *monitoring], None),
        (
            "By channel",
            [
                f"Outcomes credited to each channel's messages ({analysis.attribution_model}"
                f" attribution within {window:g} days of the send).",
                "![channels](channels.png)",
            ],
            channels,
        ),
        ("By segment", ["Revenue uplift per customer against control, per segment."], segments),
        *_fan_section(analysis),
    ]


def _fan_section(
    analysis: ExperimentAnalysis,
) -> list[tuple[str, list[str], pd.DataFrame | None]]:
    """Revenue per fan: per channel, the arms compared on the customers opted in there."""
    if analysis.fans.empty:
        return []
    fans = analysis.fans.copy()
    fans["difference (95% CI)"] = [
        "-" if math.isnan(d) else f"{_num(d)} ({_num(low)} to {_num(high)})"
        for d, low, high in zip(
            fans["difference"], fans["difference_low"], fans["difference_high"], strict=True
        )
    ]
    fans["revenue_per_fan"] = fans["revenue_per_fan"].map(_num)
    fans = fans.drop(columns=["difference", "difference_low", "difference_high"])
    return [
        (
            "Revenue per fan",
            [
                "Per channel, the customers opted in there when the experiment started "
                '("fans"): their revenue per customer in each arm, and the difference to '
                "control's fans of the same channel."
            ],
            fans,
        )
    ]


def markdown_report(analysis: ExperimentAnalysis) -> str:
    """The readable report in Markdown (pictures referenced by artifact name)."""
    lines: list[str] = []
    for index, (heading, paragraphs, table) in enumerate(_sections(analysis)):
        lines += [("# " if index == 0 else "## ") + heading, ""]
        for paragraph in paragraphs:
            lines += [paragraph, ""]
        if table is not None and not table.empty:
            lines += [_markdown_table(table), ""]
    return "\n".join(lines)


def _markdown_table(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


_STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px;
       color: #222; max-width: 1100px; }
h1 { font-size: 24px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th { background: #f3f5f7; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } p { line-height: 1.45; }
"""


def html_report(analysis: ExperimentAnalysis, images: dict[str, bytes]) -> str:
    """The readable report as one self-contained HTML page (``images`` inlined)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Experiment {html.escape(analysis.config.name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
    ]
    for index, (heading, paragraphs, table) in enumerate(_sections(analysis)):
        tag = "h1" if index == 0 else "h2"
        parts.append(f"<{tag}>{html.escape(heading)}</{tag}>")
        for paragraph in paragraphs:
            image = re.fullmatch(r"!\[(.*)\]\((.*)\)", paragraph)
            if image and image.group(2) in images:
                data = base64.b64encode(images[image.group(2)]).decode()
                parts.append(
                    f"<img alt='{html.escape(image.group(1))}' src='data:image/png;base64,{data}'>"
                )
                continue
            text = html.escape(paragraph)
            text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
            parts.append(f"<p>{text}</p>")
        if table is not None and not table.empty:
            parts.append(table.to_html(index=False, border=0, escape=True))
    parts.append("</body></html>")
    return "\n".join(parts)


def uplift_figure(analysis: ExperimentAnalysis) -> Any:
    """Uplift vs control with 95 % intervals, one panel per metric."""
    metrics = ["revenue_per_customer", "conversion_rate"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, metric in zip(axes, metrics, strict=True):
        rows = [u for u in analysis.uplifts if u.metric == metric]
        scale = 1.0 if metric == "revenue_per_customer" else 100.0
        for i, u in enumerate(rows):
            low, high = (u.ci[0] * scale, u.ci[1] * scale)
            colour = "#2a9d8f" if low > 0 else ("#e76f51" if high < 0 else "#6c757d")
            ax.errorbar(
                u.difference * scale,
                i,
                xerr=[[u.difference * scale - low], [high - u.difference * scale]],
                fmt="o",
                color=colour,
                capsize=4,
            )
        ax.axvline(0, color="#333", linewidth=0.8)
        ax.set_yticks(range(len(rows)), [u.arm for u in rows])
        ax.set_ylim(-0.7, max(len(rows), 1) - 0.3)
        unit = "" if metric == "revenue_per_customer" else " (points)"
        ax.set_title(f"{_METRIC_LABELS[metric]}: arm - control{unit}")
    fig.tight_layout()
    plt.close(fig)
    return fig


def cumulative_figure(analysis: ExperimentAnalysis) -> Any:
    """The primary metric's difference vs control day by day, with the fixed-horizon
    (light) and always-valid (hatched outline) 95 % bands."""
    daily = analysis.daily
    fig, ax = plt.subplots(figsize=(10, 3.6))
    colours = ["#264653", "#e76f51", "#2a9d8f", "#f4a261", "#6a4c93"]
    for i, (arm, part) in enumerate(daily.groupby("arm", sort=False)):
        colour = colours[i % len(colours)]
        days = pd.to_datetime(part["day"])
        ax.plot(days, part["difference"], color=colour, label=f"{arm} - control")
        ax.fill_between(days, part["fixed_low"], part["fixed_high"], color=colour, alpha=0.15)
        ax.plot(days, part["always_valid_low"], color=colour, linestyle="--", linewidth=1)
        ax.plot(days, part["always_valid_high"], color=colour, linestyle="--", linewidth=1)
    ax.axhline(0, color="#333", linewidth=0.8)
    metric = analysis.config.primary_metric.value
    ax.set_title(
        f"{_METRIC_LABELS[metric]}, arm - control, as known each day "
        "(shaded: fixed 95% CI; dashed: always-valid 95% CI)"
    )
    if len(daily):
        ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    plt.close(fig)
    return fig


def channels_figure(analysis: ExperimentAnalysis) -> Any:
    """Attributed revenue per channel and arm."""
    table = analysis.channels
    fig, ax = plt.subplots(figsize=(8, 3.4))
    if not table.empty:
        pivot = table.pivot_table(index="channel", columns="arm", values="revenue", aggfunc="sum")
        pivot.fillna(0.0).plot.bar(ax=ax, rot=0)
    ax.set_ylabel("attributed revenue")
    ax.set_title(f"Revenue credited per channel ({analysis.attribution_model})")
    fig.tight_layout()
    plt.close(fig)
    return fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def report_experiment(
    name: str,
    analysis: ExperimentAnalysis,
    tracking_uri: str,
    *,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> ReportRun:
    """Log ``analysis`` as a run of the MLflow experiment ``campaign:<name>``.

    Returns where it went; open the MLflow UI on ``tracking_uri`` and follow
    :attr:`ReportRun.ui_path`.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_name = EXPERIMENT_PREFIX + name
    existing = client.get_experiment_by_name(experiment_name)
    experiment_id = (
        existing.experiment_id
        if existing is not None
        else client.create_experiment(
            experiment_name,
            artifact_location=_artifact_location(tracking_uri, name),
            tags={"nba.kind": "campaign", "nba.campaign": name},
        )
    )
    config = analysis.config
    run_name = run_name or f"{config.name} until {analysis.observed_until:%Y-%m-%d}"
    markdown = markdown_report(analysis)
    headline = "\n\n".join(_sections(analysis)[1][1])
    run = client.create_run(
        experiment_id,
        run_name=run_name,
        tags={
            "nba.kind": "experiment_report",
            "nba.experiment": config.name,
            "mlflow.note.content": f"## Outcome\n\n{headline}\n\nFull report: artifact "
            "`report.html`.",
            **(tags or {}),
        },
    )
    run_id = run.info.run_id
    try:
        metrics = list(_metrics(analysis, Metric))
        client.log_batch(
            run_id,
            params=[Param(k, v) for k, v in _params(analysis).items()],
            tags=[RunTag("nba.primary_metric", config.primary_metric.value)],
        )
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        figures = {
            "uplift.png": uplift_figure(analysis),
            "cumulative.png": cumulative_figure(analysis),
            "channels.png": channels_figure(analysis),
        }
        images = {path: _png(fig) for path, fig in figures.items()}
        for path, fig in figures.items():
            client.log_figure(run_id, fig, path)
        client.log_text(run_id, analysis.channels.to_csv(index=False), "channels.csv")
        client.log_text(run_id, analysis.segments.to_csv(index=False), "segments.csv")
        client.log_text(run_id, analysis.daily.to_csv(index=False), "daily.csv")
        client.log_text(
            run_id,
            json.dumps(
                analysis.summary() | {"conclusion": conclusion(analysis)}, indent=2, default=str
            ),
            "summary.json",
        )
        client.log_text(run_id, markdown, "report.md")
        client.log_text(run_id, html_report(analysis, images), "report.html")
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)
    return ReportRun(experiment_name, experiment_id, run_id, run_name, tracking_uri)


def latest_report(name: str, tracking_uri: str) -> ReportRun | None:
    """The most recent report run of campaign ``name``, or ``None``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_PREFIX + name)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )
    if not runs:
        return None
    info = runs[0].info
    return ReportRun(
        experiment.name, experiment.experiment_id, info.run_id, info.run_name, tracking_uri
    )


def _artifact_location(tracking_uri: str, name: str) -> str | None:
    """Artifacts beside a SQLite store (``<db dir>/mlartifacts/campaign_<name>``), as the
    model registry keeps them; the server's default elsewhere."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    root = Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts"
    return (root / f"campaign_{_key(name).replace('/', '_')}").as_uri()


def _params(analysis: ExperimentAnalysis) -> dict[str, str]:
    config = analysis.config
    params = {
        "experiment": config.name,
        "salt": config.salt,
        "start": config.start.isoformat(),
        "end": config.end.isoformat(),
        "primary_metric": config.primary_metric.value,
        "attribution_window_days": f"{config.attribution_window.total_seconds() / 86400:g}",
        "attribution_model": analysis.attribution_model,
        "observed_until": analysis.observed_until.isoformat(),
    }
    for arm in config.arms:
        params[f"arm.{_key(arm.name)}"] = f"{arm.kind.value}, {arm.allocation:g}" + (
            f", model {arm.model_version}" if arm.model_version else ""
        )
    for g in config.guardrails:
        params[f"guardrail.{g.metric.value}"] = f"max increase {g.max_increase:g}"
    return params


def _metrics(analysis: ExperimentAnalysis, metric_type: Any) -> Sequence[Any]:
    stamp = int(analysis.observed_until.timestamp() * 1000)
    values: dict[str, float] = {}
    for a in analysis.arms:
        prefix = f"arm.{_key(a.arm)}"
        values |= {
            f"{prefix}.customers": a.customers,
            f"{prefix}.contacts": a.contacts,
            f"{prefix}.conversion_rate": a.conversion_rate,
            f"{prefix}.revenue_per_customer": a.revenue_per_customer,
            f"{prefix}.unsubscribe_rate": a.unsubscribe_rate,
            f"{prefix}.complaint_rate": a.complaint_rate,
        }
    for u in analysis.uplifts:
        prefix = f"uplift.{_key(u.arm)}.{u.metric}"
        values |= {
            prefix: u.difference,
            f"{prefix}.low": u.ci[0],
            f"{prefix}.high": u.ci[1],
            f"{prefix}.relative": u.relative,
            f"{prefix}.p_value": u.p_value,
        }
    for g in analysis.guardrails:
        values[f"guardrail.{_key(g.arm)}.{g.metric}.breached"] = float(g.breached)
        values[f"guardrail.{_key(g.arm)}.{g.metric}.difference"] = g.difference
    values["sample_ratio.p_value"] = analysis.sample_ratio.p_value
    values["sample_ratio.mismatch"] = float(analysis.sample_ratio.mismatch)
    metrics = [
        metric_type(k, float(v), stamp, 0)
        for k, v in values.items()
        if v is not None and not math.isnan(float(v))
    ]
    for row in analysis.daily.itertuples(index=False):
        day_stamp = int(pd.Timestamp(str(row.day), tz="UTC").timestamp() * 1000)
        day_index = (pd.Timestamp(str(row.day)) - pd.Timestamp(analysis.config.start.date())).days
        for column in ("difference", "always_valid_low", "always_valid_high"):
            value = float(getattr(row, column))
            if math.isfinite(value):
                metrics.append(
                    metric_type(f"daily.{_key(str(row.arm))}.{column}", value, day_stamp, day_index)
                )
    return metrics
