"""Every recommender family behind one interface (one contract suite), selection by
validation, gated promotion, and bad input through ``nba train``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from features.dataset import RetailDataset
from simulator import SimulatorConfig, simulate
from tests.conftest import EVENTS_CSV, WriteDataset
from tests.test_training_baselines import _missing_item, checkerboard
from training import selection
from training.api import train_recommender
from training.evaluation import EvaluationProtocol
from training.recommendation import Recommender
from training.recommender_families import FAMILIES, FamilySpec, build, spec_of
from training.registry import ModelRegistry
from training.selection import select_recommender

SMALL: dict[str, dict[str, object]] = {
    "popularity": {},
    "ease": {"l2": 10.0},
    "sequential": {"l2": 10.0},
    "als": {"factors": 8, "iterations": 10},
    "bpr": {"factors": 8, "iterations": 30},
    "lightfm": {"epochs": 20, "no_components": 8},
    "hybrid": {"epochs": 20, "no_components": 8},
    "blend": {
        "components": {"ease": {"l2": 10.0}, "als": {"factors": 8, "iterations": 10}},
        "weights": {"ease": 0.7, "als": 0.3},
    },
}
FAST_FAMILIES = ("popularity", "ease", "als")


@pytest.fixture(scope="module", params=FAMILIES)
def fitted(request: pytest.FixtureRequest) -> Recommender:
    return build(FamilySpec(request.param, SMALL[request.param])).fit(checkerboard())


def test_every_family_serves_the_same_interface(fitted: Recommender) -> None:
    data = checkerboard()
    recs = fitted.recommend(["u0", "u1", "__nba_probe__"], k=3, exclude_owned=True)
    assert recs.product_ids.shape == (3, 3) and np.isfinite(recs.scores).all()
    owned = set(zip(data.owned["customer_id"], data.owned["product_id"], strict=True))
    assert all(("u0", p) not in owned for p in recs.product_ids[0])
    again = pickle.loads(pickle.dumps(fitted))  # what the registry stores and serving loads
    np.testing.assert_array_equal(again.score(["u0", "u5"]), fitted.score(["u0", "u5"]))
    assert spec_of(again) == spec_of(fitted)


def test_learned_families_find_the_one_missing_item() -> None:
    for family in ("ease", "sequential", "als", "lightfm", "blend"):
        model = build(FamilySpec(family, SMALL[family])).fit(checkerboard())
        top = model.recommend([f"u{u}" for u in range(40)], k=1).product_ids[:, 0]
        right = np.mean([top[u] == _missing_item(u) for u in range(40)])
        assert right >= 0.9, (family, right)


@pytest.fixture(scope="module")
def shop() -> RetailDataset:
    sim = simulate(SimulatorConfig(n_customers=300, days=40, seed=5, n_products=150))
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


def test_the_family_is_chosen_on_validation_and_gated_on_the_test(shop: RetailDataset) -> None:
    chosen = select_recommender(shop, "shop", families=FAST_FAMILIES, test_all=True)
    assert chosen.chosen.family == chosen.validation.best().model
    assert {r.model for r in chosen.test.results} == set(FAST_FAMILIES)
    assert "Held-out test" in chosen.markdown() and "Jaccard" in chosen.markdown()
    # a better champion recipe blocks promotion; an equal one too (never worse)
    same = build(chosen.chosen)
    again = select_recommender(shop, "shop", families=FAST_FAMILIES, champion=same)
    assert not again.promotion.allowed and "champion" in again.promotion.reason
    # against a popularity champion, a learned model that beats it may be promoted
    learned = [r for r in chosen.test.results if r.model != "popularity"]
    if chosen.chosen.family != "popularity" and all(
        r.warm.ndcg > chosen.result("popularity").warm.ndcg
        for r in learned  # type: ignore[union-attr]
    ):
        pop = build(FamilySpec("popularity"))
        vs_pop = select_recommender(shop, "shop", families=FAST_FAMILIES, champion=pop)
        assert vs_pop.promotion.allowed, vs_pop.promotion.reason


def test_the_blend_is_weighted_on_validation_models_and_refitted_on_the_test(
    shop: RetailDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    too_few = select_recommender(shop, "shop", families=(*FAST_FAMILIES, "blend"))
    assert "too few validation customers" in too_few.skipped["blend"]
    monkeypatch.setattr(selection, "BLEND_MIN_CUSTOMERS", 2)  # the small shop, weighed anyway
    families = (*FAST_FAMILIES, "blend")
    chosen = select_recommender(shop, "shop", families=families, test_all=True)
    row = next(r for r in chosen.validation.results if r.model == "blend")
    weights = row.params["weights"]
    assert isinstance(weights, dict) and set(weights) <= set(FAST_FAMILIES)
    assert abs(sum(weights.values()) - 1.0) < 1e-6 and all(w > 0 for w in weights.values())
    # each component is its family's validation spec, and the blend is measured on the test
    components = row.params["components"]
    assert isinstance(components, dict)
    for name, params in components.items():
        family_row = next(r for r in chosen.validation.results if r.model == name)
        assert params == family_row.params
    assert chosen.result("blend") is not None
    assert chosen.chosen.family == chosen.validation.best().model
    model = build(FamilySpec("blend", row.params))
    assert spec_of(model) == FamilySpec("blend", row.params)


def test_a_blend_of_fewer_than_two_families_is_skipped_and_said(shop: RetailDataset) -> None:
    chosen = select_recommender(shop, "shop", families=("ease", "blend"))
    assert chosen.chosen.family == "ease" and "two families" in chosen.skipped["blend"]
    assert "Not evaluated: blend" in chosen.markdown()


def test_a_blend_names_only_known_components() -> None:
    with pytest.raises(ValueError, match="name no component"):
        build(FamilySpec("blend", {"components": {"ease": {}}, "weights": {"als": 1.0}}))
    with pytest.raises(ValueError, match="non-negative"):
        build(FamilySpec("blend", {"components": {"ease": {}}, "weights": {"ease": 0.0}}))
    with pytest.raises(ValueError, match="'components' and 'weights'"):
        build(FamilySpec("blend", {"weights": {"ease": 1.0}}))


def test_a_family_that_cannot_be_evaluated_is_skipped_and_said(
    shop: RetailDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = selection.build

    def fragile(spec: FamilySpec, seed: int = 0) -> Recommender:
        if spec.family == "als":
            raise ValueError("too sparse for 8 factors")
        return real(spec, seed)

    monkeypatch.setattr(selection, "build", fragile)
    lines: list[str] = []
    chosen = select_recommender(shop, "shop", families=FAST_FAMILIES, report=lines.append)
    assert "als" in chosen.skipped and chosen.chosen.family in ("popularity", "ease")
    assert any("als: cannot be evaluated" in line for line in lines)


def test_gated_promotion_keeps_the_champion_unless_forced(
    shop: RetailDataset, tmp_path: Path
) -> None:
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    protocol = EvaluationProtocol(seeds=1)
    options = {"registry": registry, "model_name": "gated", "families": FAST_FAMILIES}
    first = train_recommender(shop, promote=True, protocol=protocol, **options)  # type: ignore[arg-type]
    assert first.promoted and registry.champion("gated") == first.version.version  # type: ignore[union-attr]
    second = train_recommender(shop, promote=True, protocol=protocol, **options)  # type: ignore[arg-type]
    assert not second.promoted and registry.champion("gated") == first.version.version  # type: ignore[union-attr]
    assert second.selection is not None and second.selection.result("champion") is not None
    third = train_recommender(shop, promote=True, force=True, protocol=protocol, **options)  # type: ignore[arg-type]
    assert third.promoted and registry.champion("gated") == third.version.version  # type: ignore[union-attr]


runner = CliRunner()


def test_train_says_when_the_data_is_too_small_without_a_traceback(
    write_dataset: WriteDataset, tmp_path: Path
) -> None:
    folder = write_dataset()
    result = runner.invoke(
        app, ["train", "recommender", "--data", str(folder), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "cannot train recommender" in result.output and "too few" in result.output
    assert "Traceback" not in result.output


def test_a_rating_outside_the_scale_is_named_by_row(
    write_dataset: WriteDataset, tmp_path: Path
) -> None:
    review = 'E5,C2,2026-03-08T09:00:00Z,web,review,P2,,,,,"{""rating"": 11}"\n'
    folder = write_dataset(events=EVENTS_CSV + review)
    result = runner.invoke(
        app, ["train", "recommender", "--data", str(folder), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "row 5" in result.output and "rating outside the declared scale" in result.output


def test_evaluate_prints_every_family_on_either_protocol(tmp_path: Path) -> None:
    out = tmp_path / "shop"
    made = runner.invoke(app, ["simulate", "--customers", "150", "--days", "21", "--out", str(out)])
    assert made.exit_code == 0, made.output
    args = ["evaluate", "recommender", "--data", str(out), "--no-tune", "--seeds", "2"]
    result = runner.invoke(app, [*args, "--split", "global"])
    assert result.exit_code == 0, result.output
    for family in FAMILIES:
        if family == "blend":  # 150 customers: too few validation customers to weigh one
            assert "Not evaluated: blend" in result.output
            continue
        assert f"| {family} |" in result.output or f"| **{family}** |" in result.output
    assert "cold n" in result.output and "one time cut" in result.output


def test_train_chooses_on_at_most_max_customers_and_fits_on_everyone(tmp_path: Path) -> None:
    out = tmp_path / "shop"
    made = runner.invoke(app, ["simulate", "--customers", "150", "--days", "21", "--out", str(out)])
    assert made.exit_code == 0, made.output
    args = ["train", "recommender", "--data", str(out), "--data-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--max-customers", "20", "--promote", "--force"])
    assert result.exit_code == 0, result.output
    assert "at most 20 customers" in result.output and "warm n" in result.output
    model = ModelRegistry.local(tmp_path).load_model("nba-recommender")
    # the chosen family was fitted on every customer's history, not only the sample's
    assert len(model._owned_index) > 20
