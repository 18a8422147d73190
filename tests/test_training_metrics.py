"""Ranking and calibration metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import (
    catalogue_coverage,
    classification_metrics,
    expected_calibration_error,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    qini_curve,
    ranking_metrics,
    recall_at_k,
    uplift_at_k,
)


def test_single_customer_by_hand() -> None:
    recs = [["a", "b", "c", "d"]]
    rel = [{"b", "d", "z"}]
    assert precision_at_k(recs, rel, 4) == pytest.approx(2 / 4)
    assert recall_at_k(recs, rel, 4) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(recs, rel, 4) == pytest.approx(dcg / idcg)
    assert map_at_k(recs, rel, 4) == pytest.approx((1 / 2 + 2 / 4) / 3)


def test_perfect_and_empty_lists() -> None:
    recs = [["a", "b"], ["c", "d"]]
    assert ndcg_at_k(recs, [{"a", "b"}, {"c"}], 2) == pytest.approx(1.0)
    assert map_at_k(recs, [{"a", "b"}, {"c"}], 2) == pytest.approx(1.0)
    assert precision_at_k(recs, [{"x"}, {"y"}], 2) == 0.0


def test_customers_without_relevant_items_are_skipped() -> None:
    recs = [["a"], ["b"]]
    m = ranking_metrics(recs, [{"a"}, set()], 1, catalogue_size=4)
    assert m.customers == 1
    assert m.precision == 1.0
    assert m.coverage == pytest.approx(0.5)
    assert catalogue_coverage(recs, 4) == pytest.approx(0.5)


def test_mismatched_lengths_fail_clearly() -> None:
    with pytest.raises(ValueError, match="one entry per customer"):
        precision_at_k([["a"]], [], 1)


def test_calibration_metrics() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.05, 0.05, 0.95, 0.95])
    m = classification_metrics(y, p)
    assert m.auc == 1.0
    assert m.brier == pytest.approx(0.0025)
    assert m.ece == pytest.approx(0.05)
    assert expected_calibration_error(np.array([1, 1]), np.array([0.3, 0.3])) == pytest.approx(0.7)


def test_qini_and_uplift_at_k() -> None:
    # the top-ranked half responds only when treated: uplift 1 there, 0 below
    uplift = np.array([4, 3, 2, 1, 0, -1, -2, -3], dtype=float)
    treated = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    outcome = np.array([1, 0, 1, 0, 0, 0, 0, 0])
    assert uplift_at_k(uplift, treated, outcome, 0.5) == pytest.approx(1.0)
    x, gain = qini_curve(uplift, treated, outcome)
    assert x[0] == 0.0 and x[-1] == 1.0
    assert gain[-1] == pytest.approx(2.0)
