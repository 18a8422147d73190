"""Scoring: the interface the engine calls for propensities, values and uplift.

Trained models (product recommender, channel propensity, send time, offer
uplift) plug in behind :class:`Scorer`. Until they exist, or when they are
unavailable, :class:`RuleBasedScorer` scores from profile fields only, so the
engine always works.

>>> import datetime as dt
>>> from nba.actions import Action
>>> from nba.context import CustomerContext
>>> from nba.profile import CustomerProfile
>>> from nba.screening import ActionCandidate, ChannelSlot
>>> from nba.timing import SendTime
>>> now = dt.datetime(2026, 3, 6, 17, tzinfo=dt.UTC)
>>> ctx = CustomerContext(CustomerProfile("C1", days_since_last_visit=1.0), now)
>>> action = Action(id="review", type="review_request", channels=["email"], value=2)
>>> slot = ChannelSlot(Channel.EMAIL, SendTime(now, now, ""))
>>> candidate = ActionCandidate(action, 2.0, None, (slot,))
>>> [score] = RuleBasedScorer().score(ctx, [candidate])
>>> round(score.propensity[Channel.EMAIL], 3), score.expected_value, score.uplift
(0.098, 2.0, None)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from nba.actions import INCENTIVE_KINDS, ActionType, Offer, OfferKind
from nba.ageing import CART_DECAY_EXPONENT as CART_DECAY_EXPONENT
from nba.ageing import CART_REFERENCE_HOURS as CART_REFERENCE_HOURS
from nba.ageing import cart_age_factor
from nba.channels import Channel
from nba.context import CustomerContext
from nba.frozen import fast_init, fast_replace
from nba.profile import CustomerProfile
from nba.redemption import redeemed_anyway
from nba.screening import ActionCandidate


@fast_init
@dataclass(frozen=True)
class ActionScore:
    """What a scorer knows about one candidate action.

    Attributes
    ----------
    propensity : mapping Channel -> float
        P(response | the action is sent on that channel), for each of the
        candidate's channels, in ``[0, 1]``.
    expected_value : float
        Value of a response (currency, at least 0).
    uplift : mapping Channel -> float, optional
        Incremental response probability caused by the action, in ``[-1, 1]``,
        when the scorer has an uplift model; ``None`` otherwise.
    ceiling : mapping Channel -> float, optional
        The highest response probability a message can have on each channel (a message is
        answered only once opened: the customer's open rate where the channel reports
        opens), in ``[0, 1]``; exploration draws no response above it unless the response
        statistics' evidence does (:mod:`nba.arbitration`). ``None``: no ceiling but 1.
    """

    propensity: Mapping[Channel, float]
    expected_value: float
    uplift: Mapping[Channel, float] | None = None
    ceiling: Mapping[Channel, float] | None = None


@runtime_checkable
class Scorer(Protocol):
    """Scores candidate actions for one customer (``do_nothing`` is never passed).

    Subclass it to inherit the default :meth:`prepare` (the context unchanged).
    """

    def score(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> Sequence[ActionScore]:
        """One :class:`ActionScore` per candidate, in the same order."""
        ...

    def prepare(self, context: CustomerContext) -> CustomerContext:
        """The context as the decision should see it, before screening (e.g. with a
        learned send-time pattern in the profile); by default, unchanged.

        The decision pipeline (:class:`~nba.pipeline.DecisionPipeline`) calls it
        once per decision, before routing: every arm of an experiment decides
        on the same prepared context.
        """
        return context


class ScoringError(ValueError):
    """A scorer returned something the engine cannot use."""


def check_scores(
    scorer: object, candidates: Sequence[ActionCandidate], scores: Sequence[ActionScore]
) -> None:
    """Raise :class:`ScoringError` naming the scorer, action and channel at fault."""
    name = type(scorer).__name__
    if len(scores) != len(candidates):
        raise ScoringError(f"{name} returned {len(scores)} scores for {len(candidates)} candidates")
    for candidate, score in zip(candidates, scores, strict=True):
        where = f"{name}, action {candidate.action.id!r}"
        if not (math.isfinite(score.expected_value) and score.expected_value >= 0):
            raise ScoringError(f"{where}: expected_value must be a finite number >= 0")
        for channel in candidate.channels:
            p = score.propensity.get(channel)
            if p is None or not 0.0 <= p <= 1.0:
                raise ScoringError(
                    f"{where}, channel {channel.value}: propensity {p!r} not in [0, 1]"
                )
            if score.ceiling is not None:
                top = score.ceiling.get(channel, 1.0)
                if not 0.0 <= top <= 1.0:
                    raise ScoringError(
                        f"{where}, channel {channel.value}: ceiling {top!r} not in [0, 1]"
                    )
            if score.uplift is not None:
                u = score.uplift.get(channel)
                if u is not None and not -1.0 <= u <= 1.0:
                    raise ScoringError(
                        f"{where}, channel {channel.value}: uplift {u!r} not in [-1, 1]"
                    )


#: Typical response rates by action type (a response is the action's goal: a purchase,
#: a click on content, a review), before the customer's own signals.
DEFAULT_BASE_RATES: Mapping[ActionType, float] = {
    ActionType.CART_REMINDER: 0.12,
    ActionType.BROWSE_REMINDER: 0.06,
    ActionType.WELCOME: 0.08,
    # Experian's birthday-email audit (50+ brands, 2014): 5.81x the transactions of a
    # promotional e-mail; a milestone message in its window answers far above a promotion
    ActionType.MILESTONE: 0.2,
    ActionType.SEASONAL: 0.05,
    ActionType.REACTIVATION: 0.03,
    ActionType.CROSS_SELL: 0.05,
    ActionType.UP_SELL: 0.04,
    ActionType.REVIEW_REQUEST: 0.10,
    ActionType.CONTENT: 0.03,
    ActionType.PRODUCT_RECOMMENDATION: 0.04,
    ActionType.OFFER: 0.05,
    ActionType.DO_NOTHING: 0.0,
}

#: The depth (what the customer saves, as a share of the order) of the incentive whose lift
#: ``RuleBasedScorer.offer_boost`` states: a 10 % discount, the cart escalation's, on which
#: the scorer's offer terms were first measured against the simulated retailer's truth.
REFERENCE_OFFER_DEPTH = 0.10
#: An order's value where the customer's own is unknown (a prospect), as the example
#: catalog values a prospect's first order.
REFERENCE_BASKET = 50.0


def offer_depth(offer: Offer, basket: float) -> float:
    """What an incentive gives the customer as a share of an order worth ``basket``, in
    ``[0, 1]``: a percent discount its percentage; a fixed discount its amount; free
    shipping the fee it waives (its ``value``, or when the catalog gives none its ``cost``,
    what the waived fee costs the business); 0 for what does not lower the price (points,
    content).

    >>> offer_depth(Offer(id="w", kind="percent_discount", value=15, cost=7), 60.0)
    0.15
    >>> offer_depth(Offer(id="f", kind="fixed_discount", value=10), 40.0)
    0.25
    >>> offer_depth(Offer(id="s", kind="free_shipping", value=0, cost=4.5), 45.0)
    0.1
    """
    if offer.kind == OfferKind.PERCENT_DISCOUNT:
        return min(1.0, offer.value / 100.0)
    if offer.kind == OfferKind.FIXED_DISCOUNT:
        saved = offer.value
    elif offer.kind == OfferKind.FREE_SHIPPING:
        saved = offer.value if offer.value > 0 else offer.cost
    else:
        return 0.0
    return min(1.0, saved / basket) if basket > 0 else 1.0


def gift_depth(offer: Offer, basket: float) -> float:
    """What a gift the message carries (loyalty points) takes off a later order worth
    ``basket``, as a share of it, in ``[0, 1]``: its ``cost``, the one figure of its worth
    the catalog gives (what the points cost the business once redeemed; their face value to
    the customer is at least that); 0 for what is not redeemable on an order (content).

    >>> gift_depth(Offer(id="b", kind="loyalty_points", value=500, cost=2.5), 50.0)
    0.05
    >>> gift_depth(Offer(id="c", kind="content", value=0), 50.0)
    0.0
    """
    if offer.kind != OfferKind.LOYALTY_POINTS or offer.cost <= 0.0:
        return 0.0
    return min(1.0, offer.cost / basket) if basket > 0 else 1.0


#: Typical open rates of the channels that report opens (calls: answered). A push's open
#: is its tap, a *direct open*: 2-6 % of the pushes sent (Appboy/Braze 2016: Android 6.1 %,
#: iOS 2.0 %; Leanplum: 3.5 % and 1.8 %; Airship 2023: retail 2.97 %), 4 % in the middle.
REFERENCE_OPEN_RATES: Mapping[Channel, float] = {
    Channel.EMAIL: 0.20,
    Channel.PUSH: 0.04,
    Channel.CALL_CENTRE: 0.30,
}

#: The highest response probability the scorer gives a message.
MAX_PROPENSITY = 0.95


#: How much more (or less) a channel gets a response than e-mail, for customers
#: without engagement history on it, net of its intrusiveness. An SMS is read almost
#: always, but it is answered about as often as an e-mail once its withdrawals are
#: counted (two to three times an e-mail's unsubscribes per message, each losing the
#: channel for good): without the customer's own history it gets e-mail's reach, and
#: its thirty-fold cost then sends a message by e-mail (or push) when both are consented.
#: A push's tap opens the app on its content as an e-mail's click opens its page: taps
#: per push are 1.0-1.4x clicks per e-mail (retail push direct opens 2.97 %, Airship 2023,
#: against e-commerce e-mail clicks 2.07 %, Mailchimp; all-industry e-mail clicks
#: 2.6-2.9 % against push 1.8-3.5 %, Leanplum), so push gets 1.1x e-mail's reach.
DEFAULT_CHANNEL_REACH: Mapping[Channel, float] = {
    Channel.EMAIL: 1.0,
    Channel.SMS: 1.0,
    Channel.PUSH: 1.1,
    Channel.WALLET: 0.8,
    Channel.POSTAL: 0.9,
    Channel.WEB: 0.9,
    Channel.APP: 1.0,
    Channel.CALL_CENTRE: 2.0,
}


@dataclass(frozen=True)
class RuleBasedScorer(Scorer):
    """Scores from profile fields only; no trained model.

    ``propensity = base_rate(type) x channel x recency x affinity``, capped at 0.95 and,
    on a channel that reports opens, at the customer's open rate there (their click rate
    where it is higher: opens the channel did not report). A message is answered only once
    opened, and a push's open is its tap, its response: the type's base rates are rates of
    e-mails, whose clicks are a share of their opens, so multiplied by a push's taps over a
    typical push's they rated a fresh cart's push 20 % likely to be answered for a customer
    whose pushes are tapped 4 % of the time, and the reminder went by push where the e-mail
    earns more (in the closed loop's retailer the engine valued triggered pushes at 2.4-6.6
    times their e-mail's relative worth; BENCHMARKS.md, issue 12, cells7). The response
    statistics (``features.online.response_stats``) can still scale a pair above it when
    its answers say so; the cap is the score's :attr:`ActionScore.ceiling`, beyond which
    exploration's draws do not go without that evidence (:mod:`nba.arbitration`):

    * channel: on channels that report opens (e-mail, push, calls answered),
      the channel's typical reach times the customer's smoothed open rate
      relative to the channel's typical open rate (within 0.1-3); on the others
      (SMS, postal mail), the smoothed click rate relative to
      ``reference_click_rate`` (within 0.2-3). A customer who has received nothing
      on a channel that reports opens is rated at the open rate their profile carries
      there: their segment's (the store's, per loyalty tier) own, the prior toward which
      every thin history is shrunk; on the other channels, at the typical reach alone.
      On the simulated retailer the store's push taps are 0.030-0.052 by tier (0.0365
      overall) against the typical 0.04; rated at the typical reach, a new customer's
      first push outranked their e-mail (1.1 against 1.0) where the truth's push answers
      a third as often (the welcome series, BENCHMARKS.md). Opens are many times more
      frequent than clicks, so a few months of history say much more through them: on
      the simulated retailer, the open-rate factor ranks the true value of an
      e-mail with a rank correlation of about 0.5, the click-rate one about 0.05;
    * declared preference: ``x declared_channel_boost`` on the channel the customer
      declared as preferred (``preferred_channel``);
    * recency: ``0.4 + 0.6 exp(-days_since_last_visit / recency_days)`` (0.6 when unknown);
    * affinity: ``0.5 + 1.5 x`` the customer's affinity to the action's category;
    * a cart reminder: ``x`` :func:`cart_age_factor` of the cart's age (a day-old cart
      answers about a quarter as often as an hour-old one).

    For an action with an incentive offer (a discount, free shipping:
    :data:`INCENTIVE_KINDS`) the propensity is raised by the customer's
    promotion sensitivity and by how much the offer gives
    (``x (1 + offer_boost x promo_sensitivity x depth / REFERENCE_OFFER_DEPTH)``, the
    depth from :func:`offer_depth` on the customer's average basket) and its uplift is
    what that adds to the same message without the offer: the responders who respond
    *because of* the offer (the offer's own effect, as the trained uplift models give
    it). ``offer_boost`` is the lift of a 10 % discount for a customer who buys only on
    offer; a 15 % win-back discount moves the same customer 1.5 times as much, free
    shipping on a 53 basket (4.5) 0.85 times: a discount moves buyers by what it saves
    them against the price they expected (reference-price research; the simulated
    retailer's truth is of that form too), and a lift independent of depth made a
    5 % and a 30 % discount worth the same uplift while their costs differ six-fold.
    The engine values the action as its message's response plus that uplift, less the
    offer's cost on every redemption, and, wherever the customer can get the same message
    without the offer (now, later, or already: a cart's spent reminders), gives the incentive
    only where the uplift pays for that cost
    (:attr:`~nba.arbitration.PriorityTerms.offer_pays`), so a discount beats a plain
    reminder only for customers it moves enough. A gift that goes with a message (birthday
    points) is not an incentive: the message is what is answered, and its
    propensity is its response; the gift's cost is still paid per response, and on the
    orders the customer would have placed anyway while holding it (:mod:`nba.redemption`).
    Those orders are not all "anyway": a customer holding points buys more often while
    they are held (the "points pressure" of a frequency reward programme: Taylor & Neslin,
    Journal of Retailing 2005: a grocer's sales rose while customers earned toward a reward;
    Kivetz, Urminsky & Zheng, JMR 2006: purchases accelerate as a reward comes near). The
    gift's pull is the incentives' own (``offer_boost x promo_sensitivity x depth /
    REFERENCE_OFFER_DEPTH``, the depth from :func:`gift_depth`) applied to those orders:
    ``propensity + pull x P(redeemed anyway)``. Without it the engine charged a gift's
    cost on every order placed while it is held and credited none of what it brings: a
    monthly buyer's birthday by SMS (read almost always, so its points are held) went
    below doing nothing (BENCHMARKS.md, issue 12, scen6).
    """

    base_rates: Mapping[ActionType, float] = field(default_factory=lambda: dict(DEFAULT_BASE_RATES))
    channel_reach: Mapping[Channel, float] = field(
        default_factory=lambda: dict(DEFAULT_CHANNEL_REACH)
    )
    reference_click_rate: float = 0.05
    reference_open_rates: Mapping[Channel, float] = field(
        default_factory=lambda: dict(REFERENCE_OPEN_RATES)
    )
    recency_days: float = 30.0
    offer_boost: float = 1.0
    declared_channel_boost: float = 1.5

    def score(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[ActionScore]:
        return self._scores(context, candidates, None)

    def score_with_neutral(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> tuple[list[ActionScore], list[dict[Channel, float]]]:
        """:meth:`score`, and each candidate's propensity per channel as :meth:`score` gives
        it for the same customer with no engagement history (``engagement={}``), from one
        pass over the candidates: what a learned engagement factor multiplies
        (:class:`training.model_scorer.ModelScorer`), which scored the customer twice."""
        neutral: list[dict[Channel, float]] = []
        return self._scores(context, candidates, neutral), neutral

    def _scores(
        self,
        context: CustomerContext,
        candidates: Sequence[ActionCandidate],
        neutral: list[dict[Channel, float]] | None,
    ) -> list[ActionScore]:
        """:meth:`score`; with ``neutral`` (a list), each candidate's propensities without
        engagement history appended to it."""
        profile = context.profile
        if profile.days_since_last_visit is None:
            recency = 0.6
        else:
            recency = 0.4 + 0.6 * math.exp(
                -max(0.0, profile.days_since_last_visit) / self.recency_days
            )
        promo = min(1.0, max(0.0, profile.promo_sensitivity))
        basket = profile.average_basket if profile.average_basket > 0 else REFERENCE_BASKET
        cart_age = cart_age_factor(profile.cart_age_hours)
        # each channel's factor and ceiling depend on the customer alone: read once
        channel_factors: dict[Channel, float] = {}
        channel_caps: dict[Channel, float] = {}
        plain_factors: dict[Channel, float] = {}  # without engagement history
        plain_profile = None
        scores: list[ActionScore] = []
        for candidate in candidates:
            action = candidate.action
            base = self.base_rates.get(action.type, 0.03) * recency
            if action.type is ActionType.CART_REMINDER:
                base *= cart_age
            if action.category is not None:
                affinity = profile.category_affinity.get(action.category, 0.0)
                base *= 0.5 + 1.5 * min(1.0, max(0.0, affinity))
            channels = candidate.channels
            factors: dict[Channel, float] = {}
            caps: dict[Channel, float] = {}
            for c in channels:
                f = channel_factors.get(c)
                if f is None:
                    f = channel_factors[c] = self._channel_factor(context, c)
                    channel_caps[c] = self._response_cap(context, c)
                factors[c] = f
                caps[c] = channel_caps[c]
            offer = action.offer
            incentive = offer is not None and offer.kind in INCENTIVE_KINDS
            boosted = base
            if offer is not None and incentive:
                depth = offer_depth(offer, basket) / REFERENCE_OFFER_DEPTH
                boosted = base * (1.0 + self.offer_boost * promo * depth)
            propensity = {c: min(caps[c], boosted * f) for c, f in factors.items()}
            plain: dict[Channel, float] | None = None
            if neutral is not None:  # no engagement: the channel's reach, no open-rate ceiling
                for c in channels:
                    if c not in plain_factors:
                        plain_factors[c] = self._reach_factor(profile, c)
                plain = {c: min(MAX_PROPENSITY, boosted * plain_factors[c]) for c in channels}
            if offer is not None and not incentive and offer.cost > 0.0:
                depth = gift_depth(offer, basket) / REFERENCE_OFFER_DEPTH
                pull = self.offer_boost * promo * depth
                if pull > 0.0:  # the orders the gift brings while the customer holds it
                    held = {c: pull * redeemed_anyway(profile, c, offer) for c in propensity}
                    propensity = {
                        c: min(MAX_PROPENSITY, p + held[c]) for c, p in propensity.items()
                    }
                    # those orders need no opened message: the ceiling rises with them
                    caps = {c: min(MAX_PROPENSITY, caps[c] + held[c]) for c in caps}
                    if plain is not None:
                        if plain_profile is None:
                            plain_profile = fast_replace(profile, engagement={})
                        plain = {
                            c: min(
                                MAX_PROPENSITY, p + pull * redeemed_anyway(plain_profile, c, offer)
                            )
                            for c, p in plain.items()
                        }
            if plain is not None and neutral is not None:
                neutral.append(plain)
            uplift = None
            if incentive:  # what the offer adds to the same message without it
                uplift = {c: propensity[c] - min(caps[c], base * f) for c, f in factors.items()}
            scores.append(ActionScore(propensity, candidate.value, uplift, caps))
        return scores

    def _reach_factor(self, profile: CustomerProfile, channel: Channel) -> float:
        """:meth:`_channel_factor` of ``profile`` without engagement history: the channel's
        reach (times the declared channel's boost)."""
        return self.channel_reach.get(channel, 1.0) * self._declared_boost(profile, channel)

    def _response_cap(self, context: CustomerContext, channel: Channel) -> float:
        """The highest P(response) of a message on ``channel``: on a channel that reports
        opens, the customer's open rate there (a message is answered only once opened; a
        push's open is its tap, its response), else :data:`MAX_PROPENSITY`."""
        if channel not in self.reference_open_rates:
            return MAX_PROPENSITY
        engagement = context.profile.engagement.get(channel)
        if engagement is None or (engagement.sent == 0 and engagement.open_rate <= 0.0):
            return MAX_PROPENSITY
        # a click proves an open: clicks above the opens are opens the channel did not report
        return min(MAX_PROPENSITY, max(engagement.open_rate, engagement.click_rate))

    def _channel_factor(self, context: CustomerContext, channel: Channel) -> float:
        return self._engagement_factor(context, channel) * self._declared_boost(
            context.profile, channel
        )

    def _declared_boost(self, profile: CustomerProfile, channel: Channel) -> float:
        """The boost of the channel the customer declared (1 on any other)."""
        declared = profile.preferred_channel == channel.value
        return self.declared_channel_boost if declared else 1.0

    def _engagement_factor(self, context: CustomerContext, channel: Channel) -> float:
        engagement = context.profile.engagement.get(channel)
        reach = self.channel_reach.get(channel, 1.0)
        if engagement is None:
            return reach
        reference_open = self.reference_open_rates.get(channel)
        if reference_open is not None and (engagement.sent > 0 or engagement.open_rate > 0):
            # with nothing sent yet the profile's rate is its segment's (the store's) own,
            # the prior every thin history is shrunk toward: such a customer is rated as
            # the store's customers are, not as the channel's typical ones
            return reach * min(3.0, max(0.1, engagement.open_rate / reference_open))
        if engagement.sent == 0:
            return reach
        return min(3.0, max(0.2, engagement.click_rate / self.reference_click_rate))
