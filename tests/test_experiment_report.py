"""Experiment reports in a real MLflow store (SQLite in a temporary folder), the
``report`` and ``screenshot`` commands, and the screenshot itself when Chromium is there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from cli.experiments import experiments_app
from experiments.analysis import ExperimentAnalysis, analyse_experiment
from experiments.decision_log import JsonlDecisionLog, read_log
from experiments.report import markdown_report, report_experiment
from experiments.screenshot import find_chromium, screenshot_report
from nba.decision import LoggedDecision
from tests.test_analysis import CONFIG, synthetic

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment folder as ``nba experiments simulate`` writes it, from synthetic data."""
    out = tmp_path_factory.mktemp("experiment")
    log, events = synthetic(CONFIG, 3000, seed=5)
    records = [
        LoggedDecision.from_dict(
            {
                "decision_id": d,
                "customer_id": part["customer_id"].iloc[0],
                "decided_at": part["decided_at"].iloc[0].isoformat(),
                "policy": part["policy"].iloc[0],
                "arm": part["arm"].iloc[0],
                "propensity": 1.0,
                "actions": [
                    {"action_id": a, "channel": c, "send_at": s.isoformat(), "propensity": 1.0}
                    for a, c, s in zip(
                        part["action_id"], part["channel"], part["send_at"], strict=True
                    )
                    if isinstance(a, str)
                ],
            }
        )
        for d, part in log.groupby("decision_id", sort=False)
    ]
    with JsonlDecisionLog(out / "decisions") as sink:
        sink.append(records)
    events.to_parquet(out / "events.parquet", index=False)
    (out / "experiment.json").write_text(json.dumps(CONFIG.to_dict()))
    pd.DataFrame({"customer_id": log["customer_id"].unique(), "segment": "all"}).to_csv(
        out / "segments.csv", index=False
    )
    assert len(read_log(out / "decisions").decisions) == len(records)
    return out


@pytest.fixture(scope="module")
def analysis() -> ExperimentAnalysis:
    log, events = synthetic(CONFIG, 3000, seed=5)
    return analyse_experiment(CONFIG, log, events, bootstrap=False)


def test_report_logs_metrics_plots_tables_and_a_readable_report(
    store: str, analysis: ExperimentAnalysis, tmp_path: Path
) -> None:
    run = report_experiment("spring", analysis, store)
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("campaign:spring")
    assert experiment is not None and experiment.experiment_id == run.experiment_id
    logged = client.get_run(run.run_id)
    metrics = logged.data.metrics
    engine = next(a for a in analysis.arms if a.arm == "engine")
    assert metrics["arm.engine.conversion_rate"] == pytest.approx(engine.conversion_rate)
    assert metrics["arm.control.customers"] == analysis.control.customers  # type: ignore[union-attr]
    uplift = analysis.uplift("engine", "revenue_per_customer")
    assert metrics["uplift.engine.revenue_per_customer"] == pytest.approx(uplift.difference)
    assert metrics["uplift.engine.revenue_per_customer.low"] == pytest.approx(uplift.ci[0])
    assert metrics["guardrail.engine.unsubscribe_rate.breached"] == 1.0
    history = client.get_metric_history(run.run_id, "daily.engine.difference")
    assert len(history) == len(analysis.daily[analysis.daily["arm"] == "engine"])
    assert logged.data.params["arm.engine"] == "champion, 0.45"
    note = logged.data.tags["mlflow.note.content"]
    assert "**engine**: revenue per customer" in note
    artifacts = {a.path for a in client.list_artifacts(run.run_id)}
    assert artifacts == {
        "uplift.png", "cumulative.png", "channels.png", "channels.csv", "segments.csv",
        "daily.csv", "summary.json", "report.md", "report.html",
    }  # fmt: skip
    local = Path(client.download_artifacts(run.run_id, "report.html", str(tmp_path)))
    page = local.read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "Guardrail unsubscribe rate, engine: <strong>BREACHED</strong>" in page
    assert "The difference is statistically significant." in page
    channels = pd.read_csv(client.download_artifacts(run.run_id, "channels.csv", str(tmp_path)))
    assert set(channels["channel"]) == {"email", "sms"}
    # artifacts live beside the SQLite store, not in the working directory
    assert experiment.artifact_location.startswith(Path(store[len("sqlite:///") :]).parent.as_uri())
    again = report_experiment("spring", analysis, store, run_name="second look")
    assert again.experiment_id == run.experiment_id and again.run_id != run.run_id


