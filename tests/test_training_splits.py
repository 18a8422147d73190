"""Time splits leak nothing: training data depends only on events before the cut."""

from __future__ import annotations

import pandas as pd
import pytest

from features.dataset import RetailDataset
from simulator import SimulatorConfig, simulate
from training.evaluation import ranking_task
from training.interactions import InteractionWeights, interaction_frame
from training.splits import temporal_split, time_cut


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    sim = simulate(SimulatorConfig(n_customers=300, days=40, seed=3, n_products=150))
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


def test_training_side_ignores_everything_after_the_cut(data: RetailDataset) -> None:
    cut = time_cut(data.events, 0.25)
    task = ranking_task(data, cut)
    # scramble the future: other products, other customers, new events
    future = data.events["timestamp"] >= cut
    events = data.events.copy()
    events.loc[future, "product_id"] = (
        events.loc[future, "product_id"].sample(frac=1, random_state=1).to_numpy()
    )
    events.loc[future, "event_type"] = "purchase"
    scrambled = RetailDataset(data.customers, data.products, data.offers, events)
    again = ranking_task(scrambled, cut)
    pd.testing.assert_frame_equal(task.train.interactions, again.train.interactions)
    pd.testing.assert_frame_equal(task.train.owned, again.train.owned)
    pd.testing.assert_frame_equal(task.train.customers, again.train.customers)
    assert task.train.as_of == cut


def test_test_side_holds_only_later_events_and_no_owned_products(data: RetailDataset) -> None:
    cut = time_cut(data.events, 0.25)
    split = temporal_split(data.events, cut)
    assert split.train["timestamp"].max() < cut <= split.test["timestamp"].min()
    task = ranking_task(data, cut)
    owned = set(zip(task.train.owned["customer_id"], task.train.owned["product_id"], strict=True))
    for cid, products in {**task.warm, **task.cold}.items():
        assert not any((cid, p) in owned for p in products)
    assert set(task.warm).isdisjoint(task.cold)
    assert set(task.warm) <= set(task.train.interactions["customer_id"])
    assert (task.train.customers["created_at"] < cut).all()


def test_interaction_weights_order_and_decay() -> None:
    t = pd.Timestamp("2026-02-01", tz="UTC")
    events = pd.DataFrame(
        {
            "customer_id": ["c"] * 4,
            "product_id": ["buy", "cart", "view", "old"],
            "event_type": ["purchase", "add_to_cart", "product_view", "purchase"],
            "timestamp": [t - pd.Timedelta(days=1)] * 3 + [t - pd.Timedelta(days=61)],
            "properties": [None] * 4,
        }
    )
    w = interaction_frame(events, t, InteractionWeights(half_life_days=60)).set_index("product_id")[
        "weight"
    ]
    assert w["buy"] > w["cart"] > w["view"] > 0
    assert w["old"] == pytest.approx(w["buy"] / 2, rel=0.02)
    assert interaction_frame(events, t - pd.Timedelta(days=30)).index.size == 1
