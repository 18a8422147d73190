"""Training in a second process: the recommender trains while the other models do.

:class:`training.pipeline.BackgroundTraining` runs a pipeline's fit-and-measure half
in a forked process and hands the result to this one, which logs it; ``nba train
all`` trains the recommender that way. The model must be the one a run in this
process gives, logged and registered the same way.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from features.dataset import RetailDataset
from features.forked import Forked
from training.pipeline import BackgroundTraining, Report
from training.registry import ModelRegistry

from .test_training_pipeline import MeanQuantityModel, MeanQuantityTraining, QuantityEvaluation


class PidModel(MeanQuantityModel):
    """Remembers the process that fitted it."""

    def __init__(self, mean: float) -> None:
        super().__init__(mean)
        self.pid = os.getpid()


class PidTraining(MeanQuantityTraining):
    def _fit(
        self, data: RetailDataset, evaluation: QuantityEvaluation | None, report: Report | None
    ) -> MeanQuantityModel:
        return PidModel(float(data.events["quantity"].mean()))


class FailingTraining(MeanQuantityTraining):
    def _fit(
        self, data: RetailDataset, evaluation: QuantityEvaluation | None, report: Report | None
    ) -> MeanQuantityModel:
        raise ValueError("events: too few customers to train on")


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    stamps = pd.to_datetime(["2026-03-01 10:00", "2026-03-01 12:00", "2026-03-02 09:00"], utc=True)
    events = pd.DataFrame(
        {"customer_id": ["C1", "C2", "C1"], "timestamp": stamps, "quantity": [1, 3, 5]}
    )
    return RetailDataset(pd.DataFrame({"customer_id": ["C1", "C2"]}), None, None, events)  # type: ignore[arg-type]


def test_trained_in_another_process_then_logged_here(data: RetailDataset, tmp_path: Path) -> None:
    family = PidTraining()
    trained = BackgroundTraining(family, data, dataset_name="tiny").result()
    assert isinstance(trained.model, PidModel) and trained.model.pid != os.getpid()
    here = family.train(data, dataset_name="tiny")
    assert trained.model.mean == here.model.mean == 3.0
    assert trained.metrics.keys() == here.metrics.keys()
    assert trained.fingerprint == here.fingerprint
    assert set(trained.stages) == {"fingerprint", "evaluation", "fit", "measure"}

    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    run = family.log(trained, data, registry=registry, dataset_name="tiny", promote=True)
    assert run.version is not None and run.promoted
    assert registry.champion("test-mean-quantity") == run.version.version
    assert "logging" in run.stages and run.model.mean == 3.0


def test_an_error_in_the_other_process_is_raised_here(data: RetailDataset) -> None:
    background = BackgroundTraining(FailingTraining(), data)
    with pytest.raises(ValueError, match="too few customers"):
        background.result()


def test_a_dead_worker_is_said_at_once_not_waited_for() -> None:
    """A child killed (as the kernel does when memory runs out) or gone without a result
    raises, where a ``multiprocessing.Pool`` would wait forever for the lost task."""
    with pytest.raises(ChildProcessError, match="killed"):
        Forked(lambda: os.kill(os.getpid(), signal.SIGKILL)).result()
    with pytest.raises(ChildProcessError, match="exit code 3"):
        Forked(lambda: os._exit(3)).result()
    assert Forked(lambda: os.getpid()).result() != os.getpid()


def test_train_all_trains_the_recommender_beside_the_others_and_registers_all(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    out = tmp_path / "shop"
    made = runner.invoke(app, ["simulate", "--customers", "100", "--days", "40", "--out", str(out)])
    assert made.exit_code == 0, made.output
    args = ["train", "all", "--data", str(out), "--data-dir", str(tmp_path), "--parallel"]
    args += ["--max-customers", "60", "--max-examples", "800", "--promote", "--force"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # the recommender trained in the background is collected and logged last
    order = [result.output.index(f"{name}: trained in") for name in TRAINED]
    assert order == sorted(order), result.output
    registry = ModelRegistry.local(tmp_path)
    for name in ("nba-offers", "nba-channels", "nba-send-time", "nba-recommender"):
        assert len(registry.versions(name)) == 1 and registry.champion(name) == 1, name
    recommended = registry.load_model("nba-recommender").recommend(["C000001"], 5).to_frame()
    assert len(recommended) == 5


#: The order ``nba train all --parallel`` reports the models in.
TRAINED = ("offers", "channels", "send-time", "recommender")
