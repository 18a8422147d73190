"""The training template: the shared steps run once, in order, around a family's own steps
(a real SQLite MLflow store)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from features.dataset import RetailDataset
from training.data import dataset_fingerprint
from training.pipeline import Report, TrainingPipeline
from training.registry import FINGERPRINT_TAG, ModelRegistry


@dataclass(frozen=True)
class QuantityEvaluation:
    """Mean quantity before and after the last day."""

    before: float
    after: float

    def markdown(self) -> str:
        return f"| before | after |\n|---:|---:|\n| {self.before} | {self.after} |"


class MeanQuantityModel:
    """Predicts the mean quantity for every customer."""

    def __init__(self, mean: float) -> None:
        self.mean = mean

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"customer_id": frame["customer_id"], "quantity": self.mean})


class MeanQuantityTraining(TrainingPipeline[MeanQuantityModel, QuantityEvaluation]):
    """A family filling every step, recording the order the template calls them in."""

    kind = "mean-quantity"
    registered_name = "test-mean-quantity"
    tables = ("customers", "events")

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _evaluate(
        self, data: RetailDataset, dataset_name: str, report: Report | None
    ) -> QuantityEvaluation:
        self.calls.append("evaluate")
        last_day = data.events["timestamp"].max().floor("D")
        early = data.events["timestamp"] < last_day
        quantity = data.events["quantity"]
        return QuantityEvaluation(float(quantity[early].mean()), float(quantity[~early].mean()))

    def _fit(
        self, data: RetailDataset, evaluation: QuantityEvaluation | None, report: Report | None
    ) -> MeanQuantityModel:
        self.calls.append("fit")
        return MeanQuantityModel(float(data.events["quantity"].mean()))

    def _evaluate_fitted(
        self, model: MeanQuantityModel, evaluation: QuantityEvaluation | None
    ) -> QuantityEvaluation | None:
        self.calls.append("evaluate_fitted")
        return evaluation

    def _metrics(
        self, model: MeanQuantityModel, evaluation: QuantityEvaluation | None
    ) -> dict[str, float]:
        assert evaluation is not None
        return {"mean": model.mean, "before": evaluation.before}

    def _figures(
        self, model: MeanQuantityModel, evaluation: QuantityEvaluation | None, dataset_name: str
    ) -> dict[str, Any]:
        return {}

    def _params(self, model: MeanQuantityModel) -> dict[str, object]:
        return {"estimator": "mean"}

    def _summary(self, model: MeanQuantityModel, evaluation: QuantityEvaluation | None) -> str:
        return f"mean quantity {model.mean:.2f}"


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    stamps = pd.to_datetime(["2026-03-01 10:00", "2026-03-01 12:00", "2026-03-02 09:00"], utc=True)
    events = pd.DataFrame(
        {"customer_id": ["C1", "C2", "C1"], "timestamp": stamps, "quantity": [1, 3, 5]}
    )
    customers = pd.DataFrame({"customer_id": ["C1", "C2"]})
    return RetailDataset(customers, pd.DataFrame(), pd.DataFrame(), events)


def test_without_a_registry_the_model_is_fitted_and_measured_but_not_logged(
    data: RetailDataset,
) -> None:
    family = MeanQuantityTraining()
    lines: list[str] = []
    run = family.run(data, report=lines.append)
    assert family.calls == ["evaluate", "fit", "evaluate_fitted"]
    assert run.name == "test-mean-quantity"
    assert run.model.mean == 3.0
    assert run.metrics["before"] == 2.0
    assert run.metrics["train_seconds"] == run.seconds >= 0.0
    assert run.fingerprint == dataset_fingerprint(data, ("customers", "events"))
    assert run.version is None
    assert lines == ["mean quantity 3.00"]
    assert "| 2.0 | 5.0 |" in run.markdown()


def test_the_run_is_logged_registered_and_promoted_once(
    data: RetailDataset, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("mlflow-pipeline")
    registry = ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
    first = MeanQuantityTraining().run(data, registry=registry, dataset_name="tiny")
    assert first.version is not None
    assert registry.champion("test-mean-quantity") is None  # promotion is asked for

    second = MeanQuantityTraining().run(
        data, registry=registry, dataset_name="tiny", fingerprint="given", promote=True
    )
    assert second.version is not None and second.version.version == first.version.version + 1
    assert registry.champion("test-mean-quantity") == second.version.version
    assert "champion" in second.version.aliases

    logged = registry.client.get_run(second.version.run_id)
    assert logged.info.run_name == "mean-quantity-tiny"
    assert logged.data.params == {"estimator": "mean", "dataset": "tiny"}
    assert set(logged.data.metrics) == {"mean", "before", "train_seconds"}
    assert logged.data.tags[FINGERPRINT_TAG] == "given"
    texts = {a.path for a in registry.client.list_artifacts(logged.info.run_id)}
    assert "evaluation.md" in texts
