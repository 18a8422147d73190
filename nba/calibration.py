"""The scorer's response scale as purchases show it: purchases observed against predicted.

The rule-based scorer's propensity of an action whose goal is a purchase (every action
but review requests and content) is ``P(purchase | sent)``: its base rates are
conversion rates (a cart reminder's 0.12, SaleCycle's cart e-mails 6.33 % at an hour).
The online response statistics (:mod:`features.online.response_stats`) calibrate it
against *responses*, a click or a purchase, and clicks come many times as often as
purchases: in the closed loop (600 customers x 30 days, seed 0, counted without
forgetting) the 10 % cart discount
e-mail was clicked on 13 of 51 sends and bought through once, so the click calibration
read 7.2x the scorer's prediction where purchases read 0.55x (1 of 1.81 predicted), and
the first cart reminder 1.09x on clicks against 0.05x on purchases (1 of 19.3). Which
scale is right for weighing a message against its costs and a discount against its
redemptions is what :class:`PurchaseScale` shows beside the click calibration
(``nba actions stats``): the purchases the scorer predicted against those attributed,
with the same Gamma-Poisson belief the statistics use (prior Gamma(2, 2), mean 1). It is
a gross scale (purchases through the message, some of which would have happened
anyway): the incremental one needs a holdout (BENCHMARKS.md, issue 12, calib5).

>>> scale = PurchaseScale(purchases=1.0, predicted=19.3)
>>> round(scale.mean, 3), [round(x, 3) for x in scale.interval()]
(0.141, [0.038, 0.295])
>>> scale.describe()
'purchases 1.0 of 19.3 predicted: scale 0.14 (90 % 0.04-0.30)'
>>> PurchaseScale(purchases=0.0, predicted=0.0).describe()
'no purchase predicted yet: scale 1.00 (the prior)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nba.arbitration import ResponsePosterior

#: The prior of the purchase scale: Gamma(shape, rate), mean 1 (trust the scorer), the
#: weight of two predicted purchases (the response statistics' own prior).
PRIOR = (2.0, 2.0)


@dataclass(frozen=True, slots=True)
class PurchaseScale:
    """Purchases attributed to an action's messages (``purchases``) against the purchases
    the scorer predicted for them (``predicted``: the sum of its propensities), both
    decayed counts (effective evidence)."""

    purchases: float
    predicted: float

    def __post_init__(self) -> None:
        for name in ("purchases", "predicted"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @property
    def posterior(self) -> ResponsePosterior:
        """The Gamma belief about observed / predicted purchases."""
        return ResponsePosterior.from_counts(self.purchases, self.predicted, PRIOR)

    @property
    def mean(self) -> float:
        return self.posterior.mean

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        """The central credible interval of the scale."""
        return self.posterior.interval(level)

    def describe(self) -> str:
        """The scale in words, with its evidence."""
        if self.predicted <= 0.0:
            return f"no purchase predicted yet: scale {self.mean:.2f} (the prior)"
        low, high = self.interval()
        return (
            f"purchases {self.purchases:.1f} of {self.predicted:.1f} predicted: "
            f"scale {self.mean:.2f} (90 % {low:.2f}-{high:.2f})"
        )
