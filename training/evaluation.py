"""Offline evaluation of recommenders on a time split: warm and cold-start customers.

A :class:`RankingTask` holds what a model may learn from (everything before the
cut) and what it is judged on (the products each customer bought or rated in
the test window, minus those they already had: those are never recommended).
*Warm* customers had product interactions before the cut; *cold* customers had
none and are known only by their attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from features.dataset import RetailDataset
from training.interactions import OWNED_TYPES, InteractionWeights, interaction_frame, owned_pairs
from training.metrics import RankingMetrics, ranking_metrics
from training.recommendation import Recommender, TrainingData
from training.splits import created_before, launched_before, temporal_split

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


def relevant_products(
    events: pd.DataFrame, exclude: pd.DataFrame, relevant_types: Iterable[str]
) -> dict[str, set[str]]:
    """Products per customer among ``events`` of ``relevant_types``, minus ``exclude`` pairs."""
    hits = events[events["product_id"].notna() & events["event_type"].isin(list(relevant_types))]
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
) -> RankingTask:
    """A time-split evaluation task: train on events before ``cut``, judge on ``[cut, end)``.

    Only products launched by the cut can be recommended (and count as relevant);
    customers created after the cut are not in the training customers table.
    """
    split = temporal_split(data.events, cut, end)
    weights = weights or InteractionWeights()
    interactions = interaction_frame(split.train, cut, weights)
    owned = owned_pairs(split.train, cut)
    catalogue = launched_before(data.products, cut)
    train = TrainingData(
        interactions=interactions,
        customers=created_before(data.customers, cut),
        products=catalogue,
        owned=owned,
        as_of=cut,
    )
    test = split.test[split.test["product_id"].isin(catalogue["product_id"])]
    relevant = relevant_products(test, owned, relevant_types)
    warm_ids = set(interactions["customer_id"])
    warm = {c: r for c, r in relevant.items() if c in warm_ids}
    cold = {c: r for c, r in relevant.items() if c not in warm_ids}
    return RankingTask(name, cut, train, warm, cold, data.customers)


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


@dataclass(frozen=True)
class Comparison:
    """Every model's result on one data set, in the same run."""

    dataset: str
    cut: pd.Timestamp
    results: list[ModelResult]

    def best(self, metric: str = "ndcg") -> ModelResult:
        return max(self.results, key=lambda r: getattr(r.warm, metric))

    def markdown(self) -> str:
        """A Markdown table: one row per model, warm metrics at k, cold-start NDCG, fit time."""
        k = self.results[0].warm.k if self.results else K
        head = (
            f"| {self.dataset} | P@{k} | R@{k} | NDCG@{k} | MAP@{k} | coverage "
            f"| cold NDCG@{k} | fit s |\n|---|---|---|---|---|---|---|---|"
        )
        lines = [head]
        best = self.best().model if self.results else ""
        for r in self.results:
            w = r.warm
            cold = f"{r.cold.ndcg:.4f}" if r.cold is not None else "n/a"
            name = f"**{r.model}**" if r.model == best else r.model
            lines.append(
                f"| {name} | {w.precision:.4f} | {w.recall:.4f} | {w.ndcg:.4f} | {w.map:.4f} "
                f"| {w.coverage:.3f} | {cold} | {r.train_seconds:.1f} |"
            )
        first = self.results[0] if self.results else None
        n_warm = first.warm.customers if first else 0
        n_cold = first.cold.customers if first and first.cold else 0
        lines.append(
            f"\n{n_warm:,} warm test customers, {n_cold:,} cold-start customers; "
            f"train before {self.cut.isoformat()}."
        )
        return "\n".join(lines)
