"""Arbitration: priorities, the best channel per action, and the pick with its propensity.

Priority follows the Pega-style formula, with costs subtracted::

    priority = response x value x lever x fatigue - channel_cost - P(response) x offer_cost
               - opportunity_cost

where ``response`` is the action's uplift when a model provides one for the
action itself (clipped at 0: an action that would *lower* the response is never
worth its value) and the propensity ``P(response)`` otherwise. Priority never
decreases when value or lever grows. ``opportunity_cost`` is what the send takes from
the customer's next time-critical reminder by spending a channel's last unit of a cap
or opening the gap between messages (:mod:`nba.reserve`): "kept e-mail free for the
browse reminder", in the reasons. An action whose window closes before the contact
rules let it go again has no second chance, and one that can wait goes at its next: such
an action gets a *deferral credit* (:mod:`nba.deferral`), what sending it first still
leaves of the better action that waits ("welcome_1 first: its window closes in 19.8 h,
...; birthday can wait until ..."), added to its priority and never weighed against
doing nothing.

An action that carries an offer is valued as a decision hub values an incentive:
its message's response value plus the offer's incremental uplift, less the
offer's cost on every redemption. The scorer's uplift for such an action is the
offer's own effect (``offer_uplift``: how much the offer adds to the same message
without it, the output of the trained uplift models); the message without the
offer is answered with ``P(response) - offer_uplift``, so the two add up to the
propensity, and the offer's cost is paid by everyone who responds, including
those who would have bought anyway. Whether a discount is worth giving is a
question about the offer alone: :attr:`PriorityTerms.offer_pays` holds when the
offer's uplift x value covers its cost on every redemption
(``offer_uplift x value >= P(response) x offer_cost``, plus the redemptions on orders
placed anyway, :mod:`nba.redemption`; a percent discount costs its share of the order
it is redeemed on); the engine sends an
incentive only where it does (a time-limited discount only where its uplift
pays for it), else the plain message wins or nothing goes (a cart's last message
once its plain reminders are spent); an incentive of a type the catalog has no plain
message of competes as a message of its own.

Exploration is Thompson sampling over per-option posteriors of the response
(passed in as input, keyed by :func:`stats_key` ``action@channel`` or by action
id; a missing one gets the prior). The scorer supplies the personalised mean;
the posterior supplies how far to trust it: each draw scales the response by a
factor ``s``. For a :class:`ResponsePosterior` (the online statistics: a Gamma
belief about observed / predicted responses) ``s`` is the drawn calibration
factor itself, so evidence moves the priority as well as narrowing it; for a
:class:`BetaPosterior` ``s = theta / E[theta]`` (spread only). A well-tried
option is scored almost greedily, a new one gets its chance. No draw answers a
message more often than its channel allows (:attr:`PriorityTerms.ceiling`, the
scorer's: a message is answered only once opened, and a push's open is its tap):
the posterior's spread stops there, and only its evidence (a mean above 1) lifts a
pair beyond. Drawn up to three times a push's taps, pushed cross-sells rated at
their taps were explored where their e-mail earned twice as much (BENCHMARKS.md,
issue 12, cells9).

The probability of every option (its *propensity*, for off-policy evaluation)
is exact: each posterior is represented by ``points`` equally likely values
(its quantiles at ``(q + 0.5) / points``), the policy draws one of them per
option, and the chance that an option wins is computed from the sorted values
(ties go to the first option, as in the draw). Options that cannot win under any
draw (their best case is below another's worst case) have probability 0; when a
single option is left, or none is random, the propensity is exactly 1.

Exploration has a price, and for a *time-critical* action (``time_critical`` in the
catalog: a cart or browse reminder) it is the whole action: a cross-sell explored
today can go out tomorrow, a cart reminder passed over is lost with its moment.
So when the option with the highest expected priority (the mean of its values) is
time-critical, only time-critical options due no later than it take part in the
draw: its other channels that send as soon (the statistics are per channel, so
channels are still explored), another time-critical action; never another action
or a later send. The other options have probability 0, and the logged
probabilities stay exact. A time-critical option that is not the best expected
one is sampled like any other. The same holds when the leading option's window
closes before its next chance (it has a deferral credit): the actions that can wait are
explored at their next chance.

Nor does the engine gamble on an option it expects to lose to doing nothing: an
option whose priority and expected priority (the mean of its values) are both below
``do_nothing``'s takes no part in the draw. Its optimistic draws would otherwise send
letters and calls whose expected margin is negative (in the closed loop such picks
earned -0.009 per contact against 0.181 for the others, about half the gap to the
oracle); an experiment arm's uniform ``explore_share`` still reaches them, with
known probabilities, where an experiment wants them tried. Where the two disagree (a
priority above doing nothing, a mean of the draws below it: a pair without evidence of
its own, whose prior is centred on its segment's pooled calibration, in a run's first
hours counted against the responses not yet arrived) the draw weighs them: its values
below doing nothing's lose to it. Left out on its mean alone, a birthday of priority
0.23 lost to doing nothing with probability 1 on its last chance (BENCHMARKS.md, issue
12, bday12).

>>> terms = PriorityTerms(propensity=0.1, value=40.0, lever=1.5, channel_cost=0.06)
>>> round(terms.priority(), 2)
5.94
>>> round(priority(0.1, 40.0, 1.5, uplift=0.02, channel_cost=0.06, offer_cost=8.0), 2)
0.34
>>> offer = PriorityTerms(propensity=0.1, value=40.0, offer_uplift=0.02, offer_cost=6.0)
>>> round(offer.priority(), 2), offer.offer_pays  # 0.1 x 40 - 0.1 x 6; 0.02 x 40 >= 0.1 x 6
(3.4, True)
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from nba.channels import Channel
from nba.frozen import fast_init
from nba.reasons import Reason, ReasonCode, Rejection
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import minute_text

if TYPE_CHECKING:
    from nba.reserve import KeptFree

#: Kept for callers of the Monte-Carlo estimate it replaced; propensities are now exact.
DEFAULT_PROPENSITY_DRAWS = 200
#: Equally likely values that represent a posterior in Thompson sampling.
THOMPSON_POINTS = 32


def priority(
    propensity: float,
    value: float,
    lever: float = 1.0,
    *,
    uplift: float | None = None,
    channel_cost: float = 0.0,
    offer_cost: float = 0.0,
    fatigue: float = 1.0,
    opportunity_cost: float = 0.0,
    redeemed_anyway: float = 0.0,
    anyway_cost: float | None = None,
) -> float:
    """The priority of an action on a channel (see the module docstring); ``anyway_cost``:
    the offer's cost on an order placed anyway, when it differs from ``offer_cost``."""
    response = propensity if uplift is None else max(0.0, uplift)
    return (
        response * value * lever * fatigue
        - channel_cost
        - propensity * offer_cost
        - redeemed_anyway * (offer_cost if anyway_cost is None else anyway_cost)
        - opportunity_cost
    )


