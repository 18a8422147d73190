"""Incentive trials: a refused offer sent to a few customers until its outcomes decide.

The offer-pays test (:attr:`~nba.arbitration.PriorityTerms.offer_pays`) refuses an
incentive whose uplift, as the scorer's prior sees it, does not pay for its cost on every
redemption. A refused offer is never sent, so no outcome ever corrects the prior: the
engine's prior refuses the simulated retailer's win-back discount to all but the heaviest
promotion lovers, where the truth's oracle sends it 54-73 times per 600 customers a month
(BENCHMARKS.md, issue 12, winback6). An :class:`OfferTrial` (off unless the engine is given
one) lets such an offer go to a small, logged share of the customers it was refused to,
and learns from the outcomes whether it pays:

* **The gate.** Each customer gets a fixed draw ``u`` in ``[0, 1)`` per offer action (a
  hash of the two ids: the same customer stays in the same group from one decision and
  one replica to the next, and a retried request gets the same answer). The refused offer
  goes out, instead of whatever the decision would have been, when ``u`` is below the
  *open probability* ``g``; the logged propensities are the mixture's, exactly (``g`` for
  the offer, ``1 - g`` times its own probability for every other option), so off-policy
  evaluation stays valid.
* **The belief.** ``g = P(theta > 0)`` under a Normal belief about ``theta``, the net margin
  per decision of sending the offer instead of the default decision (the margin of the
  purchases the message brings, less the offer's cost on each of them). Its prior is
  centred below 0 so that ``g`` is exactly the marketer's ``share`` before any evidence
  (``mean = prior_sd x Phi^-1(share)``). The evidence is the trial itself: *treated* decisions
  (the offer went out) against *held-out* ones (the gate stayed shut: the default went
  out, or nothing), both measured alike, so what is learned is the offer's uplift over
  the default, not its gross conversion. Evidence that it pays raises ``g`` toward
  ``1 - holdout`` (the held-out share that keeps measuring it); evidence that it does not
  lowers ``g`` toward 0, and the trial stops.
* **What it never does.** The trial only chooses among options the screening already
  allowed: consent, eligibility, budgets, caps and quiet hours hold as for any send.

>>> trial = OfferTrial(share=0.05)
>>> round(trial.open_probability(None, offer_cost=7.0), 4)  # no evidence: the share
0.05
>>> pays = TrialCounts(treated=400, treated_net=120.0, treated_net_sq=1200.0,
...                    held=2000, held_net=100.0, held_net_sq=4000.0)
>>> round(trial.open_probability(pays, offer_cost=7.0), 2)  # +0.25 a decision: opened
0.9
>>> loses = TrialCounts(treated=200, treated_net=-100.0, treated_net_sq=1000.0,
...                     held=2000, held_net=100.0, held_net_sq=4000.0)
>>> trial.open_probability(loses, offer_cost=7.0) < 0.001  # -0.55 a decision: stopped
True
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nba.decision import Decision
from nba.frozen import fast_init
from nba.reasons import ReasonCode

#: The key prefix of a trial's evidence among the statistics a decision reads.
TRIAL_PREFIX = "trial:"
#: Pseudo-decisions of prior variance in each arm's per-decision variance estimate
#: (currency^2 at the offer's cost squared: one redemption's cost is a unit's natural scale).
VARIANCE_PRIOR_WEIGHT = 2.0


def trial_key(action_id: str) -> str:
    """The key of an offer action's trial evidence (:class:`TrialCounts`)."""
    return TRIAL_PREFIX + action_id


