"""Offline evaluation of recommenders: protocols, warm and cold-start customers.

A :class:`RankingTask` holds what a model may learn from and what it is judged
on (the products each customer bought, or rated at least the relevance
threshold, in the test part, minus those they already had: those are never
recommended). Two protocols build it (:class:`EvaluationProtocol`):

* ``per-user``: each customer's last N % of positives by time is held out
  (:func:`per_user_task`), so every active customer is tested;
* ``global``: one time cut for everybody (:func:`ranking_task`), which also
  tests customers who arrived after the cut.

*Warm* customers had product interactions in training; *cold* customers had
none and are known only by their attributes. Both are reported, with counts.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from features.dataset import RetailDataset
from training.interactions import (
    OWNED_TYPES,
    InteractionWeights,
    interaction_frame,
    owned_pairs,
    rated_below,
)
from training.metrics import RankingMetrics, ranking_metrics
from training.recommendation import Recommender, TrainingData
from training.splits import (
    created_before,
    last_seen,
    launched_before,
    per_user_split,
    temporal_split,
    time_cut,
)

K = 10


@dataclass(frozen=True)
class RankingTask:
    """Training data before ``cut`` and relevant products per test customer after it."""

    name: str
    cut: pd.Timestamp
    train: TrainingData
    warm: dict[str, set[str]]
    cold: dict[str, set[str]]
    customers: pd.DataFrame = field(repr=False)  # every customer (cold ones are described here)


def positive_events(
    events: pd.DataFrame, relevant_types: Iterable[str], min_rating: float | None = None
) -> np.ndarray:
    """Which events are positives: of ``relevant_types``, naming a product, not rated below
    ``min_rating`` (explicit negatives are not positives), shape ``(len(events),)``."""
    hits = events["product_id"].notna() & events["event_type"].isin(list(relevant_types))
    return hits.to_numpy() & ~rated_below(events, min_rating)


def relevant_products(
    events: pd.DataFrame,
    exclude: pd.DataFrame,
    relevant_types: Iterable[str],
    min_rating: float | None = None,
) -> dict[str, set[str]]:
    """Products per customer among ``events`` of ``relevant_types`` (rated at least
    ``min_rating`` when rated), minus ``exclude`` pairs."""
    hits = events[positive_events(events, relevant_types, min_rating)]
    pairs = hits[["customer_id", "product_id"]].astype(str).drop_duplicates()
    if not exclude.empty:
        known = pd.MultiIndex.from_frame(exclude[["customer_id", "product_id"]].astype(str))
        pairs = pairs[~pd.MultiIndex.from_frame(pairs).isin(known)]
    out: dict[str, set[str]] = {}
    for cid, pid in zip(pairs["customer_id"], pairs["product_id"], strict=True):
        out.setdefault(cid, set()).add(pid)
    return out


def ranking_task(
    data: RetailDataset,
    cut: pd.Timestamp,
    end: pd.Timestamp | None = None,
    *,
    weights: InteractionWeights | None = None,
    relevant_types: Sequence[str] = OWNED_TYPES,
    name: str = "",
    events: pd.DataFrame | None = None,
) -> RankingTask:
    """A global time-split task: train on events before ``cut``, judge on ``[cut, end)``.

    Only products launched by the cut can be recommended (and count as relevant);
    customers created after the cut are not in the training customers table.
    ``events`` defaults to all of ``data``'s.
    """
    split = temporal_split(data.events if events is None else events, cut, end)
    return _task(
        data,
        split.train,
        split.test,
        cut,
        created_before(data.customers, cut),
        weights or InteractionWeights(),
        relevant_types,
        name,
    )


def per_user_task(
    data: RetailDataset,
    holdout_fraction: float = 0.2,
    *,
    weights: InteractionWeights | None = None,
    relevant_types: Sequence[str] = OWNED_TYPES,
    name: str = "",
    events: pd.DataFrame | None = None,
) -> RankingTask:
    """A per-customer temporal task: each customer's last ``holdout_fraction`` of positives
    (relevant types, rated at least the weights' ``min_rating``) is the test, what they did
    before it the training data (:func:`~training.splits.per_user_split`).

    ``cut`` is the latest moment in training (decay and the catalogue are as of then).
    """
    weights = weights or InteractionWeights()
    events = data.events if events is None else events
    positive = positive_events(events, relevant_types, weights.min_rating)
    split = per_user_split(events, positive, holdout_fraction)
    if split.test.empty:
        raise ValueError(
            "too few positives to hold any out: no customer has two or more "
            f"{'/'.join(relevant_types)} events"
            + (f" rated at least {weights.min_rating:g}" if weights.min_rating else "")
        )
    as_of = split.train["timestamp"].max() + pd.Timedelta(seconds=1)
    customers = data.customers[data.customers["created_at"] < as_of].reset_index(drop=True)
    return _task(data, split.train, split.test, as_of, customers, weights, relevant_types, name)


def _task(
    data: RetailDataset,
    train_events: pd.DataFrame,
    test_events: pd.DataFrame,
    as_of: pd.Timestamp,
    customers: pd.DataFrame,
    weights: InteractionWeights,
    relevant_types: Sequence[str],
    name: str,
) -> RankingTask:
    interactions = interaction_frame(train_events, as_of, weights)
    owned = owned_pairs(train_events, as_of)
    catalogue = launched_before(data.products, as_of)
    train = TrainingData(
        interactions=interactions,
        customers=customers,
        products=catalogue,
        owned=owned,
        as_of=as_of,
        last_seen=last_seen(train_events, as_of),
    )
    test = test_events[test_events["product_id"].isin(catalogue["product_id"])]
    relevant = relevant_products(test, owned, relevant_types, weights.min_rating)
    warm_ids = set(interactions["customer_id"])
    warm = {c: r for c, r in relevant.items() if c in warm_ids}
    cold = {c: r for c, r in relevant.items() if c not in warm_ids}
    return RankingTask(name, as_of, train, warm, cold, data.customers)


def customer_sample(data: RetailDataset, max_customers: int, seed: int = 0) -> RetailDataset:
    """``data`` restricted to a seeded sample of at most ``max_customers`` customers (their
    rows and events; every product and offer), or ``data`` itself when it has no more.

    A training budget: model selection on a sample costs a fraction of the whole, and the
    chosen family is then fitted once on every customer.
    """
    if max_customers < 1:
        raise ValueError(f"max_customers must be at least 1 (got {max_customers})")
    ids = np.sort(data.customers["customer_id"].astype(str).unique())
    if len(ids) <= max_customers:
        return data
    kept = pd.Index(np.random.default_rng(seed).choice(ids, max_customers, replace=False))
    return RetailDataset(
        data.customers[data.customers["customer_id"].astype(str).isin(kept)].reset_index(drop=True),
        data.products,
        data.offers,
        data.events[data.events["customer_id"].astype(str).isin(kept)].reset_index(drop=True),
    )


SplitKind = Literal["per-user", "global"]


@dataclass(frozen=True)
class EvaluationProtocol:
    """How recommenders are measured: the split, the held-out share, the list length and how
    many seeds each stochastic model is fitted with (median and spread are reported).

    The validation task splits the test task's training part once more the same way, so
    selection never sees the test. ``max_customers`` (the training budget; None: no
    limit) builds both on a seeded sample of that many customers
    (:func:`customer_sample`).
    """

    split: SplitKind = "per-user"
    holdout_fraction: float = 0.2
    k: int = K
    seeds: int = 1
    relevant_types: tuple[str, ...] = OWNED_TYPES
    max_customers: int | None = None

    def __post_init__(self) -> None:
        if self.split not in ("per-user", "global"):
            raise ValueError(f"split must be per-user or global (got {self.split!r})")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1) (got {self.holdout_fraction})")
        if self.k < 1 or self.seeds < 1:
            raise ValueError(f"k and seeds must be at least 1 (got {self.k}, {self.seeds})")
        if self.max_customers is not None and self.max_customers < 1:
            raise ValueError(f"max_customers must be at least 1 (got {self.max_customers})")

    def describe(self, weights: InteractionWeights) -> str:
        split = (
            f"each customer's last {self.holdout_fraction:.0%} of positives by time held out"
            if self.split == "per-user"
            else f"one time cut, last {self.holdout_fraction:.0%} of product events held out"
        )
        threshold = (
            f"; ratings >= {weights.min_rating:g} are positives, lower ones explicit negatives"
            if weights.min_rating is not None
            else ""
        )
        budget = (
            f"; chosen and measured on at most {self.max_customers:,} customers (a seeded sample)"
            if self.max_customers is not None
            else ""
        )
        return f"{split}{threshold}; {self.seeds} seed(s) per stochastic model{budget}"

    def task(
        self,
        data: RetailDataset,
        weights: InteractionWeights,
        name: str,
        events: pd.DataFrame | None = None,
    ) -> RankingTask:
        """The task on ``events`` (default: all of ``data``'s)."""
        events = data.events if events is None else events
        if self.split == "per-user":
            return per_user_task(
                data,
                self.holdout_fraction,
                weights=weights,
                relevant_types=self.relevant_types,
                name=name,
                events=events,
            )
        cut = time_cut(events, self.holdout_fraction)
        end = events["timestamp"].max() + pd.Timedelta(seconds=1)
        return ranking_task(
            data,
            cut,
            end,
            weights=weights,
            relevant_types=self.relevant_types,
            name=name,
            events=events,
        )

    def tasks(
        self, data: RetailDataset, weights: InteractionWeights, name: str
    ) -> tuple[RankingTask, RankingTask]:
        """``(validation, test)``: the validation task lies inside the test task's training
        (both on the sample of :attr:`max_customers` customers when there are more)."""
        if self.max_customers is not None:
            data = customer_sample(data, self.max_customers)
        test = self.task(data, weights, name)
        if self.split == "per-user":
            inside = per_user_split(
                data.events,
                positive_events(data.events, self.relevant_types, weights.min_rating),
                self.holdout_fraction,
            ).train
        else:
            inside = data.events[data.events["timestamp"] < test.cut]
        return self.task(data, weights, "validation", events=inside), test


def evaluate(
    model: Recommender, task: RankingTask, k: int = K, cold: bool = False
) -> RankingMetrics:
    """Ranking metrics at ``k`` of ``model`` on the task's warm (or cold) customers."""
    relevant = task.cold if cold else task.warm
    ids = sorted(relevant)
    described = task.customers[task.customers["customer_id"].isin(ids)] if cold else None
    recs = model.recommend(ids, k, customers=described)
    return ranking_metrics(
        recs.product_ids.tolist(), [relevant[c] for c in ids], k, len(model.catalogue)
    )


@dataclass(frozen=True)
class ModelResult:
    """One model's evaluation in a comparison."""

    model: str
    params: dict[str, object]
    warm: RankingMetrics
    cold: RankingMetrics | None
    train_seconds: float
    #: Warm NDCG of each seed's fit (``warm`` is the median one's); one entry when deterministic.
    ndcg_runs: tuple[float, ...] = ()

    @property
    def spread(self) -> str:
        """``0.1234`` or, over several seeds, ``0.1234 (0.1200-0.1250)``: median (min-max)."""
        runs = self.ndcg_runs or (self.warm.ndcg,)
        median = statistics.median(runs)
        return (
            f"{median:.4f}" if len(runs) < 2 else f"{median:.4f} ({min(runs):.4f}-{max(runs):.4f})"
        )


@dataclass(frozen=True)
class Comparison:
    """Every model's result on one data set, in the same run."""

    dataset: str
    cut: pd.Timestamp
    results: list[ModelResult]

    def best(self, metric: str = "ndcg") -> ModelResult:
        return max(self.results, key=lambda r: getattr(r.warm, metric))

    def markdown(self) -> str:
        """A Markdown table: one row per model, warm metrics at k (NDCG as median and range
        over seeds), personalisation, cold-start NDCG, customer counts, fit time."""
        k = self.results[0].warm.k if self.results else K
        head = (
            f"| {self.dataset} | NDCG@{k} | P@{k} | R@{k} | MAP@{k} | coverage | Jaccard "
            f"| warm n | cold NDCG@{k} | cold n | fit s |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|"
        )
        lines = [head]
        best = self.best().model if self.results else ""
        for r in self.results:
            w = r.warm
            cold = f"{r.cold.ndcg:.4f}" if r.cold is not None else "n/a"
            n_cold = r.cold.customers if r.cold is not None else 0
            name = f"**{r.model}**" if r.model == best else r.model
            lines.append(
                f"| {name} | {r.spread} | {w.precision:.4f} | {w.recall:.4f} | {w.map:.4f} "
                f"| {w.coverage:.3f} | {w.jaccard:.3f} | {w.customers:,} | {cold} | {n_cold:,} "
                f"| {r.train_seconds:.1f} |"
            )
        lines.append(f"\ntrained on what was known before {self.cut.isoformat()}.")
        return "\n".join(lines)
