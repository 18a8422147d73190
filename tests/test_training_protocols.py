"""Evaluation protocols: per-user leave-last-out, relevance threshold, explicit negatives,
rating scale, personalisation, seeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.dataset import RetailDataset
from features.validation import DataContractError
from training.evaluation import EvaluationProtocol, ModelResult, per_user_task
from training.interactions import InteractionWeights, check_rating_scale, interaction_frame
from training.metrics import RankingMetrics, mean_pairwise_jaccard

START = pd.Timestamp("2026-01-01", tz="UTC")


def ratings_dataset(rows: list[tuple[str, str, int, int]]) -> RetailDataset:
    """``(customer, product, rating, day)`` rows as a contract-shaped data set."""
    customers = sorted({r[0] for r in rows})
    products = sorted({r[1] for r in rows})
    events = pd.DataFrame(
        {
            "event_id": [f"e{i:04d}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "timestamp": [START + pd.Timedelta(days=r[3]) for r in rows],
            "channel": "web",
            "event_type": "review",
            "product_id": [r[1] for r in rows],
            "properties": [json.dumps({"rating": r[2]}) for r in rows],
        }
    )
    return RetailDataset(
        pd.DataFrame({"customer_id": customers, "created_at": START - pd.Timedelta(days=1)}),
        pd.DataFrame({"product_id": products, "launch_date": pd.NaT}),
        pd.DataFrame(),
        events,
    )


@pytest.fixture
def rated() -> RetailDataset:
    # customer a: five positives then a 2-star rating; b: one positive (not evaluated)
    rows = [("a", f"p{i}", 5, i) for i in range(5)] + [("a", "p9", 2, 1), ("b", "p0", 4, 0)]
    return ratings_dataset(rows)


def test_per_user_split_holds_out_each_customers_last_positives(rated: RetailDataset) -> None:
    weights = InteractionWeights(half_life_days=None, min_rating=4.0)
    task = per_user_task(rated, 0.2, weights=weights)
    assert task.warm == {"a": {"p4"}} and task.cold == {}
    inter = task.train.interactions
    trained = set(zip(inter["customer_id"], inter["product_id"], strict=True))
    assert ("a", "p4") not in trained and ("b", "p0") in trained


def test_low_ratings_are_explicit_negatives_never_positive_never_recommended(
    rated: RetailDataset,
) -> None:
    weights = InteractionWeights(half_life_days=None, min_rating=4.0)
    frame = interaction_frame(rated.events, START + pd.Timedelta(days=30), weights)
    assert "p9" not in set(frame["product_id"])  # the 2-star rating weighs nothing
    task = per_user_task(rated, 0.2, weights=weights)
    owned = set(zip(task.train.owned["customer_id"], task.train.owned["product_id"], strict=True))
    assert ("a", "p9") in owned  # seen: masked from recommendations
    # without a threshold every rating is positive (a 2-star rating weighs 0.4)
    no_threshold = InteractionWeights(half_life_days=None)
    everything = interaction_frame(rated.events, START + pd.Timedelta(days=30), no_threshold)
    assert everything.set_index("product_id").loc["p9", "weight"] == pytest.approx(0.4)


def test_a_rating_outside_the_scale_is_a_contract_error_naming_the_rows() -> None:
    data = ratings_dataset([("a", "p0", 5, 0), ("a", "p1", 7, 1), ("b", "p1", 0, 2)])
    with pytest.raises(DataContractError) as info:
        check_rating_scale(data.events)
    assert "rows 2, 3" in str(info.value) and "1..5" in str(info.value)


def test_protocol_validation_lies_inside_the_training_part(rated: RetailDataset) -> None:
    weights = InteractionWeights(half_life_days=None, min_rating=4.0)
    validation, _ = EvaluationProtocol().tasks(rated, weights, "t")
    assert validation.warm == {"a": {"p3"}}
    learned = set(validation.train.interactions["product_id"])
    assert "p3" not in learned and "p4" not in learned
    with pytest.raises(ValueError, match="split must be"):
        EvaluationProtocol(split="random")  # type: ignore[arg-type]


def test_a_customer_budget_chooses_on_a_seeded_sample_of_whole_customers() -> None:
    rows = [(f"c{c:02d}", f"p{(c + i) % 7}", 5, i) for c in range(30) for i in range(5)]
    data = ratings_dataset(rows)
    weights = InteractionWeights(half_life_days=None, min_rating=4.0)
    protocol = EvaluationProtocol(max_customers=10)
    validation, test = protocol.tasks(data, weights, "t")
    sampled = set(test.customers["customer_id"])
    assert len(sampled) == 10 and set(test.warm) == sampled
    assert set(validation.train.interactions["customer_id"]) == sampled
    # every event of a sampled customer is kept: 4 of 5 positives train, 1 is the test
    assert len(test.train.interactions) == 40
    again, _ = protocol.tasks(data, weights, "t")  # seeded: the same sample every run
    assert set(again.customers["customer_id"]) == sampled
    assert "at most 10 customers" in protocol.describe(weights)
    everyone = EvaluationProtocol(max_customers=30).tasks(data, weights, "t")[1]
    assert len(everyone.warm) == 30
    with pytest.raises(ValueError, match="max_customers"):
        EvaluationProtocol(max_customers=0)


def test_personalisation_is_the_mean_pairwise_jaccard() -> None:
    assert mean_pairwise_jaccard([["a", "b"], ["a", "b"]]) == 1.0
    assert mean_pairwise_jaccard([["a", "b"], ["c", "d"]]) == 0.0
    rng = np.random.default_rng(0)
    many = [list(rng.choice(50, 10, replace=False).astype(str)) for _ in range(300)]
    assert mean_pairwise_jaccard(many, max_lists=100) == pytest.approx(
        mean_pairwise_jaccard(many), abs=0.02
    )


def test_several_seeds_report_the_median_and_the_range() -> None:
    metrics = RankingMetrics(10, 5, 0.1, 0.1, 0.2, 0.1, 0.5)
    result = ModelResult("m", {}, metrics, None, 1.0, (0.21, 0.2, 0.19))
    assert result.spread == "0.2000 (0.1900-0.2100)"


def test_global_protocol_cuts_once_for_everybody_and_validates_before_the_cut() -> None:
    rows = [(c, f"p{i}", 5, i + j) for j, c in enumerate("abc") for i in range(10)]
    data = ratings_dataset(rows)
    weights = InteractionWeights(half_life_days=None, min_rating=4.0)
    validation, test = EvaluationProtocol(split="global").tasks(data, weights, "t")
    assert validation.cut < test.cut
    assert (data.events["timestamp"] < test.cut).mean() == pytest.approx(0.8, abs=0.05)
    assert set(test.warm) <= {"a", "b", "c"} and test.warm