def trial_draw(action_id: str, customer_id: str) -> float:
    """The customer's fixed draw in ``[0, 1)`` for ``action_id``'s trial (a hash: uniform
    over customers, independent of everything a decision reads).

    >>> trial_draw("winback", "C1") == trial_draw("winback", "C1")
    True
    >>> 0.0 <= trial_draw("winback", "C1") < 1.0
    True
    """
    digest = hashlib.blake2b(f"{action_id}|{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@fast_init
@dataclass(frozen=True, slots=True)
class TrialCounts:
    """An offer trial's evidence: decisions (``treated``: the offer went out; ``held``: the
    gate stayed shut) and the sum and sum of squares of each one's net margin (purchases
    through the decision's message, less the offer's cost on each)."""

    treated: float = 0.0
    treated_net: float = 0.0
    treated_net_sq: float = 0.0
    held: float = 0.0
    held_net: float = 0.0
    held_net_sq: float = 0.0

    def __add__(self, other: TrialCounts) -> TrialCounts:
        return TrialCounts(
            self.treated + other.treated,
            self.treated_net + other.treated_net,
            self.treated_net_sq + other.treated_net_sq,
            self.held + other.held,
            self.held_net + other.held_net,
            self.held_net_sq + other.held_net_sq,
        )


@dataclass(frozen=True, slots=True)
class UpliftBelief:
    """Normal belief about the net margin per decision of the offer over the default."""

    mean: float
    sd: float

    @property
    def pays(self) -> float:
        """P(the offer earns more than the default): ``Phi(mean / sd)``."""
        return statistics.NormalDist().cdf(self.mean / self.sd)


@dataclass(frozen=True)
class OfferTrial:
    """The marketer's setting for trials of refused incentives (module docstring).

    Parameters
    ----------
    share
        The share of the customers an offer is refused to who get it before any
        evidence (default 0.05), in ``(0, 1)``.
    holdout
        The share kept out however well the offer does, so its uplift keeps being
        measured (default 0.1), in ``(0, 1)``.
    prior_sd
        The prior's spread of the offer's net margin per decision, as a share of the
        offer's cost (default 0.05: 0.35 for a 7.00 discount), > 0. Smaller: more
        evidence needed to move the gate.
    """

    share: float = 0.05
    holdout: float = 0.1
    prior_sd: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise ValueError(f"offer trial share must be in (0, 1), got {self.share}")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"offer trial holdout must be in (0, 1), got {self.holdout}")
        if not (self.prior_sd > 0.0 and math.isfinite(self.prior_sd)):
            raise ValueError(f"offer trial prior_sd must be a positive number, got {self.prior_sd}")
        if self.share > 1.0 - self.holdout:
            raise ValueError(
                f"offer trial share {self.share} is above 1 - holdout ({1.0 - self.holdout:g})"
            )

    def belief(self, counts: TrialCounts | None, offer_cost: float) -> UpliftBelief:
        """The belief about the offer's net margin per decision over the default, from
        the prior and ``counts``."""
        scale = max(offer_cost, 1e-9)
        sd0 = self.prior_sd * scale
        mean0 = sd0 * statistics.NormalDist().inv_cdf(self.share)
        precision, weighted = 1.0 / sd0**2, mean0 / sd0**2
        if counts is not None and counts.treated > 0.0 and counts.held > 0.0:
            # each arm's variance, shrunk toward a cost's square: rare purchases leave most
            # units at 0, and the variance of a few zeros would claim certainty
            se2 = _arm_variance(counts.treated, counts.treated_net, counts.treated_net_sq, scale)
            se2 += _arm_variance(counts.held, counts.held_net, counts.held_net_sq, scale)
            difference = counts.treated_net / counts.treated - counts.held_net / counts.held
            precision += 1.0 / se2
            weighted += difference / se2
        return UpliftBelief(weighted / precision, math.sqrt(1.0 / precision))

    def open_probability(self, counts: TrialCounts | None, offer_cost: float) -> float:
        """The share of the customers refused the offer who get it now: ``P(it pays)``,
        at most ``1 - holdout``; exactly ``share`` without evidence."""
        if counts is None or counts.treated <= 0.0 or counts.held <= 0.0:
            return self.share
        return min(1.0 - self.holdout, self.belief(counts, offer_cost).pays)


def _arm_variance(n: float, total: float, total_sq: float, scale: float) -> float:
    """The variance of an arm's mean net margin: the units' variance, shrunk toward
    ``scale ** 2`` with :data:`VARIANCE_PRIOR_WEIGHT` pseudo-units, over ``n``."""
    spread = max(0.0, total_sq - total * total / n)
    return (spread + VARIANCE_PRIOR_WEIGHT * scale**2) / (n + VARIANCE_PRIOR_WEIGHT) / n


def trial_counts(stats: Mapping[str, Any], action_id: str) -> TrialCounts | None:
    """The trial evidence of ``action_id`` among the statistics a decision reads (their
    ``trials`` mapping, when the statistics keep trials), else ``None``."""
    trials = getattr(stats, "trials", None)
    if not trials:
        return None
    found = trials.get(trial_key(action_id))
    return found if isinstance(found, TrialCounts) else None


@dataclass(frozen=True, slots=True)
class TrialUnit:
    """A decision in an offer trial: the incentive on trial, whether it went out (treated)
    or the gate stayed shut (held out), the offer's cost on each redemption, and what its
    redemptions on orders the customer would have placed anyway are expected to cost
    (``P(redeemed anyway) x cost``, :mod:`nba.redemption`: those orders are not the
    message's, so no outcome joined to the decision shows them)."""

    action_id: str
    treated: bool
    offer_cost: float
    anyway_cost: float = 0.0

    @property
    def net_at_send(self) -> float:
        """The unit's net margin before any purchase: the cost of its redemptions anyway."""
        return -self.anyway_cost

    def net_with_purchase(self, margin: float) -> float:
        """The unit's net margin once a purchase of ``margin`` is joined to it (the offer's
        cost on it when the offer went out)."""
        return margin - self.offer_cost + self.net_at_send if self.treated else margin


def trial_unit(decision: Decision) -> TrialUnit | None:
    """The trial ``decision`` took part in (``None``: none): an incentive among its logged
    options with a probability above 0 on a channel where the offer-pays test refused
    it (only a trial puts a refused option there: :class:`~nba.engine.NextBestActionPolicy`);
    treated when the decision's first contact is that option."""
    refused = {
        (r.action_id, r.channel.value)
        for r in decision.rejections
        if r.code is ReasonCode.UPLIFT_TOO_LOW and r.channel is not None
    }
    if not refused:
        return None
    for option in decision.options:
        if option.probability and (option.action_id, option.channel) in refused:
            contacts = decision.contacts
            first = contacts[0] if contacts else None
            treated = (
                first is not None
                and first.action_id == option.action_id
                and first.channel is not None
                and first.channel.value == option.channel
            )
            terms = first.terms if treated and first is not None else None
            if terms is None:
                return TrialUnit(option.action_id, treated, 0.0)
            anyway = terms.redeemed_anyway * terms.anyway_offer_cost
            return TrialUnit(option.action_id, True, terms.offer_cost, anyway)
    return None
