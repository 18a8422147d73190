"""The purchase scale (:mod:`nba.calibration`): purchases observed against predicted."""

from __future__ import annotations

import math

import pytest

from nba.calibration import PurchaseScale


def test_the_scale_starts_at_the_scorer_and_follows_the_purchases_as_evidence_grows() -> None:
    """Without a prediction the scale is the prior's 1; with a tenth of the predicted
    purchases observed it falls toward 0.1, and its interval narrows as they add up."""
    assert PurchaseScale(0.0, 0.0).mean == 1.0
    few, many = PurchaseScale(1.0, 10.0), PurchaseScale(100.0, 1000.0)
    assert few.mean > many.mean > 0.1
    assert many.mean == pytest.approx(0.1, abs=0.005)
    (low_few, high_few), (low_many, high_many) = few.interval(), many.interval()
    assert high_many - low_many < high_few - low_few
    assert low_many < 0.1 < high_many


@pytest.mark.parametrize("field", ["purchases", "predicted"])
@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_a_count_out_of_range_is_refused_naming_it(field: str, bad: float) -> None:
    counts = {"purchases": 1.0, "predicted": 1.0, field: bad}
    with pytest.raises(ValueError, match=field):
        PurchaseScale(**counts)