@dataclass(frozen=True, slots=True)
class Deferral:
    """Why an action goes before a better one that can wait: its deferral credit
    (:mod:`nba.deferral`), and in words.

    >>> at = dt.datetime(2026, 3, 5, 9, tzinfo=dt.UTC)
    >>> why = Deferral("welcome_1", 1.4, "tier", 1.47, at, 19.75).describe()
    >>> for part in why.split("; "):
    ...     print(part)
    welcome_1 first: its window closes in 19.8 h, before its next chance
    tier can wait until Thu 2026-03-05 09:00 UTC, still eligible (worth 1.4 then against 1.47 now)

    """

    action_id: str  # the action that goes first
    credit: float  # d x the waiting action's priority (the module docstring)
    waits: str  # the action that waits
    waits_priority: float  # its priority now
    waits_until: dt.datetime  # its next opportunity after this send (UTC)
    closes_hours: float  # this action's window closes within so many hours

    def describe(self) -> str:
        return (
            f"{self.action_id} first: its window closes in {self.closes_hours:.1f} h, before "
            f"its next chance; {self.waits} can wait until "
            f"{minute_text(self.waits_until, weekday=True)} UTC, still eligible (worth "
            f"{self.credit:.3g} then against {self.waits_priority:.3g} now)"
        )


