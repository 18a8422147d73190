"""MLflow registry: round trip by alias, promote and rollback, tracked runs (real SQLite store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.dataset import RetailDataset
from simulator import SimulatorConfig, simulate
from training.api import train_recommender
from training.recommender import HybridConfig
from training.recommender_families import FAMILIES
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
    assert run.data.params["family"] in FAMILIES  # the family chosen on validation
    metrics = run.data.metrics
    assert "validation_hybrid_ndcg_at_10" in metrics and "validation_als_ndcg_at_10" in metrics
    for name in (
        "ease_ndcg_at_10",
        "ease_jaccard_at_10",
        "ease_ndcg_median",
        "popularity_customers",
    ):
        assert name in metrics, name
    assert metrics["promotion_allowed"] in (0.0, 1.0)
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


# ------------------------------------------------------------ decision models


@pytest.fixture(scope="module")
def decision_runs(registry: ModelRegistry):  # type: ignore[no-untyped-def]
    from training.api import train_all
    from training.truth import SimulatorTruth

    sim = simulate(SimulatorConfig(n_customers=400, days=40, seed=9, n_products=150))
    world = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    runs = train_all(
        world,
        registry=registry,
        dataset_name="sim",
        truth=SimulatorTruth.from_simulation(sim),
        recommender=False,
        max_examples=1000,
    )
    return world, runs


def test_decision_models_load_by_champion_and_score_as_after_training(
    registry: ModelRegistry,
    decision_runs,  # type: ignore[no-untyped-def]
) -> None:
    from features.batch import point_in_time
    from features.profile_table import profiles_frame
    from training.api import CHANNELS_NAME, OFFERS_NAME, SEND_TIME_NAME
    from training.examples import contact_examples, message_sends, sample_rows

    world, runs = decision_runs
    assert not runs.problems
    for run in (runs.channels, runs.offers, runs.send_time):
        registry.promote(run.name, run.version.version)
    sends = contact_examples(world, sample_rows(message_sends(world.events), 60, 1))
    known = sends.rows["channel"].isin(["email", "sms", "push"]).to_numpy()
    sends = sends.take(known)
    frame = profiles_frame(point_in_time(world, sends.rows))
    frame["channel"] = sends.rows["channel"].to_numpy()
    frame["send_hour_of_week"] = sends.hour_of_week.astype(np.int64)

    loaded = registry.load_model(CHANNELS_NAME)
    np.testing.assert_array_equal(
        loaded.predict_examples(sends), runs.channels.model.predict_examples(sends)
    )
    got = registry.load_pyfunc(CHANNELS_NAME).predict(frame)
    np.testing.assert_allclose(
        got["propensity"].to_numpy(), runs.channels.model.predict_examples(sends), rtol=1e-12
    )

    offers = frame.assign(offer_kind="percent_discount", offer_cost=6.0)
    offers = offers[offers["channel"].isin([c.value for c in runs.offers.model.channels])]
    expected = runs.offers.model.predict_frame(offers)
    got = registry.load_pyfunc(OFFERS_NAME).predict(offers)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))

    lookup = pd.DataFrame(
        {"customer_id": world.customers["customer_id"].head(30), "channel": "sms", "weekday": 2}
    )
    expected = runs.send_time.model.predict_frame(lookup)
    got = registry.load_pyfunc(SEND_TIME_NAME).predict(lookup)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    assert got["best_hour"].between(8, 19).all()  # SMS quiet hours: 08:00-20:00


def test_decision_model_runs_carry_metrics_fingerprint_and_plots(
    registry: ModelRegistry,
    decision_runs,  # type: ignore[no-untyped-def]
) -> None:
    from training.data import dataset_fingerprint

    world, runs = decision_runs
    expected_plots = [
        (runs.channels, "plots/calibration_curve.png", "channel_rate_auc"),
        (runs.offers, "plots/qini_curve.png", "random_qini"),
        (runs.send_time, "plots/send_time_heatmap_by_segment.png", "global_within_1h_email"),
    ]
    for run, plot, baseline_metric in expected_plots:
        logged = registry.client.get_run(run.version.run_id)
        assert logged.data.tags[FINGERPRINT_TAG] == dataset_fingerprint(world)
        assert baseline_metric in logged.data.metrics
        assert "train_seconds" in logged.data.metrics
        artifacts = {a.path for a in registry.client.list_artifacts(logged.info.run_id, "plots")}
        assert plot in artifacts
        texts = {a.path for a in registry.client.list_artifacts(logged.info.run_id)}
        assert "evaluation.md" in texts
