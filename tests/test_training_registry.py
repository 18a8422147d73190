"""MLflow registry: round trip by alias, promote and rollback, tracked runs (real SQLite store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.simulator import SimulatorConfig, simulate
from features.dataset import RetailDataset
from training.api import train_recommender
from training.recommender import HybridConfig
from training.registry import FINGERPRINT_TAG, ModelRegistry, RegistryError, data_fingerprint

FAST = HybridConfig(epochs=3, no_components=8)
NAME = "test-recommender"


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    sim = simulate(SimulatorConfig(n_customers=200, days=30, seed=5, n_products=120))
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    root = tmp_path_factory.mktemp("mlflow")
    return ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")


@pytest.fixture(scope="module")
def two_versions(registry: ModelRegistry, data: RetailDataset):  # type: ignore[no-untyped-def]
    first = train_recommender(
        data, registry=registry, model_name=NAME, config=FAST, evaluate_first=True
    )
    second = train_recommender(
        data, registry=registry, model_name=NAME, config=FAST, evaluate_first=False
    )
    return first, second


def test_model_loaded_by_alias_scores_exactly_as_after_training(
    registry: ModelRegistry,
    two_versions,
    data: RetailDataset,  # type: ignore[no-untyped-def]
) -> None:
    first, _ = two_versions
    registry.promote(NAME, first.version.version)
    ids = data.customers["customer_id"].head(50).tolist()
    expected = first.model.recommend(ids, k=10).to_frame()
    loaded = registry.load_pyfunc(NAME)
    got = loaded.predict(pd.DataFrame({"customer_id": ids}), params={"k": 10})
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True)[["customer_id", "rank", "product_id"]],
        expected[["customer_id", "rank", "product_id"]],
        check_dtype=False,
    )
    np.testing.assert_array_equal(got["score"].to_numpy(), expected["score"].to_numpy())
    inner = registry.load_model(NAME)
    np.testing.assert_array_equal(inner.score(ids), first.model.score(ids))


def test_promote_and_rollback_move_the_champion(
    registry: ModelRegistry,
    two_versions,  # type: ignore[no-untyped-def]
) -> None:
    first, second = two_versions
    v1, v2 = first.version.version, second.version.version
    registry.promote(NAME, v1)
    assert registry.promote(NAME, v2) == v1
    assert registry.champion(NAME) == v2
    assert registry.rollback(NAME) == v1
    assert registry.champion(NAME) == v1
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback(NAME)
    with pytest.raises(RegistryError, match="no version 99"):
        registry.promote(NAME, 99)
    listed = registry.versions(NAME)
    assert [v.version for v in listed] == [v2, v1]
    assert "champion" in next(v for v in listed if v.version == v1).aliases


def test_runs_carry_params_metrics_fingerprint_and_plots(
    registry: ModelRegistry,
    two_versions,
    data: RetailDataset,  # type: ignore[no-untyped-def]
) -> None:
    first, _ = two_versions
    run = registry.client.get_run(first.version.run_id)
    assert run.data.params["no_components"] == "8"
    assert "hybrid_ndcg_at_10" in run.data.metrics
    assert "ease_ndcg_at_10" in run.data.metrics
    assert run.data.tags[FINGERPRINT_TAG] == data_fingerprint(
        {"customers": data.customers, "products": data.products, "events": data.events}
    )
    artifacts = {a.path for a in registry.client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/ndcg_by_model.png" in artifacts


def test_default_store_is_sqlite_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.registry import default_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert default_tracking_uri(tmp_path) == "http://mlflow.example:5000"


def test_registry_leaves_mlflow_settings_as_it_found_them(
    registry: ModelRegistry,
    two_versions,  # type: ignore[no-untyped-def]
) -> None:
    import os

    import mlflow

    before = (os.environ.get("MLFLOW_TRACKING_URI"), mlflow.get_tracking_uri())
    registry.load_pyfunc(NAME, "champion") if registry.champion(NAME) else None
    registry.load_pyfunc(NAME, "champion") if registry.champion(NAME) else None
    assert (os.environ.get("MLFLOW_TRACKING_URI"), mlflow.get_tracking_uri()) == before
