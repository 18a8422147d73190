"""Arbitration: priorities, the best channel per action, and the pick with its propensity.

Priority follows the Pega-style formula, with costs subtracted::

    priority = response x value x lever x fatigue - channel_cost - P(response) x offer_cost

where ``response`` is the uplift when a model provides one (clipped at 0: an
action that would *lower* the response is never worth its value) and the
propensity ``P(response)`` otherwise. The offer cost is paid by everyone who
responds, including those who would have bought anyway, which is why uplift
matters for discounts. Priority never decreases when value or lever grows.

Exploration is Thompson sampling over per-action Beta posteriors of success
(passed in as input; a missing action gets the prior, Beta(1, 1) by default).
The scorer supplies the personalised mean; the posterior supplies how sure we
are of it: each draw ``theta`` scales the response by ``theta / E[theta]``. A
well-tried action (Beta(500, 4500)) is scored almost greedily; a new one
(Beta(1, 1)) anywhere between 0 and twice its expected response, so it gets
its chance.

The probability of the pick (its *propensity*, for off-policy evaluation) has
no closed form here, so it is estimated by Monte-Carlo: after the draw that
decides, ``draws`` more independent draws are made from the same seeded RNG
and the propensity is ``(1 + wins) / (1 + draws)``; this is never zero, its
bias is below ``1 / (1 + draws)`` and it matches the empirical pick frequency
(tested). Options that cannot win under any draw (their best case is below
another's worst case) are pruned first and have probability 0 exactly; when a
single option is left, or none is random, the propensity is exactly 1.

>>> terms = PriorityTerms(propensity=0.1, value=40.0, lever=1.5, channel_cost=0.06)
>>> round(terms.priority(), 2)
5.94
>>> round(priority(0.1, 40.0, 1.5, uplift=0.02, channel_cost=0.06, offer_cost=8.0), 2)
0.34
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nba.channels import Channel
from nba.reasons import Reason, ReasonCode, Rejection
from nba.screening import ActionCandidate, ChannelSlot

#: Monte-Carlo draws used to estimate the propensity of a Thompson-sampling pick.
DEFAULT_PROPENSITY_DRAWS = 200


def priority(
    propensity: float,
    value: float,
    lever: float = 1.0,
    *,
    uplift: float | None = None,
    channel_cost: float = 0.0,
    offer_cost: float = 0.0,
    fatigue: float = 1.0,
) -> float:
    """The priority of an action on a channel (see the module docstring)."""
    response = propensity if uplift is None else max(0.0, uplift)
    return response * value * lever * fatigue - channel_cost - propensity * offer_cost


@dataclass(frozen=True, slots=True)
class PriorityTerms:
    """The factors of a priority, kept for sampling and for explanations."""

    propensity: float
    value: float
    lever: float = 1.0
    uplift: float | None = None
    channel_cost: float = 0.0
    offer_cost: float = 0.0
    fatigue: float = 1.0

    def __post_init__(self) -> None:
        checks = {
            "propensity": 0.0 <= self.propensity <= 1.0,
            "value": self.value >= 0.0 and math.isfinite(self.value),
            "lever": self.lever >= 0.0 and math.isfinite(self.lever),
            "uplift": self.uplift is None or -1.0 <= self.uplift <= 1.0,
            "channel_cost": self.channel_cost >= 0.0 and math.isfinite(self.channel_cost),
            "offer_cost": self.offer_cost >= 0.0 and math.isfinite(self.offer_cost),
            "fatigue": 0.0 <= self.fatigue <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"priority term {name} is out of range: {getattr(self, name)!r}")

    @property
    def response(self) -> float:
        """What the value is multiplied by: uplift (at least 0) when known, else propensity."""
        return self.propensity if self.uplift is None else max(0.0, self.uplift)

    def priority(self, scale: float = 1.0) -> float:
        """The priority with the response probabilities scaled by ``scale`` (capped at 1)."""
        return priority(
            min(1.0, self.propensity * scale),
            self.value,
            self.lever,
            uplift=None if self.uplift is None else min(1.0, self.uplift * scale),
            channel_cost=self.channel_cost,
            offer_cost=self.offer_cost,
            fatigue=self.fatigue,
        )


@dataclass(frozen=True, slots=True)
class BetaPosterior:
    """Beta(alpha, beta) belief about an action's success rate.

    >>> BetaPosterior.from_counts(successes=3, failures=7).mean
    0.3333333333333333
    """

    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        if not (self.alpha > 0 and self.beta > 0 and math.isfinite(self.alpha + self.beta)):
            raise ValueError(f"Beta parameters must be positive, got {self.alpha}, {self.beta}")

    @classmethod
    def from_counts(
        cls, successes: float, failures: float, prior: tuple[float, float] = (1.0, 1.0)
    ) -> BetaPosterior:
        return cls(prior[0] + successes, prior[1] + failures)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def draw(self, rng: random.Random) -> float:
        return rng.betavariate(self.alpha, self.beta)


_UNINFORMATIVE = BetaPosterior()


@dataclass(frozen=True, slots=True)
class ChannelAssessment:
    """A policy's verdict on one action on one channel (``None`` for do-nothing).

    ``terms`` are set by policies that score with the priority formula; a
    ``reason`` filters the channel out (e.g. uplift too low).
    """

    channel: Channel | None
    priority: float
    terms: PriorityTerms | None = None
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """An action on its best channel, competing in arbitration."""

    candidate: ActionCandidate
    slot: ChannelSlot | None
    assessment: ChannelAssessment

    @property
    def action_id(self) -> str:
        return self.candidate.action.id

    @property
    def priority(self) -> float:
        return self.assessment.priority


@dataclass(frozen=True, slots=True)
class Pick:
    """The option picked, the probability it had of being picked, and whether
    exploration (rather than the highest expected priority) decided."""

    index: int
    propensity: float
    explored: bool = False
    basis: str = ""


def best_channels(
    candidates: Sequence[ActionCandidate],
    assessments: Sequence[Sequence[ChannelAssessment]],
) -> tuple[list[Option], list[Rejection]]:
    """Keep each action's best channel (highest priority; ties go to the action's
    channel order) and record why the others were dropped."""
    options: list[Option] = []
    rejections: list[Rejection] = []
    for candidate, per_channel in zip(candidates, assessments, strict=True):
        action_id = candidate.action.id
        if not candidate.slots:  # do nothing
            options.append(Option(candidate, None, per_channel[0]))
            continue
        kept: list[tuple[ChannelSlot, ChannelAssessment]] = []
        for slot, assessment in zip(candidate.slots, per_channel, strict=True):
            if assessment.reason is not None:
                rejections.append(Rejection.of(action_id, slot.channel, assessment.reason))
            else:
                kept.append((slot, assessment))
        if not kept:
            continue
        best_slot, best = kept[0]
        for slot, assessment in kept[1:]:
            if assessment.priority > best.priority:
                best_slot, best = slot, assessment
        options.append(Option(candidate, best_slot, best))
        for slot, assessment in kept:
            if slot is best_slot:
                continue
            if assessment.priority < best.priority:
                message = (
                    f"priority {assessment.priority:.3g} on {slot.channel.value}, "
                    f"below {best.priority:.3g} on {best_slot.channel.value}"
                )
            else:
                message = (
                    f"same priority {assessment.priority:.3g} as {best_slot.channel.value}, "
                    f"which the action lists first"
                )
            rejections.append(
                Rejection(action_id, slot.channel, ReasonCode.OTHER_CHANNEL_PREFERRED, message)
            )
    return options, rejections


def greedy_pick(options: Sequence[Option]) -> Pick:
    """The highest priority (the first among equals), with propensity 1."""
    if not options:
        raise ValueError("no option to pick from")
    return Pick(_argmax([o.priority for o in options]), 1.0, basis="highest priority")


def uniform_pick(options: Sequence[Option], rng: random.Random) -> Pick:
    """A uniformly random option, with propensity exactly ``1 / len(options)``."""
    if not options:
        raise ValueError("no option to pick from")
    n = len(options)
    return Pick(rng.randrange(n), 1.0 / n, basis=f"drawn uniformly among {n} options")


def thompson_pick(
    options: Sequence[Option],
    posteriors: Mapping[str, BetaPosterior],
    rng: random.Random,
    *,
    prior: BetaPosterior | None = None,
    draws: int = DEFAULT_PROPENSITY_DRAWS,
) -> Pick:
    """Pick by Thompson sampling and estimate the pick's propensity by Monte-Carlo.

    Options without priority terms, and do-nothing, keep their fixed priority.
    Deterministic for a given ``rng`` state.
    """
    if not options:
        raise ValueError("no option to pick from")
    if draws < 1:
        raise ValueError("draws must be at least 1")
    arms = _arms(options, posteriors, prior)
    floor = max(arm.worst for arm in arms)
    live = [arm for arm in arms if arm.best >= floor]  # the others can never win
    greedy = _argmax([o.priority for o in options])
    if len(live) == 1 or all(arm.posterior is None for arm in live):
        chosen = live[_argmax([arm.worst for arm in live])].index
        basis = "the only option that could win" if len(live) == 1 else "highest priority"
        return Pick(chosen, 1.0, explored=chosen != greedy, basis=basis)
    chosen = _draw(live, rng)
    wins = sum(_draw(live, rng) == chosen for _ in range(draws))
    if chosen == greedy:
        basis = f"Thompson sampling over {len(live)} options; also the highest expected priority"
    else:
        basis = (
            f"Thompson sampling over {len(live)} options explored it ahead of "
            f"{options[greedy].action_id}, which had the highest expected priority"
        )
    return Pick(chosen, (1 + wins) / (1 + draws), explored=chosen != greedy, basis=basis)


def thompson_probabilities(
    options: Sequence[Option],
    posteriors: Mapping[str, BetaPosterior],
    rng: random.Random,
    *,
    prior: BetaPosterior | None = None,
    draws: int = DEFAULT_PROPENSITY_DRAWS,
) -> list[float]:
    """The probability that :func:`thompson_pick` picks each option, shape ``(len(options),)``.

    Exact where :func:`thompson_pick` is exact (options that can never win get 0;
    a single live option, or none random, gets 1), otherwise the share of
    ``draws`` Monte-Carlo draws each option wins. The probabilities sum to 1;
    off-policy evaluation reads the whole distribution from here.
    """
    if not options:
        raise ValueError("no option to pick from")
    if draws < 1:
        raise ValueError("draws must be at least 1")
    arms = _arms(options, posteriors, prior)
    floor = max(arm.worst for arm in arms)
    live = [arm for arm in arms if arm.best >= floor]
    probabilities = [0.0] * len(options)
    if len(live) == 1 or all(arm.posterior is None for arm in live):
        probabilities[live[_argmax([arm.worst for arm in live])].index] = 1.0
        return probabilities
    for _ in range(draws):
        probabilities[_draw(live, rng)] += 1.0 / draws
    return probabilities


def _arms(
    options: Sequence[Option],
    posteriors: Mapping[str, BetaPosterior],
    prior: BetaPosterior | None,
) -> list[_Arm]:
    arms: list[_Arm] = []
    for index, option in enumerate(options):
        terms = option.assessment.terms
        if terms is None or option.candidate.action.is_do_nothing:
            arms.append(_Arm.fixed(index, option.priority))
        else:
            posterior = posteriors.get(option.action_id) or prior or _UNINFORMATIVE
            arms.append(_Arm.sampled(index, terms, posterior))
    return arms


@dataclass(frozen=True, slots=True)
class _Arm:
    """An option in Thompson sampling, with its priority formula unrolled for speed:
    ``min(1, response x s) x gain - channel_cost - min(1, propensity x s) x offer_cost``
    where ``s = theta / E[theta]``."""

    index: int
    posterior: BetaPosterior | None
    worst: float
    best: float
    response: float = 0.0
    propensity: float = 0.0
    gain: float = 0.0
    channel_cost: float = 0.0
    offer_cost: float = 0.0

    @classmethod
    def fixed(cls, index: int, value: float) -> _Arm:
        return cls(index, None, value, value)

    @classmethod
    def sampled(cls, index: int, terms: PriorityTerms, posterior: BetaPosterior) -> _Arm:
        # The sampled priority is piecewise linear in the scale, and may fall as it grows
        # (an offer's cost): its extremes lie at the ends or where a probability hits 1.
        top = 1.0 / posterior.mean
        scales = [0.0, top] + [1.0 / q for q in (terms.response, terms.propensity) if q * top > 1.0]
        values = [terms.priority(scale) for scale in scales]
        return cls(
            index,
            posterior,
            worst=min(values),
            best=max(values),
            response=terms.response / posterior.mean,
            propensity=terms.propensity / posterior.mean,
            gain=terms.value * terms.lever * terms.fatigue,
            channel_cost=terms.channel_cost,
            offer_cost=terms.offer_cost,
        )


def _draw(arms: Sequence[_Arm], rng: random.Random) -> int:
    best_index, best_value = -1, -math.inf
    betavariate = rng.betavariate
    for arm in arms:
        posterior = arm.posterior
        if posterior is None:
            value = arm.worst
        else:
            if posterior.alpha == 1.0 and posterior.beta == 1.0:
                theta = rng.random()  # Beta(1, 1) is uniform: 20x cheaper than betavariate
            else:
                theta = betavariate(posterior.alpha, posterior.beta)
            value = (
                min(1.0, arm.response * theta) * arm.gain
                - arm.channel_cost
                - min(1.0, arm.propensity * theta) * arm.offer_cost
            )
        if value > best_value:
            best_index, best_value = arm.index, value
    return best_index


def _argmax(values: Sequence[float]) -> int:
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:
            best = index
    return best