@fast_init
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
    #: The offer's own effect: how much it adds to the response to the same message
    #: without it (part of ``propensity``; see the module docstring).
    offer_uplift: float | None = None
    #: P(the offer is redeemed on an order the customer would have placed without it)
    #: (:mod:`nba.redemption`): its cost is paid on those too.
    redeemed_anyway: float = 0.0
    #: What the send costs the customer's next time-critical reminder (:mod:`nba.reserve`),
    #: and for whom it keeps which channel free (:attr:`kept_free_for` in words).
    opportunity_cost: float = 0.0
    kept_free: KeptFree | None = None
    #: What sending this first still leaves of a better action that can wait, when this
    #: one's window closes before its next chance (:mod:`nba.deferral`), and why.
    deferral_credit: float = 0.0
    deferral: Deferral | None = None
    #: The highest response the channel allows (the scorer's :attr:`~nba.scoring.ActionScore.
    #: ceiling`): Thompson sampling draws no response above it beyond its evidence.
    ceiling: float = 1.0
    #: The offer's cost on each redemption on an order placed anyway, when it differs from
    #: ``offer_cost`` (that on the message's own orders): a percent discount gives up its
    #: share of the order it is redeemed on (:func:`nba.redemption.redemption_cost`).
    anyway_cost: float | None = None

    def __post_init__(self) -> None:
        # one chained test first (the terms of every option of every decision are
        # checked): the named checks below only run to say which term is wrong
        uplift, offer_uplift, isfinite = self.uplift, self.offer_uplift, math.isfinite
        if (
            0.0 <= self.propensity <= 1.0
            and self.value >= 0.0
            and isfinite(self.value)
            and self.lever >= 0.0
            and isfinite(self.lever)
            and (uplift is None or -1.0 <= uplift <= 1.0)
            and self.channel_cost >= 0.0
            and isfinite(self.channel_cost)
            and self.offer_cost >= 0.0
            and isfinite(self.offer_cost)
            and 0.0 <= self.fatigue <= 1.0
            and (offer_uplift is None or -1.0 <= offer_uplift <= 1.0)
            and 0.0 <= self.redeemed_anyway <= 1.0
            and self.opportunity_cost >= 0.0
            and isfinite(self.opportunity_cost)
            and self.deferral_credit >= 0.0
            and isfinite(self.deferral_credit)
            and 0.0 <= self.ceiling <= 1.0
            and (self.anyway_cost is None or 0.0 <= self.anyway_cost < math.inf)
        ):
            return
        checks = {
            "propensity": 0.0 <= self.propensity <= 1.0,
            "value": self.value >= 0.0 and math.isfinite(self.value),
            "lever": self.lever >= 0.0 and math.isfinite(self.lever),
            "uplift": self.uplift is None or -1.0 <= self.uplift <= 1.0,
            "channel_cost": self.channel_cost >= 0.0 and math.isfinite(self.channel_cost),
            "offer_cost": self.offer_cost >= 0.0 and math.isfinite(self.offer_cost),
            "fatigue": 0.0 <= self.fatigue <= 1.0,
            "offer_uplift": self.offer_uplift is None or -1.0 <= self.offer_uplift <= 1.0,
            "redeemed_anyway": 0.0 <= self.redeemed_anyway <= 1.0,
            "opportunity_cost": self.opportunity_cost >= 0.0
            and math.isfinite(self.opportunity_cost),
            "deferral_credit": self.deferral_credit >= 0.0 and math.isfinite(self.deferral_credit),
            "ceiling": 0.0 <= self.ceiling <= 1.0,
            "anyway_cost": self.anyway_cost is None or 0.0 <= self.anyway_cost < math.inf,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"priority term {name} is out of range: {getattr(self, name)!r}")

    @property
    def kept_free_for(self) -> str:
        """For whom the send would keep which channel free, in words ("" without)."""
        return "" if self.kept_free is None else self.kept_free.describe()

    @property
    def deferred_for(self) -> str:
        """Why this goes before a better action that can wait, in words ("" without)."""
        return "" if self.deferral is None else self.deferral.describe()

    @property
    def redeemed_anyway_text(self) -> str:
        """The redemptions on orders placed anyway (:mod:`nba.redemption`) in words ("" without)."""
        if not self.redeemed_anyway:
            return ""
        text = f"P(redeemed on an order placed anyway) {self.redeemed_anyway:.3f}"
        if self.anyway_cost is not None and self.anyway_cost != self.offer_cost:
            text += f" at {self.anyway_cost:.3g} each"
        return text

    @property
    def anyway_offer_cost(self) -> float:
        """The offer's cost on each redemption on an order placed anyway."""
        return self.offer_cost if self.anyway_cost is None else self.anyway_cost

    @property
    def response(self) -> float:
        """What the value is multiplied by: uplift (at least 0) when known, else propensity."""
        return self.propensity if self.uplift is None else max(0.0, self.uplift)

    @property
    def offer_pays(self) -> bool:
        """Whether the offer's incremental response is worth its cost on every redemption
        (``offer_uplift x value >= propensity x offer_cost + redeemed_anyway x
        anyway_offer_cost``: the message's orders and those the customer would have placed
        anyway, each at what a redemption on it costs); true without an offer uplift
        estimate (nothing to weigh) or without a cost."""
        if self.offer_uplift is None or self.offer_cost == 0.0:
            return True
        cost = self.propensity * self.offer_cost + self.redeemed_anyway * self.anyway_offer_cost
        return self.offer_uplift * self.value >= cost

    @property
    def fixed_cost(self) -> float:
        """The costs that do not scale with the response: the channel's, the offer's on
        orders placed anyway and the opportunity cost. A response that fades (a reminder
        sent later: :mod:`nba.ageing`) fades the rest of the priority, never these:
        ``priority(s) = s x (priority() + fixed_cost) - fixed_cost`` without a deferral
        credit (and ``s x propensity <= 1``).

        >>> terms = PriorityTerms(propensity=0.1, value=40.0, channel_cost=1.0)
        >>> terms.fixed_cost, round(terms.priority(0.5), 2)  # 0.05 x 40 - 1
        (1.0, 1.0)
        """
        return (
            self.channel_cost
            + self.redeemed_anyway * self.anyway_offer_cost
            + self.opportunity_cost
        )

    def priority(self, scale: float = 1.0) -> float:
        """The priority with the response probabilities scaled by ``scale`` (capped at 1),
        with its deferral credit."""
        return self.deferral_credit + priority(
            min(1.0, self.propensity * scale),
            self.value,
            self.lever,
            uplift=None if self.uplift is None else min(1.0, self.uplift * scale),
            channel_cost=self.channel_cost,
            offer_cost=self.offer_cost,
            fatigue=self.fatigue,
            opportunity_cost=self.opportunity_cost,
            redeemed_anyway=self.redeemed_anyway,
            anyway_cost=self.anyway_cost,
        )


