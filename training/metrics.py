"""Offline metrics: ranking at k, classification and calibration, uplift.

Ranking metrics take recommended lists (best first) and the set of relevant
products of each customer; each metric is averaged over customers that have
at least one relevant product.

>>> recs = [["a", "b", "c"], ["x", "y", "z"]]
>>> rel = [{"a", "c"}, {"q"}]
>>> round(precision_at_k(recs, rel, 3), 4), round(recall_at_k(recs, rel, 3), 4)
(0.3333, 0.5)
>>> round(ndcg_at_k(recs, rel, 3), 4), round(map_at_k(recs, rel, 3), 4)
(0.4599, 0.4167)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import brier_score_loss, roc_auc_score


def _hits(recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int) -> np.ndarray:
    if len(recommended) != len(relevant):
        raise ValueError(
            f"recommended and relevant must have one entry per customer "
            f"({len(recommended)} != {len(relevant)})"
        )
    hits = np.zeros((len(recommended), k), dtype=bool)
    for i, (recs, rel) in enumerate(zip(recommended, relevant, strict=True)):
        for j, item in enumerate(list(recs)[:k]):
            hits[i, j] = item in rel
    return hits


def _sizes(relevant: Sequence[set[str]]) -> np.ndarray:
    return np.array([len(r) for r in relevant], dtype=float)


def precision_at_k(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> float:
    """Share of the top ``k`` that is relevant, averaged over customers."""
    hits = _hits(recommended, relevant, k)
    keep = _sizes(relevant) > 0
    return float((hits.sum(axis=1) / k)[keep].mean()) if keep.any() else 0.0


def recall_at_k(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> float:
    """Share of a customer's relevant products found in the top ``k``, averaged."""
    hits = _hits(recommended, relevant, k)
    sizes = _sizes(relevant)
    keep = sizes > 0
    return float((hits.sum(axis=1)[keep] / sizes[keep]).mean()) if keep.any() else 0.0


def ndcg_at_k(recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary relevance, averaged."""
    hits = _hits(recommended, relevant, k)
    sizes = _sizes(relevant)
    keep = sizes > 0
    if not keep.any():
        return 0.0
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discount).sum(axis=1)
    ideal = np.array([discount[: int(min(s, k))].sum() for s in sizes])
    return float((dcg[keep] / ideal[keep]).mean())


def map_at_k(recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int) -> float:
    """Mean average precision at ``k`` (normalised by ``min(|relevant|, k)``)."""
    hits = _hits(recommended, relevant, k)
    sizes = _sizes(relevant)
    keep = sizes > 0
    if not keep.any():
        return 0.0
    precision = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    ap = (precision * hits).sum(axis=1) / np.minimum(np.maximum(sizes, 1), k)
    return float(ap[keep].mean())


def catalogue_coverage(recommended: Sequence[Sequence[str]], catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one list.

    >>> catalogue_coverage([["a", "b"], ["a", "c"]], 10)
    0.3
    """
    seen = {item for recs in recommended for item in recs}
    return len(seen) / catalogue_size if catalogue_size else 0.0


def mean_pairwise_jaccard(
    recommended: Sequence[Sequence[str]], max_lists: int = 2000, seed: int = 0
) -> float:
    """Mean Jaccard similarity over every pair of lists (0: fully personal, 1: one list for
    all); a seeded sample of ``max_lists`` lists beyond that many.

    >>> mean_pairwise_jaccard([["a", "b"], ["a", "c"], ["a", "b"]])
    0.5555555555555555
    """
    lists = [list(r) for r in recommended]
    if len(lists) < 2:
        return float("nan")
    if len(lists) > max_lists:
        keep = np.random.default_rng(seed).choice(len(lists), max_lists, replace=False)
        lists = [lists[i] for i in sorted(keep)]
    vocabulary = {item: j for j, item in enumerate({i for r in lists for i in r})}
    rows = np.repeat(np.arange(len(lists)), [len(set(r)) for r in lists])
    cols = np.fromiter((vocabulary[i] for r in lists for i in set(r)), dtype=np.int64)
    member = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(lists), len(vocabulary)))
    inter = np.asarray((member @ member.T).todense())
    sizes = np.asarray(member.sum(axis=1)).ravel()
    union = sizes[:, None] + sizes[None, :] - inter
    jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    upper = np.triu_indices(len(lists), k=1)
    return float(jaccard[upper].mean())