def test_markdown_report_reads_as_sentences(analysis: ExperimentAnalysis) -> None:
    text = markdown_report(analysis)
    assert text.startswith("# Experiment spring")
    assert "Sample ratio: OK" in text
    assert "| arm | kind | allocation | customers |" in text
    assert "always-valid" in text


def test_cli_report_prints_where_to_look(store: str, folder: Path) -> None:
    result = runner.invoke(
        experiments_app,
        ["report", "spring-cli", "--results", str(folder), "--tracking-uri", store],
    )
    assert result.exit_code == 0, result.output
    assert f"mlflow ui --backend-store-uri {store}" in result.output
    assert "campaign:spring-cli" in result.output
    experiment = MlflowClient(tracking_uri=store).get_experiment_by_name("campaign:spring-cli")
    assert experiment is not None
    assert f"#/experiments/{experiment.experiment_id}/runs/" in result.output


def test_cli_screenshot_without_a_report_says_so(store: str) -> None:
    if find_chromium() is None:
        result = runner.invoke(experiments_app, ["screenshot", "nothing", "--tracking-uri", store])
        assert result.exit_code == 3 and "apt-get install -y chromium" in result.output
        return
    result = runner.invoke(experiments_app, ["screenshot", "nothing", "--tracking-uri", store])
    assert result.exit_code == 2 and "no report for campaign 'nothing'" in result.output


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (apt-get install -y chromium)")
@pytest.mark.skipif(
    os.environ.get("NBA_SCREENSHOT_TEST") != "1",
    reason="starts mlflow server and Chromium (30-120 s); set NBA_SCREENSHOT_TEST=1",
)
def test_screenshot_shows_the_run_in_the_mlflow_ui(
    store: str, analysis: ExperimentAnalysis, tmp_path: Path
) -> None:
    run = report_experiment("spring-shot", analysis, store)
    shots = screenshot_report(
        store, run.experiment_id, run.run_id, run.run_name, tmp_path / "run.png"
    )
    for png in (shots.run_page, shots.report):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_revenue_per_fan_compares_arms_on_each_channels_opted_in_customers() -> None:
    log, events = synthetic(CONFIG, 3000, seed=5)
    ids = pd.Series(log["customer_id"].unique())
    consents = pd.DataFrame(
        {"customer_id": ids, "consent_email": True, "consent_sms": ids.str[-1].isin(list("02468"))}
    )
    analysis = analyse_experiment(CONFIG, log, events, bootstrap=False, consents=consents)
    fans = analysis.fans.set_index(["channel", "arm"])
    customers = analysis.customers.set_index("customer_id")
    for arm in CONFIG.arms:
        mine = customers[customers["arm"] == arm.name]
        assert fans.loc[("email", arm.name), "fans"] == len(mine)  # everyone is an e-mail fan
        texting = mine[mine.index.str[-1].isin(list("02468"))]
        assert fans.loc[("sms", arm.name), "fans"] == len(texting)
        assert fans.loc[("sms", arm.name), "revenue_per_fan"] == pytest.approx(
            texting["revenue"].mean()
        )
    assert "## Revenue per fan" in markdown_report(analysis)
    assert "Revenue per fan" not in markdown_report(
        analyse_experiment(CONFIG, log, events, bootstrap=False)
    )