class Posterior(Protocol):
    """A belief about an option's response that Thompson sampling can draw from."""

    @property
    def mean(self) -> float: ...

    def scales(self, points: int) -> tuple[float, ...]:
        """``points`` equally likely factors to scale the scorer's response by."""
        ...


@functools.lru_cache(maxsize=64)
def _normal_quantiles(points: int) -> tuple[float, ...]:
    unit = statistics.NormalDist()
    return tuple(unit.inv_cdf((q + 0.5) / points) for q in range(points))


@dataclass(frozen=True, slots=True)
class BetaPosterior:
    """Beta(alpha, beta) belief about an action's success rate.

    >>> BetaPosterior.from_counts(successes=3, failures=7).mean
    0.3333333333333333
    >>> BetaPosterior().scales(4)  # Beta(1, 1): exact quantiles, over the mean 0.5
    (0.25, 0.75, 1.25, 1.75)
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

    def scales(self, points: int) -> tuple[float, ...]:
        """``theta / E[theta]`` at the quantiles: exact for Beta(1, 1), else the normal
        approximation of the same mean and variance, clipped to [0, 1]."""
        return _beta_scales(self.alpha, self.beta, points)


@functools.lru_cache(maxsize=4096)
def _beta_scales(alpha: float, beta: float, points: int) -> tuple[float, ...]:
    mean = alpha / (alpha + beta)
    if alpha == 1.0 and beta == 1.0:
        return tuple((q + 0.5) / points / mean for q in range(points))
    sd = math.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1)))
    return tuple(min(1.0, max(0.0, mean + z * sd)) / mean for z in _normal_quantiles(points))


@dataclass(frozen=True, slots=True)
class ResponsePosterior:
    """Gamma(shape, rate) belief about the factor ``m`` by which an option's true response
    rate differs from the scorer's prediction (observed / predicted responses).

    Conjugate for responses counted against the responses the scorer predicted:
    after ``responses`` observed where ``expected`` were predicted the posterior is
    Gamma(shape + responses, rate + expected). The prior, Gamma(2, 2) by default,
    has mean 1 (trust the scorer) and lets ``m`` range over roughly 0.1 to 3.

    >>> ResponsePosterior.from_counts(responses=5, expected=20.0).mean  # (2 + 5) / (2 + 20)
    0.3181818181818182
    >>> [round(s, 2) for s in ResponsePosterior(400, 400).scales(3)]
    [0.95, 1.0, 1.05]
    """

    shape: float = 2.0
    rate: float = 2.0

    def __post_init__(self) -> None:
        if not (self.shape > 0 and self.rate > 0 and math.isfinite(self.shape + self.rate)):
            raise ValueError(f"Gamma parameters must be positive, got {self.shape}, {self.rate}")

    @classmethod
    def from_counts(
        cls, responses: float, expected: float, prior: tuple[float, float] = (2.0, 2.0)
    ) -> ResponsePosterior:
        return cls(prior[0] + max(0.0, responses), prior[1] + max(0.0, expected))

    @property
    def mean(self) -> float:
        return self.shape / self.rate

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        """The central credible interval of ``m`` (Wilson-Hilferty approximation)."""
        z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
        return (
            _gamma_quantile(self.shape, self.rate, -z),
            _gamma_quantile(self.shape, self.rate, z),
        )

    def scales(self, points: int) -> tuple[float, ...]:
        """``m`` at the quantiles (Wilson-Hilferty approximation of the Gamma)."""
        return _response_scales(self.shape, self.rate, points)


def _gamma_quantile(shape: float, rate: float, z: float) -> float:
    c = 1.0 / (9.0 * shape)
    return max(0.0, shape * (1.0 - c + z * math.sqrt(c)) ** 3 / rate)


@functools.lru_cache(maxsize=4096)
def _response_scales(shape: float, rate: float, points: int) -> tuple[float, ...]:
    return tuple(_gamma_quantile(shape, rate, z) for z in _normal_quantiles(points))


def stats_key(action_id: str, channel: Channel | str | None) -> str:
    """The key of an (action, channel) pair in the statistics a policy is given.

    >>> stats_key("cart_reminder", Channel.EMAIL)
    'cart_reminder@email'
    """
    if channel is None:
        return action_id
    return f"{action_id}@{channel.value if isinstance(channel, Channel) else channel}"


_UNINFORMATIVE = BetaPosterior()


@fast_init
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


@fast_init
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


@fast_init
@dataclass(frozen=True, slots=True)
class Pick:
    """The option picked, the probability it had of being picked, and whether
    exploration (rather than the highest expected priority) decided."""

    index: int
    propensity: float
    explored: bool = False
    basis: str = ""
    #: The probability of every option (same order as the options), when known.
    probabilities: tuple[float, ...] = ()


#: The end of the words that say a channel lost to the customer's declared one.
DECLARED_CHANNEL = ", the customer's declared preferred channel"


def best_channels(
    candidates: Sequence[ActionCandidate],
    assessments: Sequence[Sequence[ChannelAssessment]],
    declared: Channel | None = None,
) -> tuple[list[Option], list[Rejection]]:
    """Keep each action's best channel (highest priority; ties go to the action's
    channel order) and record why the others were dropped.

    ``declared``: the channel the customer declared as preferred, honoured (the product
    brief: the engine honours each customer's preferred channel): wherever the action may
    go on it, and is worth sending there (a positive priority), it goes there, even when
    another channel scores higher (the customer said how to be reached; a higher score
    elsewhere is the engine's guess from their behaviour). Where the declared channel is
    refused (no consent, a cap, no send slot) or not worth it (an SMS that costs more than
    the message is worth), the best other channel is kept as without a declaration."""
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
        honoured = False
        if declared is not None and best_slot.channel is not declared:
            for slot, assessment in kept:
                if slot.channel is declared and assessment.priority > 0.0:
                    best_slot, best, honoured = slot, assessment, True
                    break
        options.append(Option(candidate, best_slot, best))
        for slot, assessment in kept:
            if slot is best_slot:
                continue
            if honoured:
                message = (
                    f"priority {assessment.priority:.3g} on {slot.channel.value}, "
                    f"{best.priority:.3g} on {best_slot.channel.value}{DECLARED_CHANNEL}"
                )
            elif assessment.priority < best.priority:
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
    best = _argmax([o.priority for o in options])
    probabilities = tuple(1.0 if i == best else 0.0 for i in range(len(options)))
    return Pick(best, 1.0, basis="highest priority", probabilities=probabilities)


def uniform_pick(options: Sequence[Option], rng: random.Random) -> Pick:
    """A uniformly random option, with propensity exactly ``1 / len(options)``."""
    if not options:
        raise ValueError("no option to pick from")
    n = len(options)
    return Pick(
        rng.randrange(n),
        1.0 / n,
        basis=f"drawn uniformly among {n} options",
        probabilities=(1.0 / n,) * n,
    )


def thompson_pick(
    options: Sequence[Option],
    posteriors: Mapping[str, Posterior],
    rng: random.Random,
    *,
    prior: Posterior | None = None,
    draws: int = DEFAULT_PROPENSITY_DRAWS,
    points: int = THOMPSON_POINTS,
) -> Pick:
    """Pick by Thompson sampling, with the exact probability of every option.

    Options without priority terms, and do-nothing, keep their fixed priority.
    Deterministic for a given ``rng`` state. ``draws`` is ignored (kept for the
    callers of the Monte-Carlo estimate this replaced).
    """
    if not options:
        raise ValueError("no option to pick from")
    if draws < 1:
        raise ValueError("draws must be at least 1")
    arms = _arms(options, posteriors, prior, points)
    live, protected = _contenders(options, arms)
    greedy = _argmax([o.priority for o in options])
    if len(live) == 1 or all(arm.posterior is None for arm in live):
        chosen = live[_argmax([arm.worst for arm in live])].index
        if protected:
            basis = f"highest expected priority; {protected}"
        elif len(live) == 1:
            basis = "the only option that could win"
        else:
            basis = "highest priority"
        certain = tuple(1.0 if i == chosen else 0.0 for i in range(len(options)))
        return Pick(chosen, 1.0, explored=chosen != greedy, basis=basis, probabilities=certain)
    chosen = _draw(live, rng)
    probabilities = _exact(live, len(options))
    if chosen == greedy:
        basis = f"Thompson sampling over {len(live)} options; also the highest expected priority"
    else:
        basis = (
            f"Thompson sampling over {len(live)} options explored it ahead of "
            f"{options[greedy].action_id}, which had the highest expected priority"
        )
    if protected:
        basis += f"; {protected}"
    return Pick(
        chosen,
        max(probabilities[chosen], 1e-12),
        explored=chosen != greedy,
        basis=basis,
        probabilities=tuple(probabilities),
    )


def thompson_probabilities(
    options: Sequence[Option],
    posteriors: Mapping[str, Posterior],
    rng: random.Random | None = None,
    *,
    prior: Posterior | None = None,
    draws: int = DEFAULT_PROPENSITY_DRAWS,
    points: int = THOMPSON_POINTS,
) -> list[float]:
    """The exact probability that :func:`thompson_pick` picks each option, shape
    ``(len(options),)``, summing to 1 (``rng`` and ``draws`` are not used: nothing is
    estimated). Off-policy evaluation reads the whole distribution from here.
    """
    if not options:
        raise ValueError("no option to pick from")
    if draws < 1:
        raise ValueError("draws must be at least 1")
    arms = _arms(options, posteriors, prior, points)
    live, _ = _contenders(options, arms)
    if len(live) == 1 or all(arm.posterior is None for arm in live):
        probabilities = [0.0] * len(options)
        probabilities[live[_argmax([arm.worst for arm in live])].index] = 1.0
        return probabilities
    return _exact(live, len(options))


def _contenders(options: Sequence[Option], arms: Sequence[_Arm]) -> tuple[list[_Arm], str]:
    """The arms that take part in the draw, and, when a time-critical option leads, in
    words which ones (else ``""``): see the module docstring. An arm whose best value is
    below another's worst can never win and is left out too."""
    protected = ""
    fsum = math.fsum  # statistics.fmean's own sum and division, without its checks
    expected = {arm.index: fsum(arm.values) / len(arm.values) for arm in arms}
    lead_arm = arms[_argmax([expected[arm.index] for arm in arms])]
    lead = options[lead_arm.index]
    if lead.slot is not None and (
        lead.candidate.action.time_critical
        or _closes_first(lead, expected[lead_arm.index], options, arms)
    ):
        due = lead.slot.send.at
        arms = [
            arm
            for arm in arms
            if (option := options[arm.index]).slot is not None
            and _now_or_never(option)
            and option.slot.send.at <= due
        ]
        if lead.candidate.action.time_critical:
            protected = (
                f"{lead.action_id} is time-critical: only time-critical options due by "
                f"{minute_text(due)} UTC are explored"
            )
        else:
            protected = (
                f"{lead.action_id}'s window closes before its next chance: only options "
                f"that cannot wait, due by {minute_text(due)} UTC, are explored"
            )
    bar = max(
        (a.worst for a in arms if options[a.index].candidate.action.is_do_nothing), default=None
    )
    if bar is not None:  # no gamble on what is expected to lose to doing nothing
        arms = [
            a for a in arms if a.posterior is None or _expected_to_win(options, a, expected, bar)
        ]
    floor = max(arm.worst for arm in arms)
    return [arm for arm in arms if arm.best >= floor], protected


def _expected_to_win(
    options: Sequence[Option], arm: _Arm, expected: Mapping[int, float], bar: float
) -> bool:
    """Whether the arm is expected to beat doing nothing (``bar``) by its priority or by
    its draws' mean, its deferral credit left out. Where the two disagree (the priority
    above, the draws' mean below: a pair without evidence of its own, whose prior is
    centred on its segment's pooled calibration) the draw itself weighs them."""
    credit = _credit(options, arm)
    return expected[arm.index] - credit >= bar or options[arm.index].priority - credit >= bar


def _now_or_never(option: Option) -> bool:
    """Time-critical, or its window closes before its next chance (a deferral credit)."""
    if option.candidate.action.time_critical:
        return True
    terms = option.assessment.terms
    return terms is not None and terms.deferral is not None


def _closes_first(
    lead: Option, expected: float, options: Sequence[Option], arms: Sequence[_Arm]
) -> bool:
    """Whether the leading option has a deferral credit and is expected above doing
    nothing on its own (its ``expected`` priority less the credit)."""
    terms = lead.assessment.terms
    if terms is None or terms.deferral is None:
        return False
    bar = max(
        (a.worst for a in arms if options[a.index].candidate.action.is_do_nothing), default=None
    )
    return bar is None or expected - terms.deferral_credit >= bar


def _credit(options: Sequence[Option], arm: _Arm) -> float:
    """The arm's deferral credit: not its own worth, so not weighed against doing nothing."""
    terms = options[arm.index].assessment.terms
    return 0.0 if terms is None else terms.deferral_credit


def _arms(
    options: Sequence[Option],
    posteriors: Mapping[str, Posterior],
    prior: Posterior | None,
    points: int,
) -> list[_Arm]:
    if points < 1:
        raise ValueError(f"points must be at least 1, got {points}")
    arms: list[_Arm] = []
    default = prior or _UNINFORMATIVE
    for index, option in enumerate(options):
        terms = option.assessment.terms
        if terms is None or option.candidate.action.is_do_nothing:
            arms.append(_Arm.fixed(index, option.priority))
        else:
            if posteriors:  # without statistics (a batch run's default), no key to build
                channel = None if option.slot is None else option.slot.channel
                posterior = (
                    posteriors.get(stats_key(option.action_id, channel))
                    or posteriors.get(option.action_id)
                    or default
                )
            else:
                posterior = default
            arms.append(_Arm.sampled(index, terms, posterior, points))
    return arms


@fast_init
@dataclass(frozen=True, slots=True)
class _Arm:
    """An option in Thompson sampling: its equally likely priorities (one per point of
    its posterior; ``None`` for a fixed priority), sorted, with their extremes."""

    index: int
    posterior: Posterior | None
    worst: float
    best: float
    values: tuple[float, ...] = ()

    @classmethod
    def fixed(cls, index: int, value: float) -> _Arm:
        return cls(index, None, value, value, (value,))

    @classmethod
    def sampled(cls, index: int, terms: PriorityTerms, posterior: Posterior, points: int) -> _Arm:
        # terms.priority(s), unrolled: it runs for every point of every option
        response, propensity = terms.response, terms.propensity
        gain = terms.value * terms.lever * terms.fatigue
        # the deferral credit is a constant of the option: a negative cost
        channel_cost = terms.channel_cost + terms.opportunity_cost - terms.deferral_credit
        offer_cost = terms.offer_cost
        # the redemptions of orders placed anyway do not scale with the message's response
        channel_cost += terms.redeemed_anyway * terms.anyway_offer_cost
        scales = posterior.scales(points)
        if terms.ceiling < 1.0 and response > 0.0:
            # no draw answers a message more often than it is opened: the posterior's spread
            # stops at the channel's ceiling, its evidence (its mean) may lift it above
            evidence = posterior.mean if isinstance(posterior, ResponsePosterior) else 1.0
            top = min(1.0, max(terms.ceiling, response * evidence))
            if response * scales[-1] > top:
                scales = tuple(min(s, top / response) for s in scales)
        if offer_cost == 0.0 and response * max(scales) <= 1.0:
            # nothing to cap at 1 (min would return each product as it is), and the
            # offer term is 0.0: subtracting it changes nothing
            drawn = [response * s * gain - channel_cost for s in scales]
        elif offer_cost == 0.0:
            drawn = [min(1.0, response * s) * gain - channel_cost for s in scales]
        else:
            drawn = [
                min(1.0, response * s) * gain - channel_cost - min(1.0, propensity * s) * offer_cost
                for s in scales
            ]
        drawn.sort()
        values = tuple(drawn)
        return cls(index, posterior, values[0], values[-1], values)


def _draw(arms: Sequence[_Arm], rng: random.Random) -> int:
    best_index, best_value = -1, -math.inf
    for arm in arms:
        values = arm.values
        value = values[0] if len(values) == 1 else values[rng.randrange(len(values))]
        if value > best_value:
            best_index, best_value = arm.index, value
    return best_index


def _exact(arms: Sequence[_Arm], n_options: int) -> list[float]:
    """The chance each arm wins :func:`_draw`: an arm's value ``v`` wins when every arm
    before it draws below ``v`` and every arm after it at most ``v``.

    One sweep over all values in increasing order, keeping each arm's count of values
    reached (``c_j``) and the product of ``c_j / n_j`` over the arms (zeros counted
    apart), so that the chance of a value is that product without its own arm's factor;
    equal values of several arms are settled by the arms' order, as in the draw.
    """
    points = [(v, position) for position, arm in enumerate(arms) for v in arm.values]
    # by value alone: the sort is stable and the points come in arm order, so equal
    # values keep the arms' order: the order sorting the pairs gives (values are finite)
    points.sort(key=_value_of)
    distinct = _exact_distinct(arms, n_options, points)
    return distinct if distinct is not None else _exact_grouped(arms, n_options, points)


_value_of = operator.itemgetter(0)


def _exact_distinct(
    arms: Sequence[_Arm], n_options: int, points: list[tuple[float, int]]
) -> list[float] | None:
    """:func:`_exact_grouped` when no two of the sorted ``points`` have equal values (the
    usual case): its step for a group of one, the same operations in the same order
    (``k`` is 1: ``x * 1`` is ``x``), in a plain loop; ``None`` at the first equal pair
    (the caller then runs :func:`_exact_grouped`)."""
    probabilities = [0.0] * n_options
    sizes = [len(arm.values) for arm in arms]
    indices = [arm.index for arm in arms]
    counts = [0] * len(arms)
    zeros = len(arms)
    product = 1.0
    previous = None
    for value, j in points:
        if value == previous:
            return None
        previous = value
        c = counts[j]
        if c == 0:
            zeros -= 1
            product *= 1 / sizes[j]
        else:
            product *= (c + 1) / c
        counts[j] = c + 1
        if zeros == 0:
            outside = product / ((c + 1) / sizes[j])
            probabilities[indices[j]] += outside / sizes[j]
    return probabilities


def _exact_grouped(
    arms: Sequence[_Arm], n_options: int, points: list[tuple[float, int]]
) -> list[float]:
    """:func:`_exact`'s sweep over the sorted ``points`` (value, arm position), equal
    values of several arms settled by the arms' order."""
    probabilities = [0.0] * n_options
    sizes = [len(arm.values) for arm in arms]
    counts = [0] * len(arms)
    zeros = len(arms)
    product = 1.0  # of counts[j] / sizes[j] over the arms with counts[j] > 0
    start, total = 0, len(points)
    while start < total:
        value = points[start][0]
        end = start
        group: dict[int, int] = {}  # arm position -> its values equal to ``value``
        while end < total and points[end][0] == value:
            group[points[end][1]] = group.get(points[end][1], 0) + 1
            end += 1
        below = {j: counts[j] for j in group}
        for j, k in group.items():
            if counts[j] == 0:
                zeros -= 1
                product *= k / sizes[j]
            else:
                product *= (counts[j] + k) / counts[j]
            counts[j] += k
        if zeros == 0:
            outside = product
            for j in group:
                outside /= counts[j] / sizes[j]
            for i, k in group.items():
                chance = outside
                for j in group:
                    if j != i:
                        chance *= (below[j] if j < i else counts[j]) / sizes[j]
                probabilities[arms[i].index] += chance * k / sizes[i]
        start = end
    return probabilities


def _argmax(values: Sequence[float]) -> int:
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:
            best = index
    return best
