"""From a contract data set to what training reads, and the fingerprint logged with models.

:func:`training_data` is the recommender's view of a
:class:`~features.dataset.RetailDataset` as of a moment (weighted
interactions, products launched by then, owned pairs); :func:`default_weights`
picks the interaction weights that suit the data set; :func:`dataset_fingerprint`
hashes the tables a model reads, so a registered model names the data it saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from features.dataset import RetailDataset
from training.interactions import InteractionWeights, interaction_frame, owned_pairs
from training.recommendation import TrainingData
from training.registry import data_fingerprint
from training.splits import last_seen, launched_before

#: Every table of the data contract (what a decision model's fingerprint covers).
ALL_TABLES: tuple[str, ...] = ("customers", "products", "offers", "events")


#: Relevance threshold of rating data sets: a rating of at least this is a positive.
DEFAULT_MIN_RATING = 4.0


def default_weights(data: RetailDataset) -> InteractionWeights:
    """Time decay for retail data; for rating data sets (no purchases, e.g. MovieLens) no
    decay, and ratings below :data:`DEFAULT_MIN_RATING` are explicit negatives."""
    has_purchases = bool((data.events["event_type"] == "purchase").any())
    if has_purchases:
        return InteractionWeights()
    return InteractionWeights(half_life_days=None, min_rating=DEFAULT_MIN_RATING)


def training_data(
    data: RetailDataset,
    as_of: pd.Timestamp | None = None,
    weights: InteractionWeights | None = None,
) -> TrainingData:
    """Everything known before ``as_of`` (default: just after the last event) as training data."""
    as_of = as_of or (data.events["timestamp"].max() + pd.Timedelta(seconds=1))
    weights = weights or default_weights(data)
    return TrainingData(
        interactions=interaction_frame(data.events, as_of, weights),
        customers=data.customers,
        products=launched_before(data.products, as_of),
        owned=owned_pairs(data.events, as_of),
        as_of=as_of,
        last_seen=last_seen(data.events, as_of),
    )


def dataset_fingerprint(data: RetailDataset, tables: Sequence[str] = ALL_TABLES) -> str:
    """The data fingerprint logged with every model trained on ``data`` (of the ``tables``
    it reads: all four for the decision models)."""
    return data_fingerprint({name: data.table(name) for name in tables})