@dataclass(frozen=True)
class RankingMetrics:
    """Ranking quality at ``k`` over ``customers`` evaluated customers."""

    k: int
    customers: int
    precision: float
    recall: float
    ndcg: float
    map: float
    coverage: float
    #: Mean pairwise Jaccard of the top-k lists (personalisation: lower is more personal).
    jaccard: float = float("nan")

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        k = self.k
        return {
            f"{prefix}precision_at_{k}": self.precision,
            f"{prefix}recall_at_{k}": self.recall,
            f"{prefix}ndcg_at_{k}": self.ndcg,
            f"{prefix}map_at_{k}": self.map,
            f"{prefix}coverage_at_{k}": self.coverage,
            f"{prefix}jaccard_at_{k}": self.jaccard,
            f"{prefix}customers": float(self.customers),
        }

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def ranking_metrics(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int, catalogue_size: int
) -> RankingMetrics:
    """All ranking metrics at ``k`` in one pass."""
    return RankingMetrics(
        k=k,
        customers=int((_sizes(relevant) > 0).sum()),
        precision=precision_at_k(recommended, relevant, k),
        recall=recall_at_k(recommended, relevant, k),
        ndcg=ndcg_at_k(recommended, relevant, k),
        map=map_at_k(recommended, relevant, k),
        coverage=catalogue_coverage(recommended, catalogue_size),
        jaccard=mean_pairwise_jaccard(recommended),
    )


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 10) -> float:
    """ECE: bin-size-weighted mean gap between predicted and observed rates (equal-width bins).

    >>> expected_calibration_error(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5]))
    0.0
    """
    y_true = np.asarray(y_true, dtype=float)
    y_prob = np.asarray(y_prob, dtype=float)
    bins = np.clip((y_prob * n_bins).astype(int), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        at = bins == b
        if at.any():
            total += at.sum() * abs(y_true[at].mean() - y_prob[at].mean())
    return float(total / max(len(y_true), 1))


@dataclass(frozen=True)
class ClassificationMetrics:
    """Discrimination and calibration of predicted probabilities."""

    auc: float
    brier: float
    ece: float
    base_rate: float
    n: int
    log_loss: float = float("nan")


def classification_metrics(y_true: np.ndarray, y_prob: np.ndarray) -> ClassificationMetrics:
    """AUC (NaN with a single class), Brier score, ECE and log loss (probabilities clipped
    to [1e-6, 1 - 1e-6])."""
    y_true = np.asarray(y_true, dtype=int)
    y_prob = np.asarray(y_prob, dtype=float)
    auc = float(roc_auc_score(y_true, y_prob)) if len(np.unique(y_true)) == 2 else float("nan")
    return ClassificationMetrics(
        auc=auc,
        brier=float(brier_score_loss(y_true, y_prob)),
        ece=expected_calibration_error(y_true, y_prob),
        base_rate=float(y_true.mean()) if len(y_true) else float("nan"),
        n=len(y_true),
        log_loss=_log_loss(y_true, y_prob),
    )


def _log_loss(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    if not len(y_true):
        return float("nan")
    p = np.clip(y_prob, 1e-6, 1 - 1e-6)
    return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log1p(-p)))


def qini_curve(
    uplift: np.ndarray, treated: np.ndarray, outcome: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve: ``(share targeted, incremental outcomes)`` targeting by decreasing uplift.

    At the top ``n`` customers: ``Y_t(n) - Y_c(n) * N_t(n) / N_c(n)``.
    """
    order = np.argsort(-np.asarray(uplift), kind="stable")
    t = np.asarray(treated, dtype=float)[order]
    y = np.asarray(outcome, dtype=float)[order]
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * (1 - t))
    gain = y_t - np.divide(y_c * n_t, n_c, out=np.zeros_like(y_c), where=n_c > 0)
    share = np.arange(1, len(y) + 1) / max(len(y), 1)
    return np.concatenate([[0.0], share]), np.concatenate([[0.0], gain])


def qini_coefficient(uplift: np.ndarray, treated: np.ndarray, outcome: np.ndarray) -> float:
    """Area between the Qini curve and the random-targeting line, per customer."""
    x, gain = qini_curve(uplift, treated, outcome)
    random_line = x * gain[-1]
    return float(np.trapezoid(gain - random_line, x))


def uplift_at_k(
    uplift: np.ndarray, treated: np.ndarray, outcome: np.ndarray, share: float
) -> float:
    """Outcome rate of treated minus control among the top ``share`` by predicted uplift."""
    n = max(round(len(uplift) * share), 1)
    top = np.argsort(-np.asarray(uplift), kind="stable")[:n]
    t = np.asarray(treated, dtype=bool)[top]
    y = np.asarray(outcome, dtype=float)[top]
    if t.all() or (~t).all():
        return float("nan")
    return float(y[t].mean() - y[~t].mean())
