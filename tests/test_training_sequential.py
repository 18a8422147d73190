"""Order-aware EASE: the order of a customer's products changes what comes next."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.baselines import EASERecommender
from training.recommendation import TrainingData
from training.sequential import SequentialEASERecommender, transition_weights
from training.splits import last_seen

AS_OF = pd.Timestamp("2026-02-01", tz="UTC")


def _journeys(sequences: dict[str, list[str]], catalogue: list[str]) -> TrainingData:
    """Each customer meets their products one a day, in the order given."""
    rows = [
        (cid, pid, pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=day))
        for cid, products in sequences.items()
        for day, pid in enumerate(products)
    ]
    events = pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp"])
    inter = events[["customer_id", "product_id"]].assign(weight=1.0)
    return TrainingData(
        inter,
        pd.DataFrame({"customer_id": list(sequences)}),
        pd.DataFrame({"product_id": catalogue}),
        inter[["customer_id", "product_id"]],
        AS_OF,
        last_seen=last_seen(events, AS_OF),
    )


def _two_worlds(probe: list[str]) -> TrainingData:
    """Customers who watch a then b, and customers who watch x then y; the probe customer
    met both worlds, in the order given."""
    seqs = {f"ab{i}": ["a", "b"] for i in range(20)} | {f"xy{i}": ["x", "y"] for i in range(20)}
    return _journeys(seqs | {"probe": probe}, ["a", "b", "x", "y"])


@pytest.mark.parametrize(("probe", "expected"), [(["a", "x"], "y"), (["x", "a"], "b")])
def test_the_most_recent_product_decides_what_comes_next(probe: list[str], expected: str) -> None:
    model = SequentialEASERecommender(l2=1.0, recency=0.5).fit(_two_worlds(probe))
    assert model.recommend(["probe"], k=1).product_ids[0, 0] == expected
    # order-blind EASE cannot tell the two probes apart
    ease = EASERecommender(l2=1.0)
    first = ease.fit(_two_worlds(["a", "x"])).score(["probe"])
    second = ease.fit(_two_worlds(["x", "a"])).score(["probe"])
    np.testing.assert_allclose(first, second)


def test_transitions_learn_what_follows_not_what_precedes() -> None:
    seqs = {f"c{i}": ["a", "b", "c"] for i in range(10)}
    data = _journeys(seqs | {"probe": ["b"]}, ["a", "b", "c"])
    model = SequentialEASERecommender(l2=50.0, transitions=1.0).fit(data)
    scores = dict(zip(model.catalogue, model.score(["probe"])[0], strict=True))
    assert scores["c"] > scores["a"]  # c follows b; a only comes before it


def test_without_the_order_products_weigh_the_same() -> None:
    data = _two_worlds(["a", "x"])
    unordered = TrainingData(
        data.interactions, data.customers, data.products, data.owned, data.as_of
    )
    model = SequentialEASERecommender(l2=1.0, recency=0.5, transitions=0.0).fit(unordered)
    assert model.history[model.user_index.get_loc("probe")].data.tolist() == [1.0, 1.0]


def test_a_product_seen_but_not_liked_informs_but_is_never_recommended() -> None:
    data = _two_worlds(["a"])
    owned = pd.concat(
        [data.owned, pd.DataFrame({"customer_id": ["probe"], "product_id": ["x"]})],
        ignore_index=True,
    )
    seen = TrainingData(data.interactions, data.customers, data.products, owned, data.as_of)
    model = SequentialEASERecommender(l2=1.0, seen_weight=0.5).fit(seen)
    assert model.recommend(["probe"], k=2).product_ids[0].tolist() == ["b", "y"]
    blind = SequentialEASERecommender(l2=1.0, seen_weight=0.0).fit(seen)
    y = list(model.catalogue).index("y")
    assert model.score(["probe"])[0, y] > blind.score(["probe"])[0, y]


def test_transition_weights_are_shrunk_counts_of_what_followed() -> None:
    rows, cols = np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 1])
    follow = transition_weights(rows, cols, np.ones(5), 3, window=2, decay=0.5, shrinkage=0.0)
    # product 0 is followed by 1 twice (step 1) and by 2 once (step 2, half weight)
    np.testing.assert_allclose(follow[0], [0.0, 1.0, 0.25])
    np.testing.assert_allclose(np.diag(follow), 0.0)


@pytest.mark.parametrize(
    "bad",
    [{"l2": 0.0}, {"dropout": 1.0}, {"recency": 1.5}, {"window": 0}, {"transitions": -0.1}],
)
def test_bad_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        SequentialEASERecommender(**bad)  # type: ignore[arg-type]
