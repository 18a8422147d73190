"""A blend of recommender families, weighted by what helps on the validation split.

Families make different mistakes: order-aware EASE reads what a customer did
last, a factor model (LightFM, ALS) what customers like them like. The
:class:`BlendRecommender` scores a customer with each fitted component,
standardises each row (per customer: mean 0, standard deviation 1 over the
catalogue, so scales that differ by orders of magnitude become comparable) and
sums them with fixed weights.

The weights come from :func:`ensemble_weights`: greedy forward selection with
replacement (Caruana et al., "Ensemble selection from libraries of models",
2004) on the validation customers' standardised scores: start from the best
component and add, ``steps`` times, the component (again, if it helps most) that
raises validation NDCG the most; a component's weight is how often it was
added in the best-scoring prefix of the additions. :func:`crossfit_ndcg`
measures what the procedure is worth on customers it did not choose the weights
on (two halves of the validation customers, each weighted on the other), so the
blend is compared with single families fairly.

>>> rel = np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)
>>> scores = {"a": np.array([[3.0, 1, 0], [3, 1, 0]]), "b": np.array([[0.0, 1, 3], [0, 3, 1]])}
>>> ensemble_weights(scores, rel, k=1, steps=4)
{'a': 0.5, 'b': 0.5}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from training.recommendation import Recommender, TrainingData, top_k

#: Additions of the greedy selection (weights are multiples of ``1 / steps``).
DEFAULT_STEPS = 10


def standardise(scores: np.ndarray) -> np.ndarray:
    """Each row to mean 0 and standard deviation 1 over its finite entries (a constant row
    to 0); ``-inf`` (products masked out) stays ``-inf``.

    >>> z = standardise(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, -np.inf]]))
    >>> z.astype(float).round(3).tolist()
    [[-1.225, 0.0, 1.225], [0.0, 0.0, -inf]]
    """
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    n = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    values = np.where(finite, s, 0.0)
    mean = values.sum(axis=1, keepdims=True) / n
    centred = np.where(finite, s - mean, 0.0)
    sd = np.sqrt((centred**2).sum(axis=1, keepdims=True) / n)
    out = np.where(sd > 1e-12, centred / np.maximum(sd, 1e-12), 0.0)
    return np.where(finite, out, -np.inf).astype(np.float32)


class BlendRecommender(Recommender):
    """Weighted sum of fitted components' standardised scores (see the module docstring).

    ``components`` maps a name to a :class:`Recommender`; ``weights`` maps some of those
    names to non-negative weights (at least one positive). Only components with a positive
    weight are kept. :meth:`fit` fits them, unless ``fitted`` says they already were, on
    the same data (the validation models a selection has just measured).
    """

    name = "blend"

    def __init__(
        self,
        components: Mapping[str, Recommender],
        weights: Mapping[str, float],
        *,
        fitted: bool = False,
    ) -> None:
        super().__init__()
        unknown = set(weights) - set(components)
        if unknown:
            raise ValueError(f"blend weights name no component: {sorted(unknown)}")
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError(f"blend weights must be non-negative, one positive (got {weights})")
        self.weights = {k: float(w) for k, w in weights.items() if w > 0}
        self.components = {k: components[k] for k in self.weights}
        self._fitted = fitted

    def _fit(self, data: TrainingData) -> None:
        if self._fitted:
            return
        for model in self.components.values():
            model.fit(data)
            release = getattr(model, "release_training_state", None)
            if release is not None:
                release()

    def score(
        self, customer_ids: Sequence[str], customers: pd.DataFrame | None = None
    ) -> np.ndarray:
        total = np.zeros((len(customer_ids), len(self.catalogue)), dtype=np.float32)
        for name, weight in self.weights.items():
            model = self.components[name]
            part = standardise(model.score(customer_ids, customers))
            # a component's catalogue is the same data's; align by product id all the same
            if not model.catalogue.equals(self.catalogue):
                at = model.catalogue.get_indexer(self.catalogue)
                part = np.where(at >= 0, part[:, np.maximum(at, 0)], 0.0)
            total += weight * part
        return total


def ndcg_of_scores(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Mean NDCG@``k`` (binary relevance) of ranking each row of ``scores``; ``relevant`` is
    a boolean matrix of the same shape, every row with at least one relevant product."""
    best = top_k(scores, k)
    hits = np.take_along_axis(relevant, best, axis=1)
    discount = 1.0 / np.log2(np.arange(2, best.shape[1] + 2))
    dcg = (hits * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(relevant.sum(axis=1), best.shape[1]) - 1]
    return float((dcg / ideal).mean())


def ensemble_weights(
    scores: Mapping[str, np.ndarray],
    relevant: np.ndarray,
    k: int = 10,
    steps: int = DEFAULT_STEPS,
    rows: np.ndarray | None = None,
) -> dict[str, float]:
    """Greedy forward selection with replacement over standardised ``scores`` (one matrix
    per component, customers x products, masked products ``-inf``), judged by NDCG@``k``
    against ``relevant`` on ``rows`` (default: every row). Weights sum to 1."""
    if not scores:
        raise ValueError("no component scores to blend")
    names = list(scores)
    rows = np.arange(relevant.shape[0]) if rows is None else rows
    parts = {n: standardise(scores[n][rows]) for n in names}
    rel = relevant[rows]
    counts = dict.fromkeys(names, 0)
    total = np.zeros_like(parts[names[0]])
    best: tuple[float, dict[str, int]] = (-1.0, {})
    for _ in range(steps):
        trial = {n: ndcg_of_scores(total + parts[n], rel, k) for n in names}
        pick = max(names, key=lambda n: (trial[n], -names.index(n)))
        counts[pick] += 1
        total += parts[pick]
        if trial[pick] > best[0]:
            best = (trial[pick], dict(counts))  # the best prefix of the additions wins
    used = sum(best[1].values())
    return {n: c / used for n, c in best[1].items() if c}


def crossfit_ndcg(
    scores: Mapping[str, np.ndarray],
    relevant: np.ndarray,
    k: int = 10,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
) -> float:
    """NDCG@``k`` of the blend on customers its weights were not chosen on: the customers
    in two random halves, each half scored with the weights :func:`ensemble_weights` chose
    on the other; the mean over all customers."""
    n = relevant.shape[0]
    order = np.random.default_rng(seed).permutation(n)
    halves = (order[: n // 2], order[n // 2 :])
    total = 0.0
    for chosen_on, judged_on in (halves, halves[::-1]):
        if not len(judged_on):
            continue
        if not len(chosen_on):
            chosen_on = judged_on
        weights = ensemble_weights(scores, relevant, k, steps, rows=chosen_on)
        blended = sum(w * standardise(scores[name][judged_on]) for name, w in weights.items())
        total += ndcg_of_scores(np.asarray(blended), relevant[judged_on], k) * len(judged_on)
    return total / max(n, 1)
