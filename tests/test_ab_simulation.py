"""The A/B test end to end on the simulator: routing, logging, analysis against the truth,
and the ``nba experiments`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.experiments import experiments_app
from experiments.ab_simulation import SimulatedExperiment, run_simulated_experiment
from experiments.analysis import ExperimentAnalysis, analyse_experiment
from experiments.decision_log import read_decision_log

runner = CliRunner()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> SimulatedExperiment:
    out = tmp_path_factory.mktemp("ab")
    return run_simulated_experiment(
        out, customers=200, days=30, seed=2, history_days=30, trigger_every_hours=12
    )


@pytest.fixture(scope="module")
def analysis(simulated: SimulatedExperiment) -> ExperimentAnalysis:
    log = read_decision_log(simulated.log_dir)
    return analyse_experiment(simulated.config, log, simulated.events, segments=simulated.segments)


def test_every_decision_is_logged_with_its_arm_and_the_arms_policy(
    simulated: SimulatedExperiment,
) -> None:
    log = read_decision_log(simulated.log_dir)
    assert log["decision_id"].nunique() == len(simulated.run.decisions)
    assert log["arm"].notna().all()
    expected = {c: simulated.config.assign(c).name for c in log["customer_id"].unique()}
    assert (log["arm"] == log["customer_id"].map(expected)).all()  # sticky, deterministic
    policies = log.groupby("arm")["policy"].unique().map(set).to_dict()
    assert policies == {"engine": {"nba"}, "journeys": {"rules"}, "control": {"control"}}
    control = log[log["arm"] == "control"]
    assert control["channel"].isna().all()  # the control group received nothing
    contacted = set(simulated.run.contacts["customer_id"])
    assert not contacted & set(control["customer_id"])
    assert len(simulated.run.contacts) > 100  # the other arms did contact customers


def test_measured_uplift_interval_covers_the_true_uplift(
    simulated: SimulatedExperiment, analysis: ExperimentAnalysis
) -> None:
    for arm in ("engine", "journeys"):
        truth = simulated.truth[arm]["revenue_per_customer"]
        assert truth > 0
        measured = analysis.uplift(arm, "revenue_per_customer")
        assert measured.ci[0] <= truth <= measured.ci[1], (arm, truth, measured)
        assert measured.bootstrap_ci is not None
        assert measured.bootstrap_ci[0] <= truth <= measured.bootstrap_ci[1]
    assert simulated.truth["control"]["revenue_per_customer"] == 0.0


def test_assignment_matches_the_allocation_and_purchases_are_attributed_directly(
    analysis: ExperimentAnalysis,
) -> None:
    assert not analysis.sample_ratio.mismatch
    assert sum(analysis.sample_ratio.observed.values()) == len(analysis.customers)
    control = analysis.control
    assert control is not None and control.contacts == 0
    assert analysis.channels["contacts"].sum() == sum(a.contacts for a in analysis.arms)
    assert set(analysis.segments["segment"]) <= {
        "new", "active", "at_risk", "lapsed", "prospect"
    }  # fmt: skip
    assert len(analysis.daily) == 2 * 37  # 30 days and the 7-day window, for two arms


def test_purchases_caused_by_messages_carry_their_decision(
    simulated: SimulatedExperiment,
) -> None:
    loop = simulated.events[simulated.events["decision_id"].notna()]
    purchases = loop[loop["event_type"] == "purchase"]
    assert len(purchases) == int(simulated.run.contacts["converted"].sum())
    sent = loop[loop["event_type"] == "message_sent"]
    assert len(sent) == len(simulated.run.contacts)


def test_cli_analyse_prints_the_uplift_and_writes_the_summary(
    simulated: SimulatedExperiment, tmp_path: Path
) -> None:
    folder = simulated.log_dir.parent
    out = tmp_path / "summary.json"
    result = runner.invoke(
        experiments_app, ["analyse", "--results", str(folder), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Uplift vs control" in result.output and "engine" in result.output
    summary = json.loads(out.read_text())
    assert summary["experiment"] == "simulated_ab"
    assert {u["arm"] for u in summary["uplifts"]} == {"engine", "journeys"}
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["engine"]["revenue_per_customer"] > 0


def test_cli_simulate_writes_an_experiment_folder(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    result = runner.invoke(
        experiments_app,
        ["simulate", "--out", str(out), "--customers", "60", "--days", "2",
         "--history-days", "14", "--trigger-every-hours", "12"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "True uplift vs control" in result.output
    for name in ("experiment.json", "events.parquet", "segments.csv", "truth.json"):
        assert (out / name).exists()
    assert len(read_decision_log(out / "decisions")) > 0
    assert pd.read_parquet(out / "events.parquet")["timestamp"].dt.tz is not None


def test_cli_refuses_bad_input_with_a_message(tmp_path: Path) -> None:
    missing = runner.invoke(experiments_app, ["analyse", "--results", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such experiment folder" in missing.output
    (tmp_path / "experiment.yaml").write_text("name: x\narms: []\n")
    bad = runner.invoke(experiments_app, ["analyse", "--results", str(tmp_path)])
    assert bad.exit_code == 2
    assert "field 'arms': list at least two arms" in bad.output
    assert "experiment.yaml" in bad.output
    trigger = runner.invoke(
        experiments_app, ["simulate", "--out", str(tmp_path / "x"), "--trigger-every-hours", "5"]
    )
    assert trigger.exit_code == 2 and "must divide 24" in trigger.output
